"""Workers over time: a cluster's size sampled while it adapts, to plot or record a scale-up and scale-down.

::

    with WorkersTrace(cluster) as trace:
        job.run(client=client)
    [(s.seconds, s.requested, s.connected) for s in trace.samples]

Each :class:`Sample` holds the workers the cluster asked for (``requested``: starting or running, what
the adaptive deployment decided) and those connected to the scheduler (``connected``: able to run
tasks), plus the value of an optional ``target`` callable (e.g. the scheduler's
``/api/v1/adaptive_target`` answer). A thread samples every ``every`` seconds between ``__enter__`` and
``__exit__``, which takes a last sample.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sample:
    seconds: float  # since the trace started
    requested: int
    connected: int
    target: int | None = None


def connected_workers(cluster: Any) -> int:
    """Workers connected to the cluster's scheduler (read in place when the scheduler runs in this process)."""
    scheduler = getattr(cluster, "scheduler", None)
    workers = getattr(scheduler, "workers", None)
    if workers is not None:
        return len(workers)
    return len(cluster.scheduler_info.get("workers", {}))


class WorkersTrace:
    """Samples ``cluster``'s workers in a thread while in the ``with`` block (see the module docstring)."""

    def __init__(self, cluster: Any, every: float = 0.05, target: Callable[[], int] | None = None) -> None:
        self.cluster, self.every, self.target = cluster, every, target
        self.samples: list[Sample] = []
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = 0.0

    def sample(self) -> Sample:
        """Take one sample now (and keep it)."""
        s = Sample(round(time.monotonic() - self._start, 3), len(self.cluster.workers),
                   connected_workers(self.cluster), None if self.target is None else self.target())
        self.samples.append(s)
        return s

    def _loop(self) -> None:
        while self._running.is_set():
            self.sample()
            time.sleep(self.every)

    def __enter__(self) -> WorkersTrace:
        self._start = time.monotonic()
        self._running.set()
        self._thread = threading.Thread(target=self._loop, name="workers-trace", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join()
        self.sample()
