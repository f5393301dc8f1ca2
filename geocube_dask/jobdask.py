"""What the job steps that compute on dask share (:mod:`.consolidation`, :mod:`.exporting`): the job's token,
which names its files and marks its tasks, the client a step computes on, waiting until no worker runs a
job's tasks any more, and the text of an error as the job records it."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from .entities import JobInfo
from .errors import GeocubeError

JOB_ANNOTATION = "geocube_job"  # a dask annotation: the job (its token) of tasks whose keys do not name it


def job_token(info: JobInfo) -> str:
    """A short, unique, file-name-safe name for a job's files and dask keys."""
    return info.id.replace("-", "")[:16]


@contextlib.contextmanager
def job_client(client: Any) -> Iterator[Any]:
    """The given distributed client, else an in-process cluster of threads (with a dashboard)."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    threads = max(2, os.cpu_count() or 2)
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=threads, dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False) as own:
        yield own


def _busy_with(token: str, dask_worker: Any = None) -> int:
    """(Run on a worker) how many tasks of the job ``token`` names it is still executing or about to: the
    tasks with that token in their key or in their :data:`JOB_ANNOTATION`."""
    states = ("waiting", "ready", "constrained", "executing", "long-running", "cancelled", "resumed")

    def mine(ts: Any) -> bool:
        return token in str(ts.key) or (ts.annotations or {}).get(JOB_ANNOTATION) == token

    return sum(1 for ts in dask_worker.state.tasks.values() if ts.state in states and mine(ts))


def wait_until_idle(client: Any, token: str, timeout: float = 300.0) -> None:
    """Wait until no worker still executes a task of the job ``token`` names (see :func:`_busy_with`): a
    cancelled task that is running goes on to its end, and a file it writes after the rollback would be
    left behind."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sum(client.run(_busy_with, token).values()):
                return
        except Exception:  # noqa: BLE001 - a worker gone meanwhile runs nothing
            return
        time.sleep(0.2)


def error_text(exc: BaseException | None) -> str:
    """An error as a job's task or log records it (its type named unless it is a GeocubeError)."""
    if exc is None:
        return "cancelled"
    text = str(exc).strip() or repr(exc)
    return text if isinstance(exc, GeocubeError) else f"{type(exc).__name__}: {text}"
