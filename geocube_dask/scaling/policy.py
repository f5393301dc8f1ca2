"""How many workers a backlog needs, and which workers cost least to retire: pure functions, no dask.

The rules are the reference Geocube autoscaler's, with one change of unit: its backlog was a count of
queued consolidation messages, ours is the scheduler's unfinished work in **seconds** (each unfinished
task weighted by the expected duration of its kind, see :mod:`.load`), so that a thousand tiny
bookkeeping tasks do not ask for as many workers as a thousand file writes. ``ratio`` and
``min_ratio`` are therefore seconds of expected work per worker.

- Nothing to do (no unfinished work): drain to zero (to ``minimum``), at once.
- No worker yet, or more than ``ratio`` seconds of work per worker: ``ceil(backlog / ratio)`` workers.
- ``min_ratio > 0``, several workers and less than ``min_ratio`` seconds of work each: shrink to
  ``ceil(backlog / min_ratio)``, even though the workers are busy.
- Otherwise keep the current size; never more workers than tasks can keep busy
  (``ceil(tasks / threads per worker)``: the reference's "fewer jobs than workers").
- At most ``step`` workers added or removed per decision, except when draining to zero.
- Never fewer than the *pinned* workers (those running a long-running task, such as the driver of a
  submitted job: they cannot be retired, asking for less would only make the autoscaler retry).
- Never grow while workers are still starting (asked for, not yet connected).
- ``minimum`` and ``maximum`` always win (as distributed's ``Adaptive`` and the dask-kubernetes
  operator, which clamp again, would make them).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from ..errors import InvalidArgument


@dataclass(frozen=True)
class Policy:
    """The autoscaler's settings (see the module docstring for the rules they drive).

    ``ratio``: seconds of expected work per worker above which workers are added; ``min_ratio``:
    seconds per worker below which busy workers are removed (0: never); ``step``: most workers
    added or removed per decision; ``minimum``/``maximum``: bounds of the worker count.
    """

    ratio: float = 10.0
    min_ratio: float = 0.0
    step: int = 3
    minimum: int = 0
    maximum: int = 15

    def __post_init__(self) -> None:
        if not (isinstance(self.ratio, int | float) and math.isfinite(self.ratio) and self.ratio > 0):
            raise InvalidArgument(f"ratio must be a positive number of seconds per worker, not {self.ratio!r}")
        if not (isinstance(self.min_ratio, int | float) and 0 <= self.min_ratio <= self.ratio):
            raise InvalidArgument(
                f"min_ratio must be between 0 (never shrink busy workers) and ratio ({self.ratio}), "
                f"not {self.min_ratio!r}"
            )
        if not (isinstance(self.step, int) and self.step >= 1):
            raise InvalidArgument(f"step must be a whole number of workers >= 1, not {self.step!r}")
        if not (isinstance(self.minimum, int) and self.minimum >= 0):
            raise InvalidArgument(f"minimum must be a whole number of workers >= 0, not {self.minimum!r}")
        if not (isinstance(self.maximum, int) and self.maximum >= max(1, self.minimum)):
            raise InvalidArgument(
                f"maximum must be a whole number of workers >= 1 and >= minimum ({self.minimum}), "
                f"not {self.maximum!r}"
            )

    def target(
        self, backlog: float, workers: int, starting: int = 0, *, tasks: int | None = None, threads: int = 1,
        pinned: int = 0,
    ) -> int:
        """The number of workers to have after this decision.

        ``backlog``: seconds of expected unfinished work; ``workers``: workers connected; ``starting``:
        workers asked for and not yet connected; ``tasks``: unfinished tasks (None: unknown, no cap);
        ``threads``: threads per worker (how many tasks one worker runs at once); ``pinned``: connected
        workers that cannot be retired now.
        """
        current = workers + starting
        idle = backlog <= 0 or tasks == 0
        if idle:
            needed = 0
        elif current == 0 or backlog / current > self.ratio:
            needed = math.ceil(backlog / self.ratio)
        elif self.min_ratio > 0 and current > 1 and backlog / current < self.min_ratio:
            needed = math.ceil(backlog / self.min_ratio)
        else:
            needed = current
        if tasks is not None:
            needed = min(needed, math.ceil(tasks / max(1, threads)))
        if needed > current:
            needed = current if starting > 0 else min(needed, current + self.step)
        elif needed < current and not idle:
            needed = max(needed, current - self.step)
        needed = max(needed, min(pinned, workers))
        return max(self.minimum, min(self.maximum, needed))


def starting_workers(previous_target: int | None, workers: int) -> int:
    """Workers presumably still starting when only the last answer is known (on Kubernetes the scheduler
    does not see pending pods): those asked for by the previous target and not connected yet."""
    return 0 if previous_target is None else max(0, previous_target - workers)


@dataclass(frozen=True)
class WorkerLoad:
    """What retiring one worker would cost: tasks in flight, their expected seconds, bytes held."""

    name: Hashable  # the worker's name (LocalCluster numbers its workers: 0, 1, …)
    address: str = ""
    processing: int = 0
    occupancy: float = 0.0
    nbytes: int = 0
    long_running: bool = False  # runs a task that itself submits tasks (worker_client): never retired


def retirement_order(workers: Iterable[WorkerLoad]) -> list[WorkerLoad]:
    """The workers that may be retired, cheapest loss first: those with no task in flight (least data
    held first), then those whose tasks in flight are expected to take least (then least data)."""
    candidates = [w for w in workers if not w.long_running]
    return sorted(candidates, key=lambda w: (w.processing > 0, w.occupancy, w.nbytes, str(w.name)))


def workers_to_close(workers: Sequence[WorkerLoad], target: int) -> list[WorkerLoad]:
    """The workers to retire to come down to ``target`` workers, cheapest loss first. While results are
    held (a client still wants them) the last worker is kept: the scheduler could move them nowhere."""
    keep = max(0, target)
    if keep == 0 and any(w.nbytes > 0 for w in workers):
        keep = 1
    n = len(workers) - keep
    return retirement_order(workers)[:max(0, n)]
