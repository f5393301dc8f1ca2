"""Jobs: consolidation and deletion jobs, their logs, tasks and locks, and their control.

A job runs on the server: ``run``/``next``/``retry`` answer once the job is final, failed or waiting
(as :class:`geocube_dask.jobs.Job` does), on the server's dask cluster."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ...entities import JobInfo, LogEntry, Task
from ..deps import GC, require
from ..wire import Anything, Body, Bool, OptStr, Str, TagFilter, TimeRange, loose

router = APIRouter(tags=["jobs"])
READ, WRITE = require("read"), require("write")

OptRefs = loose({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]})
States = loose({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})


class ConsolidationIn(Body):
    instance: Str
    layout: Str
    records: OptRefs = None
    tags: TagFilter = None
    time: TimeRange = None
    aoi: Anything = None
    name: OptStr = None
    storage_uri: OptStr = None
    execution_level: Str = "async"


class DeletionIn(Body):
    instance: Str
    records: OptRefs = None
    tags: TagFilter = None
    time: TimeRange = None
    aoi: Anything = None
    name: OptStr = None
    execution_level: Str = "async"


class CleanIn(Body):
    state: States = ("DONE", "FAILED")
    name_like: OptStr = None


class Force(Body):
    force: Bool = False


class Count(BaseModel):
    count: int


@router.post("/jobs/consolidation", status_code=201, response_model=JobInfo, dependencies=[WRITE])
def consolidate(body: ConsolidationIn, gc: GC) -> JobInfo:
    """Create a consolidation job (it runs with `POST /jobs/{job}/run`)."""
    return gc.consolidate(body.instance, body.layout, **body.args("instance", "layout")).info


@router.post("/jobs/deletion", status_code=201, response_model=JobInfo, dependencies=[WRITE])
def delete_datasets_job(body: DeletionIn, gc: GC) -> JobInfo:
    """Create a deletion job over the matching datasets."""
    return gc.delete_datasets_job(body.instance, **body.args("instance")).info


@router.get("/jobs", response_model=list[JobInfo], dependencies=[READ])
def find_jobs(
    gc: GC, name_like: str | None = None, state: Annotated[list[str] | None, Query()] = None, type: str | None = None,
) -> list[JobInfo]:
    """Jobs whose name matches the `*`/`?` pattern, in one of the states, of a type; oldest first."""
    return gc.find_jobs(name_like, state, type)


@router.post("/jobs/clean", response_model=Count, dependencies=[WRITE])
def clean_jobs(body: CleanIn, gc: GC) -> Count:
    """Delete finished jobs; how many."""
    return Count(count=gc.clean_jobs(**body.args()))


@router.get("/jobs/{job}/logs", response_model=list[LogEntry], dependencies=[READ])
def job_logs(job: str, gc: GC) -> list[LogEntry]:
    """A job's log, oldest line first."""
    return gc.job_logs(gc.load_job(job).id)


@router.get("/jobs/{job}/tasks", response_model=list[Task], dependencies=[READ])
def job_tasks(job: str, gc: GC, state: Annotated[list[str] | None, Query()] = None) -> list[Task]:
    """A job's tasks (in these states)."""
    return gc.job_tasks(gc.load_job(job).id, state)


@router.get("/jobs/{job}/locks", response_model=list[int], dependencies=[READ])
def job_locks(job: str, gc: GC) -> list[int]:
    """The ids of the datasets a job holds."""
    return gc.job_locks(gc.load_job(job).id)


@router.post("/jobs/{job}/run", response_model=JobInfo, dependencies=[WRITE])
def run_job(job: str, gc: GC) -> JobInfo:
    """Run a job's steps until it is final, failed or waiting."""
    return gc.get_job(job).run().info


@router.post("/jobs/{job}/next", response_model=JobInfo, dependencies=[WRITE])
def next_job(job: str, gc: GC) -> JobInfo:
    """Go on with a waiting job."""
    return gc.get_job(job).next().info


@router.post("/jobs/{job}/retry", response_model=JobInfo, dependencies=[WRITE])
def retry_job(job: str, body: Force, gc: GC) -> JobInfo:
    """Start a failed or interrupted job again."""
    return gc.get_job(job).retry(force=body.force).info


@router.post("/jobs/{job}/cancel", response_model=JobInfo, dependencies=[WRITE])
def cancel_job(job: str, body: Force, gc: GC) -> JobInfo:
    """Cancel a job and roll it back."""
    return gc.get_job(job).cancel(force=body.force).info


@router.get("/jobs/{job:path}", response_model=JobInfo, dependencies=[READ])
def load_job(job: str, gc: GC) -> JobInfo:
    """A job by name or id."""
    return gc.load_job(job)
