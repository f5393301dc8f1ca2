"""Adaptive scaling: the policy as a table of cases from its rules, the retirement order, and the
scheduler-facing glue on real (in-process) clusters."""

from __future__ import annotations

import collections
import json
import math
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator

import dask
import numpy as np
import pytest
from distributed import Client, Event, LocalCluster, rejoin, secede, wait
from distributed.diagnostics.plugin import SchedulerPlugin
from test_consolidation import cube, indexed, per_record_and_file, scene_paths  # noqa: F401 - fixtures

from geocube_dask.entities import JobState, TaskState
from geocube_dask.errors import InvalidArgument, MissingDependency
from geocube_dask.scaling import GeocubeAdaptive, kube_cluster, kube_cluster_spec, local_cluster, measure
from geocube_dask.scaling.policy import Policy, WorkerLoad, retirement_order, starting_workers, workers_to_close
from geocube_dask.scaling.trace import WorkersTrace

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


# Workers running a long-running task (a submitted job's driver waiting on its graph) cannot be retired:
# (case, backlog seconds, workers, tasks, pinned, expected target), default policy
PINNED_CASES = [
    ("a driver alone keeps its worker, not drained to zero", 0, 1, 0, 1, 1),
    ("idle with a driver: the others drain, the driver's worker stays", 0, 5, 0, 1, 1),
    ("a driver and its graph: the graph's backlog decides above it", 100, 1, 100, 1, 4),
    ("idle: drain at once, but never below the pinned workers", 0, 8, 3, 6, 6),
]


@pytest.mark.parametrize(("case", "backlog", "workers", "tasks", "pinned", "expected"), PINNED_CASES,
                         ids=[c[0] for c in PINNED_CASES])
def test_policy_keeps_pinned_workers(case, backlog, workers, tasks, pinned, expected) -> None:
    assert Policy().target(backlog, workers, tasks=tasks, pinned=pinned) == expected

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


# --- on real clusters (in-process workers: fast to start, and the task counters below are shared) ------------

S = JobState
RUNS: collections.Counter = collections.Counter()
RUNS_LOCK = threading.Lock()


def read_block(i: int) -> int:
    """A stand-in for a consolidation task: waits as if on storage, counts its executions."""
    with RUNS_LOCK:
        RUNS[i] += 1
    time.sleep(0.05)
    return i * i


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(n_workers=0, processes=False, threads_per_worker=1, dashboard_address="127.0.0.1:0") as c:
        yield c


def test_a_local_cluster_adapts_up_to_the_maximum_then_drains_to_zero(cluster: LocalCluster) -> None:
    """A workload of many sleeping reads, summed per group, then in total (a consolidation job: below)."""
    client = Client(cluster)
    adaptive = cluster.adapt(Adaptive=GeocubeAdaptive, minimum=0, maximum=4, interval="200ms", ratio=0.1, step=2)
    assert isinstance(adaptive, GeocubeAdaptive) and adaptive.policy == Policy(ratio=0.1, step=2, maximum=4)
    blocks = [dask.delayed(read_block, pure=False)(i) for i in range(80)]
    groups = [dask.delayed(sum)(blocks[g:g + 10]) for g in range(0, 80, 10)]
    counts = []
    future = client.compute(dask.delayed(sum)(groups))
    while not future.done():
        counts.append(len(cluster.scheduler.workers))
        time.sleep(0.02)
    assert future.result() == sum(i * i for i in range(80))
    assert max(counts) == 4 and counts[0] == 0
    ups = [entry["n"] for _, entry in adaptive.log if entry["status"] == "up"]
    assert ups[:2] == [2, 4]  # at most `step` workers more per interval
    del future
    wait_until(lambda: not cluster.scheduler.workers and not cluster.workers, "the cluster to drain to zero")
    client.close()


def test_nothing_is_lost_when_workers_leave(cluster: LocalCluster) -> None:
    """Results spread over four workers; once nothing is left to do three leave and their results move to
    the last, which stays while the results are held (they could go nowhere), then leaves too."""
    RUNS.clear()
    client = Client(cluster)
    adaptive = cluster.adapt(Adaptive=GeocubeAdaptive, minimum=0, maximum=4, interval="200ms", ratio=0.1, step=2)
    blocks = client.map(read_block, range(60), pure=False)
    wait(blocks)
    assert max(entry["n"] for _, entry in adaptive.log if entry["status"] == "up") == 4
    wait_until(lambda: len(cluster.scheduler.workers) == 1, "the cluster to shrink to the worker holding results")
    time.sleep(1.0)  # five more intervals: the last worker stays
    assert len(cluster.scheduler.workers) == 1 and len(cluster.workers) == 1
    assert client.gather(blocks) == [i * i for i in range(60)]
    assert sorted(RUNS) == list(range(60)) and set(RUNS.values()) == {1}  # nothing recomputed
    del blocks
    wait_until(lambda: not cluster.scheduler.workers and not cluster.workers, "the cluster to drain to zero")
    client.close()


def test_a_worker_the_scheduler_could_not_retire_keeps_running(cluster: LocalCluster) -> None:
    """distributed's Adaptive shuts proposed workers down even when the scheduler refused to retire them
    (their results had nowhere to go): here they keep running and nothing is recomputed."""
    RUNS.clear()
    cluster.scale(2)
    client = Client(cluster)
    client.wait_for_workers(2)
    blocks = client.map(read_block, range(20), pure=False)
    wait(blocks)
    adaptive = GeocubeAdaptive(cluster, interval=None)  # not periodic: driven by hand
    names = sorted(cluster.workers)
    client.sync(adaptive.scale_down, names)  # both at once: no worker left to take their results
    assert sorted(cluster.workers) == names and len(cluster.scheduler.workers) == 2
    assert client.gather(blocks) == [i * i for i in range(20)] and set(RUNS.values()) == {1}
    client.close()


def blocked(i: int, event: str) -> int:
    Event(event).wait()
    return i


def _http(url: str, body: dict | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST" if data else "GET"),
                                timeout=10) as response:
        return json.loads(response.read())


def test_the_preloaded_scheduler_answers_with_the_policy() -> None:
    """What the dask-kubernetes operator asks: HTTP first, then the RPCs, on a scheduler started with
    the preload (and without the /api/v1 routes in its configuration: the preload adds them)."""
    settings = {
        "geocube.scaling": {"ratio": 8, "step": 3, "maximum": 15},
        "distributed.scheduler.default-task-durations": {"blocked": "2s"},
    }
    with dask.config.set(settings), LocalCluster(
        n_workers=2, processes=False, threads_per_worker=1, dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"preload": ["geocube_dask.scaling"]},
    ) as cluster, Client(cluster) as client:
        assert "distributed.http.scheduler.api" not in dask.config.get("distributed.scheduler.http.routes")
        api = f"http://127.0.0.1:{cluster.scheduler.http_server.port}/api/v1"
        event = Event("go")
        futures = client.map(blocked, range(12), event="go", pure=False)
        wait_until(lambda: sum(len(ws.processing) for ws in cluster.scheduler.workers.values()) > 0
                   and len(cluster.scheduler.tasks) == 12, "the tasks running or queued")
        # 12 tasks × 2 s = 24 s on 2 workers: 12 s each > ratio 8 → ceil(24 / 8) = 3 (within one step)
        # (distributed's own target would be ceil(24 s / 5 s) = 5)
        assert _http(f"{api}/adaptive_target") == {"workers": 3}
        # the 3rd worker is "starting" now; 24 s on 3 is exactly the ratio: keep 3
        assert client.sync(client.scheduler.adaptive_target) == 3
        event.set()
        assert sorted(client.gather(futures)) == list(range(12))
        assert _http(f"{api}/adaptive_target") == {"workers": 0}  # nothing left: drain to zero
        # retirement: the worker holding no data goes first
        holder, other = sorted(cluster.scheduler.workers.values(), key=lambda ws: ws.name)
        kept = client.submit(np.ones, 100_000, workers=[holder.address], pure=False)
        kept.result()
        assert client.sync(client.scheduler.workers_to_close, n=1, attribute="name") == [other.name]
        retired = _http(f"{api}/retire_workers", {"n": 1})
        assert [info["name"] for info in retired.values()] == [other.name]
        assert list(cluster.scheduler.workers) == [holder.address] and kept.result().sum() == 100_000



def driving(event: str) -> str:
    """A stand-in for a submitted job's driver: leaves the thread pool and waits."""
    secede()
    Event(event).wait()
    rejoin()
    return event


def test_a_long_running_driver_is_no_backlog_but_keeps_its_worker() -> None:
    """The driver's expected duration (configured: 100 s) is not work waiting for threads: the target comes
    from the graph's backlog alone (counting it, 104 s on one worker would ask for 4)."""
    settings = {"distributed.scheduler.default-task-durations": {"driving": "100s", "blocked": "1s"}}
    with dask.config.set(settings), LocalCluster(
        n_workers=1, processes=False, threads_per_worker=1, dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"preload": ["geocube_dask.scaling"]},
    ) as cluster, Client(cluster) as client:
        api = f"http://127.0.0.1:{cluster.scheduler.http_server.port}/api/v1"
        driver = client.submit(driving, "driver-done", pure=False)
        wait_until(lambda: any(ws.long_running for ws in cluster.scheduler.workers.values()), "the driver to secede")
        load = measure(cluster.scheduler)
        assert (load.backlog, load.tasks, load.pinned) == (0, 0, 1)
        assert _http(f"{api}/adaptive_target") == {"workers": 1}  # idle, but the driver's worker stays
        assert client.sync(client.scheduler.workers_to_close, n=1, attribute="name") == []
        futures = client.map(blocked, range(4), event="graph-done", pure=False)
        wait_until(lambda: len(cluster.scheduler.tasks) == 5, "the graph's tasks")
        load = measure(cluster.scheduler)
        assert (load.backlog, load.tasks, load.pinned) == (4.0, 4, 1)
        assert _http(f"{api}/adaptive_target") == {"workers": 1}  # 4 s on one worker: under the ratio
        Event("graph-done").set()
        Event("driver-done").set()
        assert client.gather(futures) == list(range(4)) and driver.result() == "driver-done"

# --- a consolidation job on a cluster that adapts with the policy --------------------------------------------

class MemoryTransitions(SchedulerPlugin):
    """Counts, per task key, how often a result reached memory: twice means it was lost and computed again."""

    def __init__(self) -> None:
        self.counts: collections.Counter = collections.Counter()

    def transition(self, key: object, start: str, finish: str, *args: object, **kwargs: object) -> None:
        if finish == "memory":
            self.counts[str(key)] += 1


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)  # the scaling does not depend on the backend
def test_a_consolidation_job_on_an_adapting_cluster(gc, indexed, record_property) -> None:  # noqa: F811
    """0 workers → up to the maximum, step by step, while the job's graph waits → 0 once it is done; the job
    ends DONE, no result computed twice (none lost as workers left), cube values unchanged. The scheduler
    runs the preload: over HTTP and the RPC it answers the policy's number (more than 0 while work waits,
    0 after)."""
    inst, layout, _, store = indexed
    before = cube(gc, inst)
    job = gc.consolidate(inst, layout, storage_uri=str(store), name="adaptive")
    settings = {"geocube.scaling": {"ratio": 0.1, "step": 2, "maximum": 3}}
    with dask.config.set(settings), LocalCluster(
        n_workers=0, processes=False, threads_per_worker=1, dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"preload": ["geocube_dask.scaling"]},
    ) as cluster, Client(cluster) as client:
        memory = MemoryTransitions()
        cluster.scheduler.add_plugin(memory, name="memory-transitions")
        adaptive = cluster.adapt(Adaptive=GeocubeAdaptive, minimum=0, maximum=3, interval="200ms", ratio=0.1,
                                 step=2)
        api = f"http://127.0.0.1:{cluster.scheduler.http_server.port}/api/v1/adaptive_target"
        # (seconds, workers connected, the preload's HTTP answer)
        with WorkersTrace(cluster, target=lambda: _http(api)["workers"]) as recording:
            assert job.run(client=client).state is S.DONE, job.logs
            wait_until(lambda: not cluster.scheduler.workers and not cluster.workers, "the cluster to drain to zero")
        trace = [(s.seconds, s.connected, s.target) for s in recording.samples]
        record_property("workers_trace", json.dumps(trace))
        assert _http(api) == {"workers": 0} and client.sync(client.scheduler.adaptive_target) == 0
    workers = [n for _, n, _ in trace]
    assert workers[0] == 0 and 2 <= max(workers) <= 3 and workers[-1] == 0, trace
    requested = [s.requested for s in recording.samples]  # what the adaptive deployment asked for
    assert requested[0] == 0 and max(requested) == max(workers) and requested[-1] == 0, recording.samples
    # from 0, `step` workers at once (the backlog asks for more), then more up to the maximum (reached unless
    # the job is done first)
    ups = [entry["n"] for _, entry in adaptive.log if entry["status"] == "up"]
    assert ups[0] == 2 and max(ups) <= 3, adaptive.log
    assert max(answer for _, _, answer in trace) >= 1, trace
    # nothing lost: every result reached memory once; every file done once; the cubes read as before
    assert memory.counts and set(memory.counts.values()) == {1}, memory.counts
    assert {t.state for t in job.tasks} == {TaskState.DONE}
    assert set(per_record_and_file(gc).values()) == {1}
    assert np.array_equal(cube(gc, inst).values, before.values)

# --- what users call ------------------------------------------------------------------------------------

def test_local_cluster_adapts_and_prints_its_dashboard(capsys: pytest.CaptureFixture[str]) -> None:
    with local_cluster(adapt=(0, 3), processes=False, dashboard_address="127.0.0.1:0", step=2) as cluster:
        assert f"Dask dashboard: {cluster.dashboard_link}" in capsys.readouterr().out
        assert isinstance(cluster._adaptive, GeocubeAdaptive) and cluster.workers == {}
        assert cluster._adaptive.policy == Policy(step=2, minimum=0, maximum=3)
    with pytest.raises(InvalidArgument, match=r"0 <= minimum <= maximum"):
        local_cluster(adapt=(3, 1))


def test_kube_cluster_runs_the_spec_and_adapts(monkeypatch: pytest.MonkeyPatch) -> None:
    """No API server here: KubeCluster is replaced by a recorder at the seam."""
    import dask_kubernetes.operator

    calls: list[tuple[str, object]] = []

    class Recorder:
        dashboard_link = "http://scheduler:8787/status"

        def __init__(self, **kwargs: object) -> None:
            calls.append(("KubeCluster", kwargs))

        def adapt(self, minimum: int, maximum: int) -> None:
            calls.append(("adapt", (minimum, maximum)))

    monkeypatch.setattr(dask_kubernetes.operator, "KubeCluster", Recorder)
    cluster = kube_cluster("c2", image="img:1", namespace="ns", adapt=(1, 6), quiet=True,
                           spec_options={"db_secret": "geocube-db"}, shutdown_on_close=False)
    assert isinstance(cluster, Recorder)
    expected = kube_cluster_spec("c2", "img:1", "ns", adapt=(1, 6), db_secret="geocube-db")
    assert calls == [("KubeCluster", {"custom_cluster_spec": expected, "namespace": "ns",
                                      "shutdown_on_close": False}), ("adapt", (1, 6))]


def test_kubernetes_support_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask_kubernetes.operator", None)  # as if not installed
    with pytest.raises(MissingDependency, match=r"pip install 'geocube_dask\[kube\]'"):
        kube_cluster_spec()
