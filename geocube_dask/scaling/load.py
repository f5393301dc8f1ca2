"""What the scaling policy reads from a dask scheduler: the backlog and what each worker would cost to lose.

Runs inside the scheduler process (called from the scheduler preload, or shipped there by
``GeocubeAdaptive`` as an out-of-band function), on the scheduler's event loop: it only reads.
The backlog is every unfinished task (waiting for its inputs, queued, without a worker, or running)
weighted by the expected duration of its kind: the scheduler's running average for that task
prefix, else its configured default (``distributed.scheduler.default-task-durations``), else
``distributed.scheduler.unknown-task-duration``. Reading per prefix costs one pass over the task kinds,
not over the tasks. A *long-running* task (one that left its worker's thread pool with ``secede``, like
the driver of a submitted job waiting on its graph) occupies no thread and is no backlog: it is left
out, and its worker counts as *pinned* (it cannot be retired while the task runs).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .policy import WorkerLoad

if TYPE_CHECKING:
    from distributed import Scheduler

# task states that still have work ahead ("released" tasks are not wanted by anyone yet)
UNFINISHED = ("waiting", "no-worker", "queued", "processing")


@dataclass(frozen=True)
class Load:
    """A scheduler's backlog (seconds of expected work, number of unfinished tasks) and its workers."""

    backlog: float
    tasks: int
    threads: int  # threads per worker (mean over the workers, 1 when there is none)
    workers: tuple[WorkerLoad, ...]
    pinned: int = 0  # workers running a long-running task (never retired while it runs)


def measure(dask_scheduler: Scheduler) -> Load:
    """The current load of ``dask_scheduler`` (the argument's name lets ``run_on_scheduler`` pass it)."""
    seceded: Counter[str] = Counter(ts.prefix.name for ws in dask_scheduler.workers.values() for ts in ws.long_running)
    backlog, tasks = 0.0, 0
    for prefix in dask_scheduler.task_prefixes.values():
        n = sum(prefix.states.get(state, 0) for state in UNFINISHED) - seceded[prefix.name]
        if n > 0:
            tasks += n
            backlog += n * dask_scheduler._get_prefix_duration(prefix)
    pinned = sum(1 for ws in dask_scheduler.workers.values() if ws.long_running)
    workers = tuple(
        WorkerLoad(name=ws.name, address=ws.address, processing=len(ws.processing), occupancy=ws.occupancy,
                   nbytes=ws.nbytes, long_running=bool(ws.long_running))
        for ws in dask_scheduler.workers.values()
    )
    nthreads = sum(ws.nthreads for ws in dask_scheduler.workers.values())
    threads = max(1, round(nthreads / len(workers))) if workers else 1
    return Load(backlog=backlog, tasks=tasks, threads=threads, workers=workers, pinned=pinned)
