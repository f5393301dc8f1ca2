"""Jobs as the catalogue stores them: job rows, their logs and tasks, and the datasets they lock.

A job row carries a ``version``. Every change is ``UPDATE … WHERE id = ? AND version = ?`` and bumps
it, so two processes that read the same version cannot both change the job: the second one gets
:class:`~geocube_dask.errors.JobConflict` and must reload the job. The logic of the states lives in
:mod:`geocube_dask.jobs`; this module only checks that the names are known.

A dataset is locked by at most one job (``locks.dataset_id`` is a primary key): locking a dataset
another job holds raises JobConflict naming that job, and locks nothing.

Compound steps that must change datasets and the job together (index the new files, swap statuses,
delete retired datasets) take the job and its new state and do both in one transaction: see
:mod:`.consolidation`.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..entities import ExecutionLevel, JobInfo, JobState, JobType, LogEntry, Task, TaskState, check_name
from ..errors import AlreadyExists, InvalidArgument, JobConflict, NotFound
from .db.engine import Connected
from .db.filters import check_pattern, match
from .db.schema import datasets, job_logs, jobs, locks, tasks
from .db.sqlutil import chunks, dialect_insert, integrity_kind

_KEEP: Any = object()  # "leave this field as it is" in update_job


def now() -> datetime:
    return datetime.now(UTC)


def this_process() -> str:
    """``host:pid``: the owner written on a job by the process that runs it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _state(value: Any) -> JobState:
    try:
        return JobState(value)
    except ValueError:
        names = ", ".join(s.value for s in JobState)
        raise InvalidArgument(f"unknown job state {value!r}: choose one of {names}") from None


def job_states(value: Any) -> list[JobState]:
    """A state or a list of states (JobState or their names) as JobStates; InvalidArgument for anything else."""
    if isinstance(value, str | JobState):
        return [_state(value)]
    if not isinstance(value, Iterable) or isinstance(value, bytes | dict):
        raise InvalidArgument(f"give a job state or a list of job states, not {value!r}")
    return [_state(v) for v in value]


def _type(value: Any) -> JobType:
    try:
        return JobType(value)
    except ValueError:
        names = ", ".join(t.value for t in JobType)
        raise InvalidArgument(f"unknown job type {value!r}: choose one of {names}") from None


def job_from_row(row: Any) -> JobInfo:
    return JobInfo(
        id=str(row.id), name=row.name, type=JobType(row.type), state=JobState(row.state),
        execution_level=ExecutionLevel(row.execution_level), waiting=bool(row.waiting), payload=row.payload,
        created=row.created, updated=row.updated, version=row.version, owner=row.owner,
    )


def _task_from_row(row: Any) -> Task:
    return Task(str(row.job_id), row.key, row.kind, TaskState(row.state), row.plan, row.result, row.error)


def _job_where(ref: str) -> sa.ColumnElement[bool]:
    try:
        return sa.or_(jobs.c.id == str(uuid.UUID(ref)), jobs.c.name == ref)
    except ValueError:
        return jobs.c.name == ref


def load_job_row(conn: Connection, ref: JobInfo | str) -> JobInfo:
    """The job with this id or name (a JobInfo is reloaded by id). Raises NotFound."""
    if isinstance(ref, JobInfo):
        where = jobs.c.id == ref.id
    elif isinstance(ref, str) and ref:
        where = _job_where(ref)
    else:
        raise InvalidArgument(f"give a job, a job name or a job id, not {ref!r}")
    row = conn.execute(sa.select(jobs).where(where)).first()
    if row is None:
        raise NotFound(f"no job named {ref if isinstance(ref, str) else ref.name!r}: see list_jobs()")
    return job_from_row(row)


def transition(
    conn: Connection,
    job: JobInfo,
    *,
    state: JobState | str | None = None,
    waiting: bool | None = None,
    payload: Mapping[str, Any] | None = None,
    owner: Any = _KEEP,
    log: str | None = None,
    level: str = "INFO",
) -> JobInfo:
    """Change a job inside an open transaction, if it still has ``job.version``; return the new row.

    Raises JobConflict when another process changed the job since it was read.
    """
    values: dict[str, Any] = {"version": job.version + 1, "updated": now()}
    if state is not None:
        values["state"] = _state(state).value
    if waiting is not None:
        values["waiting"] = bool(waiting)
    if payload is not None:
        values["payload"] = dict(payload)
    if owner is not _KEEP:
        values["owner"] = owner
    done = conn.execute(
        jobs.update().where(jobs.c.id == job.id, jobs.c.version == job.version).values(**values)
    ).rowcount
    if not done:
        current = conn.execute(sa.select(jobs.c.state, jobs.c.version).where(jobs.c.id == job.id)).first()
        if current is None:
            raise NotFound(f"job {job.name!r} was deleted by another process")
        raise JobConflict(
            f"job {job.name!r} was changed by another process (it is now {current.state}, version "
            f"{current.version}; this process had version {job.version}): reload it with "
            f"gc.get_job({job.name!r}) and try again"
        )
    if log is not None:
        write_log(conn, job.id, log, level)
    row = conn.execute(sa.select(jobs).where(jobs.c.id == job.id)).one()
    return job_from_row(row)


def write_log(conn: Connection, job_id: str, message: str, level: str = "INFO") -> None:
    conn.execute(job_logs.insert().values(job_id=job_id, time=now(), level=level, message=message))


def lock_rows(conn: Connection, job: JobInfo, dataset_ids: Sequence[int]) -> None:
    """Lock datasets for ``job`` inside an open transaction. Raises JobConflict naming the holder."""
    ids = sorted({int(i) for i in dataset_ids})
    for part in chunks(ids):
        held = conn.execute(
            sa.select(locks.c.dataset_id, jobs.c.name, jobs.c.state)
            .select_from(locks.join(jobs, jobs.c.id == locks.c.job_id))
            .where(locks.c.dataset_id.in_(part), locks.c.job_id != job.id)
            .order_by(locks.c.dataset_id)
        ).first()
        if held is not None:
            raise _locked(held.dataset_id, held.name, held.state)
        rows = [{"dataset_id": i, "job_id": job.id} for i in part]
        try:
            with conn.begin_nested():
                conn.execute(dialect_insert(conn, locks).on_conflict_do_nothing(), rows)
        except sa.exc.IntegrityError as exc:
            if integrity_kind(exc) != "foreign_key":
                raise
            raise NotFound(
                f"job {job.name!r}: some of its datasets were deleted meanwhile: create the job again"
            ) from None
        mine = conn.execute(
            sa.select(sa.func.count()).select_from(locks).where(locks.c.dataset_id.in_(part), locks.c.job_id == job.id)
        ).scalar_one()
        if mine != len(part):  # another job locked one between our check and our insert
            held = conn.execute(
                sa.select(locks.c.dataset_id, jobs.c.name, jobs.c.state)
                .select_from(locks.join(jobs, jobs.c.id == locks.c.job_id))
                .where(locks.c.dataset_id.in_(part), locks.c.job_id != job.id)
            ).first()
            raise _locked(held.dataset_id, held.name, held.state)


def _locked(dataset_id: int, name: str, state: str) -> JobConflict:
    return JobConflict(
        f"dataset {dataset_id} is locked by job {name!r} ({state}): wait until that job is finished, "
        f"or cancel it (gc.get_job({name!r}).cancel())"
    )


def refuse_locked(conn: Connection, dataset_ids: Sequence[int], doing: str) -> None:
    """Raise JobConflict if a job holds one of ``dataset_ids``: a running consolidation reads them and
    swaps them for its files, so nobody else may delete or change them meanwhile.

    On PostgreSQL the dataset rows are locked FOR UPDATE first: a job locking them at the same time
    (its insert takes FOR KEY SHARE through the foreign key) waits for this transaction, or this one
    waits for the job's and then sees its locks.
    """
    ids = sorted({int(i) for i in dataset_ids})
    for part in chunks(ids):
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(datasets.c.id).where(datasets.c.id.in_(part)).with_for_update())
        held = conn.execute(
            sa.select(locks.c.dataset_id, jobs.c.name, jobs.c.state)
            .select_from(locks.join(jobs, jobs.c.id == locks.c.job_id))
            .where(locks.c.dataset_id.in_(part))
            .order_by(locks.c.dataset_id)
        ).first()
        if held is not None:
            error = _locked(held.dataset_id, held.name, held.state)
            raise JobConflict(f"cannot {doing}: {error}; nothing was changed")


class JobMixin(Connected):
    """Job rows, logs, tasks and dataset locks (the state machine is :mod:`geocube_dask.jobs`)."""

    def insert_job(
        self,
        name: str,
        type: JobType | str,
        execution_level: ExecutionLevel | str,
        payload: Mapping[str, Any],
        lock: Iterable[int] = (),
    ) -> JobInfo:
        """Create a job in state NEW and lock ``lock`` (dataset ids) for it, in one transaction.

        Raises AlreadyExists (name taken) or JobConflict (a dataset is locked by another job): then
        nothing is created.
        """
        check_name(name, "job name")
        try:
            kind, level = JobType(type), ExecutionLevel(execution_level)
        except ValueError as exc:
            raise InvalidArgument(f"{exc}: job types are {', '.join(JobType)}, execution levels "
                                  f"{', '.join(ExecutionLevel)}") from None
        stamp = now()
        job = JobInfo(str(uuid.uuid4()), name, kind, JobState.NEW, level, False, dict(payload), stamp, stamp, 1, None)
        with self._tx() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(jobs.insert().values(
                        id=job.id, name=name, type=kind.value, state=job.state.value, execution_level=level.value,
                        waiting=False, payload=job.payload, owner=None, created=stamp, updated=stamp, version=1,
                    ))
            except sa.exc.IntegrityError as exc:
                if integrity_kind(exc) != "unique":
                    raise
                raise AlreadyExists(f"a job named {name!r} already exists: choose another name") from None
            lock_rows(conn, job, list(lock))
            write_log(conn, job.id, f"created {kind.value} job {name!r} ({level.value})")
        return job

    def load_job(self, ref: JobInfo | str) -> JobInfo:
        """The job with this name or id. Raises NotFound."""
        with self._tx(write=False) as conn:
            return load_job_row(conn, ref)

    def find_jobs(
        self,
        name_like: str | None = None,
        state: JobState | str | Iterable[JobState | str] | None = None,
        type: JobType | str | None = None,
    ) -> list[JobInfo]:
        """Jobs whose name matches the ``*``/``?`` pattern and whose state is ``state`` (or one of them),
        oldest first."""
        stmt = sa.select(jobs).order_by(jobs.c.created, jobs.c.name)
        if name_like is not None:
            stmt = stmt.where(match(jobs.c.name, check_pattern(name_like, "job name pattern")))
        if state is not None:
            stmt = stmt.where(jobs.c.state.in_([s.value for s in job_states(state)]))
        if type is not None:
            stmt = stmt.where(jobs.c.type == _type(type).value)
        with self._tx(write=False) as conn:
            return [job_from_row(r) for r in conn.execute(stmt)]

    def update_job(
        self,
        job: JobInfo,
        *,
        state: JobState | str | None = None,
        waiting: bool | None = None,
        payload: Mapping[str, Any] | None = None,
        owner: Any = _KEEP,
        log: str | None = None,
        level: str = "INFO",
    ) -> JobInfo:
        """Change a job if nobody changed it since ``job`` was read (else JobConflict); return the new row."""
        with self._tx() as conn:
            return transition(conn, job, state=state, waiting=waiting, payload=payload, owner=owner, log=log,
                              level=level)

    def delete_job_rows(self, ids: Iterable[str]) -> int:
        """Delete jobs with their logs, tasks and locks; return how many were deleted."""
        wanted = list(ids)
        with self._tx() as conn:
            count = 0
            for part in chunks(wanted):
                count += conn.execute(jobs.delete().where(jobs.c.id.in_(part))).rowcount
            return count

    # --- logs -------------------------------------------------------------------------------------------

    def log_job(self, job: JobInfo | str, message: str, level: str = "INFO") -> None:
        """Append a line to a job's log."""
        with self._tx() as conn:
            write_log(conn, job.id if isinstance(job, JobInfo) else job, message, level)

    def job_logs(self, job: JobInfo | str) -> list[LogEntry]:
        """A job's log, oldest line first."""
        job_id = job.id if isinstance(job, JobInfo) else job
        with self._tx(write=False) as conn:
            rows = conn.execute(
                sa.select(job_logs.c.time, job_logs.c.level, job_logs.c.message)
                .where(job_logs.c.job_id == job_id).order_by(job_logs.c.id)
            ).all()
        return [LogEntry(r.time, r.level, r.message) for r in rows]

    # --- tasks ------------------------------------------------------------------------------------------

    def job_tasks(
        self, job: JobInfo | str, state: TaskState | str | Iterable[TaskState | str] | None = None
    ) -> list[Task]:
        """A job's tasks (by key), optionally only those in ``state``."""
        job_id = job.id if isinstance(job, JobInfo) else job
        stmt = sa.select(tasks).where(tasks.c.job_id == job_id).order_by(tasks.c.key)
        if state is not None:
            states = [state] if isinstance(state, str) else list(state)
            stmt = stmt.where(tasks.c.state.in_([TaskState(s).value for s in states]))
        with self._tx(write=False) as conn:
            return [_task_from_row(r) for r in conn.execute(stmt)]

    def set_job_tasks(self, job: JobInfo, new_tasks: Sequence[Task], **change: Any) -> JobInfo:
        """Replace a job's tasks and change the job (``change``: as :meth:`update_job`), in one transaction."""
        keys = [t.key for t in new_tasks]
        if len(set(keys)) != len(keys):
            raise InvalidArgument(f"job {job.name!r}: task keys must be unique")
        with self._tx() as conn:
            out = transition(conn, job, **change)
            conn.execute(tasks.delete().where(tasks.c.job_id == job.id))
            if new_tasks:
                conn.execute(tasks.insert(), [
                    {"job_id": job.id, "key": t.key, "kind": t.kind, "state": TaskState(t.state).value,
                     "plan": dict(t.plan), "result": t.result, "error": t.error}
                    for t in new_tasks
                ])
            return out

    def finish_task(self, job: JobInfo | str, key: str, state: TaskState | str, result: Any = None,
                    error: str | None = None) -> None:
        """Record the outcome of one task (its result, or the error that made it fail)."""
        job_id = job.id if isinstance(job, JobInfo) else job
        with self._tx() as conn:
            done = conn.execute(
                tasks.update().where(tasks.c.job_id == job_id, tasks.c.key == key)
                .values(state=TaskState(state).value, result=result, error=error)
            ).rowcount
            if not done:
                raise NotFound(f"job {job_id} has no task {key!r}")

    def reset_tasks(
        self, job: JobInfo | str, states: Iterable[TaskState | str], to: TaskState | str = TaskState.NEW
    ) -> int:
        """Put the tasks in ``states`` back to ``to`` (clearing their error); return how many."""
        job_id = job.id if isinstance(job, JobInfo) else job
        with self._tx() as conn:
            return conn.execute(
                tasks.update().where(tasks.c.job_id == job_id, tasks.c.state.in_([TaskState(s).value for s in states]))
                .values(state=TaskState(to).value, error=None)
            ).rowcount

    # --- locks ------------------------------------------------------------------------------------------

    def lock_datasets(self, job: JobInfo, dataset_ids: Iterable[int]) -> None:
        """Lock datasets for ``job`` (all or none). Raises JobConflict naming the job that holds one."""
        with self._tx() as conn:
            lock_rows(conn, job, list(dataset_ids))

    def job_locks(self, job: JobInfo | str) -> list[int]:
        """The ids of the datasets a job holds, ascending."""
        job_id = job.id if isinstance(job, JobInfo) else job
        with self._tx(write=False) as conn:
            return list(conn.execute(
                sa.select(locks.c.dataset_id).where(locks.c.job_id == job_id).order_by(locks.c.dataset_id)
            ).scalars())

    def dataset_lock_holders(self, dataset_ids: Iterable[int]) -> dict[int, str]:
        """``{dataset id: name of the job locking it}`` for those of ``dataset_ids`` that are locked."""
        ids = sorted({int(i) for i in dataset_ids})
        out: dict[int, str] = {}
        with self._tx(write=False) as conn:
            for part in chunks(ids):
                out.update(conn.execute(
                    sa.select(locks.c.dataset_id, jobs.c.name)
                    .select_from(locks.join(jobs, jobs.c.id == locks.c.job_id))
                    .where(locks.c.dataset_id.in_(part))
                ).all())
        return out

    def release_job(self, job: JobInfo, **change: Any) -> JobInfo:
        """Release every lock of ``job`` and change it (``change``: as :meth:`update_job`), in one transaction."""
        with self._tx() as conn:
            out = transition(conn, job, **change)
            conn.execute(locks.delete().where(locks.c.job_id == job.id))
            return out
