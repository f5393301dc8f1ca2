"""The steps of a deletion job: datasets locked, marked TODELETE, deleted with the managed files they
leave empty (see :mod:`.jobs` for the states and execution levels).

NEW (datasets locked) → CREATED (TODELETE) → DELETIONINPROGRESS (rows deleted, then files) →
DELETIONEFFECTIVE → DONE (locks released). A file that cannot be deleted leaves the job DONEBUTUNTIDY.
Cancelling before DELETIONINPROGRESS gives the datasets back their status. Unmanaged files are never
deleted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .consolidation import delete_untidy, tidy
from .entities import DatasetStatus, Instance, JobInfo, JobState, Record
from .errors import InvalidArgument
from .jobs import this_process

if TYPE_CHECKING:
    from .geocube import Geocube

S = JobState

__all__ = ["create", "delete", "finish", "initialise", "rollback", "tidy"]


def create(
    gc: Geocube,
    instance: Instance | str,
    *,
    records: Sequence[Record | str] | None,
    tags: Mapping[str, str | None] | None,
    time: Any,
    aoi: Any,
    name: str | None,
    execution_level: str,
) -> JobInfo:
    """Persist a deletion job (NEW) over the matching datasets of ``instance`` (any status), locked."""
    from .catalog.geometry import query_area

    inst = instance if isinstance(instance, Instance) else gc.get_instance(instance)
    record_ids = None if records is None else [r.id if isinstance(r, Record) else str(r) for r in records]
    rows = gc.find_datasets(inst, records=record_ids, tags=tags, time=time,
                            aoi=None if aoi is None else query_area(aoi), status=None, footprints=False)
    if not rows:
        raise InvalidArgument(f"nothing to delete: no dataset of instance {inst.name!r} matches the request")
    payload = {"instance_id": inst.id, "datasets": [d.id for _, d in rows],
               "statuses": {str(d.id): d.status.value for _, d in rows}}
    return gc.insert_job(name or f"deletion-{inst.name}-{os.urandom(4).hex()}", "deletion", execution_level,
                         payload, lock=payload["datasets"])


def initialise(gc: Geocube, info: JobInfo) -> JobInfo:
    """Mark the datasets TODELETE → CREATED."""
    ids = info.payload["datasets"]
    return gc.set_job_datasets_status(info, ids, DatasetStatus.TODELETE, state=S.CREATED,
                                      log=f"{len(ids)} dataset(s) marked TODELETE")


def delete(gc: Geocube, info: JobInfo, *, client: Any = None, progress: Callable[[int, int], None] | None = None
           ) -> JobInfo:
    """Delete the datasets, then the managed files they leave empty → DELETIONEFFECTIVE (or DONEBUTUNTIDY)."""
    p = dict(info.payload)
    p["untidy"] = sorted(set(p.get("untidy", [])) | set(gc.managed_containers_of(p["datasets"])))
    info = gc.update_job(info, state=S.DELETIONINPROGRESS, owner=this_process(), payload=p)
    info, _ = gc.delete_job_datasets(info, p["datasets"], log=f"deleted {len(p['datasets'])} dataset(s)")
    left = delete_untidy(gc, info)
    p["untidy"] = left
    if left:
        return gc.release_job(info, state=S.DONEBUTUNTIDY, payload=p, owner=None, level="WARNING",
                              log=f"{len(left)} file(s) could not be deleted: retry() tries again")
    return gc.update_job(info, state=S.DELETIONEFFECTIVE, payload=p, owner=None, log="datasets and files deleted")


def finish(gc: Geocube, info: JobInfo) -> JobInfo:
    """Release the locks → DONE."""
    return gc.release_job(info, state=S.DONE, owner=None, log="done")


def rollback(gc: Geocube, info: JobInfo) -> JobInfo:
    """ABORTED: give the datasets back their status, release the locks → FAILED."""
    if info.state is not S.ABORTED:
        info = gc.update_job(info, state=S.ABORTED, waiting=False, log="rolling back")
    by_status: dict[str, list[int]] = {}
    for ds_id, status in info.payload["statuses"].items():
        by_status.setdefault(status, []).append(int(ds_id))
    try:
        for status, ids in by_status.items():
            info = gc.set_job_datasets_status(info, ids, status)
        return gc.release_job(info, state=S.FAILED, owner=None, log="rolled back: statuses restored")
    except Exception as exc:  # noqa: BLE001 - reported, retry re-runs it
        info = gc.load_job(info.id)
        return gc.update_job(info, state=S.ROLLBACKFAILED, owner=None, level="ERROR", log=f"rollback failed: {exc}")
