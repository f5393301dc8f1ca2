"""The job state machine: consolidation and deletion jobs, persisted in the catalogue, run step by step.

States (GEOCUBE.md "Job states")::

    consolidation: NEW → CREATED → CONSOLIDATIONINPROGRESS → CONSOLIDATIONDONE → CONSOLIDATIONINDEXED
                   → CONSOLIDATIONEFFECTIVE → DONE
    deletion:      NEW → CREATED → DELETIONINPROGRESS → DELETIONEFFECTIVE → DONE
    export:        NEW → EXPORTINPROGRESS → DONE (EXPORTFAILED: retry writes again; see .exporting)

Steps (each ends with one transition, written only if nobody changed the job meanwhile):

- NEW → CREATED: plan the files, lock the datasets they replace, store one task per file
  (INITIALISATIONFAILED if planning fails; :meth:`Job.retry` plans again). A deletion job marks its
  datasets TODELETE.
- CREATED → CONSOLIDATIONINPROGRESS → CONSOLIDATIONDONE: one dask graph computes every pending task (a
  file: images → COG → MUCOG → upload); each outcome is stored as it arrives, so work done survives a
  dead driver. Any failed task → CONSOLIDATIONFAILED, whose retry re-runs only the failed tasks.
- CONSOLIDATIONDONE → CONSOLIDATIONINDEXED: the new files are indexed INACTIVE (managed containers).
- CONSOLIDATIONINDEXED → CONSOLIDATIONEFFECTIVE: in one transaction the replaced datasets become
  TODELETE and the new ones ACTIVE.
- CONSOLIDATIONEFFECTIVE → DONE: the retired datasets are deleted, with the managed files they leave
  empty, and the locks released; DONEBUTUNTIDY if some file could not be deleted (retry finishes).
- Cancelling (before CONSOLIDATIONEFFECTIVE) → CONSOLIDATIONCANCELLING (a running driver stops) →
  ABORTED → rollback (new datasets and files deleted, locks released) → FAILED, or ROLLBACKFAILED
  (retry or cancel again re-runs the rollback).

Execution levels: the job stops, ``waiting``, *before* entering these states, until :meth:`Job.next`:

=====================  ==========================================================  =======================
level                  consolidation                                               deletion
=====================  ==========================================================  =======================
async                  never                                                       never
step-by-step-critical  CONSOLIDATIONEFFECTIVE (readers switch), DONE (deletion)    DELETIONINPROGRESS
step-by-step-major     critical + CONSOLIDATIONINPROGRESS, CONSOLIDATIONINDEXED    critical + CREATED
step-by-step-all       major + CREATED (every step)                                major + DONE
=====================  ==========================================================  =======================

A job in progress carries its driver's ``host:pid``: another process may take it over (``retry``)
only once that process is gone (or with ``force=True`` when it runs on another host).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .entities import ExecutionLevel, JobInfo, JobState, JobType, LogEntry, Task, TaskState
from .errors import JobConflict

if TYPE_CHECKING:
    from .geocube import Geocube

S = JobState
Progress = Callable[[int, int], None]

FINAL = frozenset({S.DONE, S.FAILED})

# state → (next state, name of the step that gets there)
FORWARD: dict[JobType, dict[JobState, tuple[JobState, str]]] = {
    JobType.CONSOLIDATION: {
        S.NEW: (S.CREATED, "initialise"),
        S.CREATED: (S.CONSOLIDATIONINPROGRESS, "consolidate"),
        S.CONSOLIDATIONDONE: (S.CONSOLIDATIONINDEXED, "index"),
        S.CONSOLIDATIONINDEXED: (S.CONSOLIDATIONEFFECTIVE, "swap"),
        S.CONSOLIDATIONEFFECTIVE: (S.DONE, "cleanup"),
    },
    JobType.DELETION: {
        S.NEW: (S.CREATED, "initialise"),
        S.CREATED: (S.DELETIONINPROGRESS, "delete"),
        S.DELETIONEFFECTIVE: (S.DONE, "finish"),
    },
    JobType.EXPORT: {
        S.NEW: (S.DONE, "export"),  # through EXPORTINPROGRESS while the file is written
    },
}

_CRITICAL = {
    JobType.CONSOLIDATION: {S.CONSOLIDATIONEFFECTIVE, S.DONE},
    JobType.DELETION: {S.DELETIONINPROGRESS},
    JobType.EXPORT: set(),  # writing a new file changes nothing a reader sees
}
_MAJOR = {
    JobType.CONSOLIDATION: _CRITICAL[JobType.CONSOLIDATION] | {S.CONSOLIDATIONINPROGRESS, S.CONSOLIDATIONINDEXED},
    JobType.DELETION: _CRITICAL[JobType.DELETION] | {S.CREATED},
    JobType.EXPORT: set(),
}
PAUSE_BEFORE: dict[ExecutionLevel, dict[JobType, frozenset[JobState]]] = {
    ExecutionLevel.ASYNC: {t: frozenset() for t in JobType},
    ExecutionLevel.CRITICAL: {t: frozenset(s) for t, s in _CRITICAL.items()},
    ExecutionLevel.MAJOR: {t: frozenset(s) for t, s in _MAJOR.items()},
    ExecutionLevel.ALL: {t: frozenset(target for target, _ in FORWARD[t].values()) for t in JobType},
}

# States a cancel can start from (before the new files are effective), per type.
CANCELLABLE = {
    JobType.CONSOLIDATION: frozenset({
        S.NEW, S.CREATED, S.INITIALISATIONFAILED, S.CONSOLIDATIONINPROGRESS, S.CONSOLIDATIONFAILED,
        S.CONSOLIDATIONDONE, S.CONSOLIDATIONINDEXED, S.CONSOLIDATIONCANCELLING, S.ABORTED, S.ROLLBACKFAILED,
    }),
    JobType.DELETION: frozenset({S.NEW, S.CREATED, S.CONSOLIDATIONCANCELLING, S.ABORTED, S.ROLLBACKFAILED}),
    JobType.EXPORT: frozenset({
        S.NEW, S.EXPORTINPROGRESS, S.EXPORTFAILED, S.CONSOLIDATIONCANCELLING, S.ABORTED, S.ROLLBACKFAILED,
    }),
}
# States in which a driver process is working on the job (another process must not take over).
RUNNING = frozenset({S.CONSOLIDATIONINPROGRESS, S.DELETIONINPROGRESS, S.EXPORTINPROGRESS})

_running_here: set[str] = set()  # ids of the jobs this process is driving right now
_running_lock = threading.Lock()


def steps_of(kind: JobType) -> Any:
    """The module holding the steps of a job type (each step ends with one transition of the job)."""
    from . import consolidation, deletion, exporting

    return {JobType.CONSOLIDATION: consolidation, JobType.DELETION: deletion, JobType.EXPORT: exporting}[kind]


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None, job_id: str) -> bool:
    """Whether the process ``host:pid`` may still be driving the job (unknown hosts count as alive)."""
    if not owner:
        return False
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return job_id in _running_here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def driving(job_id: str) -> Iterator[None]:
    """Mark the job as driven by this process (refusing a second driver in the same process)."""
    with _running_lock:
        if job_id in _running_here:
            raise JobConflict("this job is already running in this process (another thread): wait for it")
        _running_here.add(job_id)
    try:
        yield
    finally:
        with _running_lock:
            _running_here.discard(job_id)


class JobView:
    """What a job is and where it stands: its row's fields, its state, logs and tasks, each read from the
    catalogue on access (``gc``: a local or a remote catalogue). :class:`Job` adds the driving;
    :class:`geocube_dask.client.RemoteJob` drives it on a server."""

    def __init__(self, gc: Any, info: JobInfo) -> None:
        self._gc = gc
        self._info = info

    @property
    def id(self) -> str:
        return self._info.id

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def type(self) -> JobType:
        return self._info.type

    @property
    def execution_level(self) -> ExecutionLevel:
        return self._info.execution_level

    @property
    def info(self) -> JobInfo:
        """The job's row, read now."""
        self._info = self._gc.load_job(self._info.id)
        return self._info

    @property
    def state(self) -> JobState:
        return self.info.state

    @property
    def waiting(self) -> bool:
        return self.info.waiting

    @property
    def payload(self) -> dict[str, Any]:
        return dict(self.info.payload)

    @property
    def logs(self) -> list[LogEntry]:
        return self._gc.job_logs(self._info.id)

    @property
    def tasks(self) -> list[Task]:
        return self._gc.job_tasks(self._info.id)

    def __repr__(self) -> str:
        info = self._info
        wait = ", waiting" if info.waiting else ""
        return f"Job({info.name!r}, {info.type.value}, {info.state.value}{wait})"


class Job(JobView):
    """A handle on a persisted job. Its state is read from the catalogue on every access.

    ``run``/``next``/``retry``/``cancel`` drive the job and return it; ``client`` is any
    ``distributed.Client`` (default: an in-process cluster of threads, with a dashboard), ``progress`` a
    callable ``(tasks done, tasks to do)`` called as files complete.
    """

    _gc: Geocube

    # --- driving -------------------------------------------------------------------------------------

    def run(self, client: Any = None, progress: Progress | None = None) -> Job:
        """Run the job's steps until it is final, failed or waiting (see the module docstring)."""
        info = self.info
        with driving(info.id):
            while True:
                if info.state in FINAL or info.waiting:
                    break
                step = FORWARD[info.type].get(info.state)
                if step is None:
                    break  # a failed or cancelling state: retry() or cancel() decide
                target, name = step
                if target in PAUSE_BEFORE[info.execution_level][info.type]:
                    info = self._gc.update_job(info, waiting=True,
                                               log=f"waiting before {target.value}: call next() to go on")
                    break
                info = self._step(info, name, client, progress)
        self._info = info
        return self

    def next(self, client: Any = None, progress: Progress | None = None) -> Job:
        """Go on with a waiting job: run the step it waits before, then on as :meth:`run` does."""
        info = self.info
        if not info.waiting:
            raise JobConflict(f"job {info.name!r} is not waiting ({info.state.value}): use run(), retry() or cancel()")
        target, name = FORWARD[info.type][info.state]
        with driving(info.id):
            info = self._gc.update_job(info, waiting=False, log=f"going on to {target.value}")
            info = self._step(info, name, client, progress)
        self._info = info
        return self.run(client, progress)

    def retry(self, force: bool = False, client: Any = None, progress: Progress | None = None) -> Job:
        """Start a failed or interrupted job again.

        INITIALISATIONFAILED: plan again; CONSOLIDATIONFAILED: re-run only the failed tasks;
        EXPORTFAILED: write the export again; DONEBUTUNTIDY: delete the files left; ROLLBACKFAILED, or a
        cancel whose driver is gone: roll back again; a job left in progress by a process that is gone
        (``force=True``: whatever its driver): go on with the tasks not done. Other unfinished states: as
        :meth:`run`.
        """
        from . import consolidation, deletion, exporting

        info = self.info
        if info.state in FINAL:
            raise JobConflict(f"job {info.name!r} is {info.state.value}: there is nothing to retry")
        if info.waiting:
            raise JobConflict(f"job {info.name!r} is waiting before its next step: use next() (or cancel())")
        self._check_not_driven(info, force)
        with driving(info.id):
            steps = steps_of(info.type)
            if info.state in (S.CONSOLIDATIONCANCELLING, S.ABORTED, S.ROLLBACKFAILED):
                info = steps.rollback(self._gc, info)
            elif info.state is S.INITIALISATIONFAILED:
                info = steps.initialise(self._gc, info)
            elif info.state in (S.CONSOLIDATIONFAILED, S.CONSOLIDATIONINPROGRESS):
                reset = self._gc.reset_tasks(info, [TaskState.FAILED, TaskState.CANCELLED])
                self._gc.log_job(info, f"retrying {reset} failed task(s) and the tasks not done")
                info = consolidation.consolidate(self._gc, info, client=client, progress=progress)
            elif info.state is S.DONEBUTUNTIDY:
                info = steps.tidy(self._gc, info)
            elif info.state is S.DELETIONINPROGRESS:
                info = deletion.delete(self._gc, info, client=client, progress=progress)
            elif info.state in (S.EXPORTFAILED, S.EXPORTINPROGRESS):
                info = exporting.export(self._gc, info, client=client, progress=progress)
        self._info = info
        return self.run(client, progress)

    def cancel(self, force: bool = False) -> Job:
        """Cancel the job and roll it back: its new datasets and files deleted, its locks released → FAILED.

        Possible until the job's files are effective. A job in progress in another live process is
        only marked CONSOLIDATIONCANCELLING: that process stops and rolls back (``force=True`` rolls back
        here, for a driver known to be gone).
        """
        info = self.info
        if info.state not in CANCELLABLE[info.type]:
            if info.state in FINAL:
                raise JobConflict(f"job {info.name!r} is already {info.state.value}")
            raise JobConflict(
                f"job {info.name!r} is {info.state.value}: its changes are already effective and cannot be "
                "cancelled; retry() finishes it"
            )
        driven = info.state in RUNNING | {S.CONSOLIDATIONCANCELLING} and owner_alive(info.owner, info.id)
        if driven and not force:
            if info.state is not S.CONSOLIDATIONCANCELLING:
                info = self._gc.update_job(info, state=S.CONSOLIDATIONCANCELLING,
                                           log=f"cancel requested; {info.owner} stops and rolls back")
            self._info = info
            return self
        with driving(info.id):
            if info.state not in (S.CONSOLIDATIONCANCELLING, S.ABORTED, S.ROLLBACKFAILED):
                info = self._gc.update_job(info, state=S.CONSOLIDATIONCANCELLING, waiting=False, log="cancel requested")
            info = steps_of(info.type).rollback(self._gc, info)
        self._info = info
        return self

    # --- internals -----------------------------------------------------------------------------------

    def _check_not_driven(self, info: JobInfo, force: bool) -> None:
        if info.state in RUNNING | {S.CONSOLIDATIONCANCELLING} and owner_alive(info.owner, info.id) and not force:
            raise JobConflict(
                f"job {info.name!r} is {info.state.value} in process {info.owner}: wait for it, or if that "
                "process is gone (another host), retry(force=True)"
            )

    def _step(self, info: JobInfo, name: str, client: Any, progress: Progress | None) -> JobInfo:
        step = getattr(steps_of(info.type), name)
        if name in ("consolidate", "delete", "export"):
            return step(self._gc, info, client=client, progress=progress)
        return step(self._gc, info)
