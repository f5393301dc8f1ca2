"""Adaptive scaling: the policy as a table of cases from its rules, the retirement order, and the
scheduler-facing glue on real (in-process) clusters."""

from __future__ import annotations

import math

import pytest

from geocube_dask.errors import InvalidArgument
from geocube_dask.scaling.policy import Policy, WorkerLoad, retirement_order, starting_workers, workers_to_close

# (case, policy overrides, backlog seconds, workers, starting, tasks, threads, expected target)
# Defaults: ratio 10 s/worker, min_ratio 0, step 3, minimum 0, maximum 15.
TARGET_CASES = [
    ("idle drains to zero at once, not step by step", {}, 0, 8, 0, 0, 1, 0),
    ("idle drains to the minimum", {"minimum": 2}, 0, 8, 0, 0, 1, 2),
    ("idle while workers are starting: no need for them", {}, 0, 2, 3, 0, 1, 0),
    ("no worker: ceil(backlog / ratio)", {}, 25, 0, 0, 100, 1, 3),
    ("no worker, big backlog: at most step added", {}, 100, 0, 0, 100, 1, 3),
    ("over ratio: ceil(backlog / ratio), step-limited", {}, 100, 4, 0, 100, 1, 7),
    ("over ratio, within a step", {}, 100, 9, 0, 100, 1, 10),
    ("exactly at ratio: keep", {}, 100, 10, 0, 100, 1, 10),
    ("under ratio, min_ratio 0: busy workers are kept", {}, 30, 10, 0, 100, 1, 10),
    ("under min_ratio: ceil(backlog / min_ratio), step-limited", {"min_ratio": 5}, 30, 10, 0, 100, 1, 7),
    ("under min_ratio, within a step", {"min_ratio": 5}, 45, 10, 0, 100, 1, 9),
    ("min_ratio never removes the only worker", {"min_ratio": 5}, 1, 1, 0, 100, 1, 1),
    ("never grow while workers are starting", {}, 100, 2, 2, 100, 1, 4),
    ("starting workers count in the current size", {}, 100, 2, 1, 100, 1, 3),
    ("one long task needs one worker, not backlog / ratio", {}, 300, 0, 0, 1, 1, 1),
    ("one worker per `threads` tasks", {}, 400, 0, 0, 8, 4, 2),
    ("fewer tasks than workers: shrink, step-limited", {}, 20, 6, 0, 2, 1, 3),
    ("maximum wins over the step", {}, 1000, 14, 0, 1000, 1, 15),
    ("above maximum (set by hand): back to maximum", {}, 1000, 20, 0, 1000, 1, 15),
    ("minimum wins over holding for starting workers", {"minimum": 2}, 100, 0, 1, 100, 1, 2),
    ("step 1", {"step": 1}, 100, 0, 0, 100, 1, 1),
    ("unknown task count: no cap", {}, 50, 0, 0, None, 1, 3),
]


@pytest.mark.parametrize(("case", "overrides", "backlog", "workers", "starting", "tasks", "threads", "expected"),
                         TARGET_CASES, ids=[c[0] for c in TARGET_CASES])
def test_policy_target(case, overrides, backlog, workers, starting, tasks, threads, expected) -> None:
    policy = Policy(**overrides)
    assert policy.target(backlog, workers, starting, tasks=tasks, threads=threads) == expected


def test_policy_defaults_are_the_issue_s() -> None:
    assert Policy() == Policy(ratio=10, min_ratio=0, step=3, minimum=0, maximum=15)


def test_workers_follow_a_backlog_step_by_step_then_drain_to_zero() -> None:
    """Decisions applied one after the other (every asked worker arrives before the next decision)."""
    policy = Policy(ratio=10, step=3, maximum=12)
    sizes, workers = [], 0
    for backlog in [500] * 6 + [60] * 2 + [0]:
        workers = policy.target(backlog, workers, tasks=1000)
        sizes.append(workers)
    # up by 3 per decision to the maximum, kept while 60 s of work remain (min_ratio 0), then all at once to 0
    assert sizes == [3, 6, 9, 12, 12, 12, 12, 12, 0]


def test_min_ratio_shrinks_busy_workers_step_by_step() -> None:
    policy = Policy(ratio=10, min_ratio=4, step=2)
    sizes, workers = [], 12
    for _ in range(4):
        workers = policy.target(12, workers, tasks=1000)  # 12 s of work: ceil(12 / 4) = 3 workers
        sizes.append(workers)
    assert sizes == [10, 8, 6, 4] and policy.target(12, 4, tasks=1000) == 3


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ratio": 0}, "ratio must be a positive number"),
    ({"ratio": math.inf}, "ratio must be a positive number"),
    ({"min_ratio": 11}, "min_ratio must be between 0"),
    ({"min_ratio": -1}, "min_ratio must be between 0"),
    ({"step": 0}, "step must be a whole number"),
    ({"step": 1.5}, "step must be a whole number"),
    ({"minimum": -1}, "minimum must be a whole number"),
    ({"maximum": 0}, "maximum must be a whole number of workers >= 1"),
    ({"minimum": 5, "maximum": 4}, r"and >= minimum \(5\)"),
])
def test_policy_refuses_inconsistent_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        Policy(**kwargs)


def test_starting_workers_from_the_previous_answer() -> None:
    assert starting_workers(None, 3) == 0
    assert starting_workers(5, 3) == 2
    assert starting_workers(2, 3) == 0


LOADS = [
    WorkerLoad("busy-long", processing=2, occupancy=5.0, nbytes=10),
    WorkerLoad("idle-big", nbytes=1000),
    WorkerLoad("idle-small", nbytes=10),
    WorkerLoad("busy-short", processing=1, occupancy=1.0, nbytes=5000),
    WorkerLoad("submitter", long_running=True),
]


def test_retirement_order_is_cheapest_loss_first() -> None:
    assert [w.name for w in retirement_order(LOADS)] == ["idle-small", "idle-big", "busy-short", "busy-long"]


@pytest.mark.parametrize(("target", "expected"), [
    (5, []),
    (4, ["idle-small"]),
    (3, ["idle-small", "idle-big"]),
    (2, ["idle-small", "idle-big", "busy-short"]),
    (0, ["idle-small", "idle-big", "busy-short", "busy-long"]),  # a long-running task's worker stays
])
def test_workers_to_close(target: int, expected: list[str]) -> None:
    assert [w.name for w in workers_to_close(LOADS, target)] == expected


def test_the_last_worker_holding_results_is_kept() -> None:
    held = [WorkerLoad("a", nbytes=0), WorkerLoad("b", nbytes=8), WorkerLoad("c", nbytes=0)]
    assert [w.name for w in workers_to_close(held, 0)] == ["a", "c"]
    free = [WorkerLoad("a"), WorkerLoad("b")]
    assert [w.name for w in workers_to_close(free, 0)] == ["a", "b"]
