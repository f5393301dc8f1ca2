"""The export job: a cube written to a Zarr store or a GeoTIFF by a job, so that the write can run on a
cluster after the process that asked for it has left (``geocube submit export``), and be followed, retried
and cancelled like any job (``geocube job show|retry|cancel``).

NEW → EXPORTINPROGRESS → DONE. The job holds the cube's plan (resolved when the job is made: the export
writes the cube as the catalogue was then, and does not lock datasets) and the output's path, as the
process running the job sees it: on a cluster, a path on a filesystem the workers share. Its one task
(key ``export``) names the file; once DONE, the task's result describes what was written (shape, grid,
bands, times). The output is written under a hidden temporary name beside it and renamed when complete
(:mod:`.cli.export`): a failed, cancelled or interrupted export leaves nothing under the requested name.

- A failure (a source file unreadable, the output already there without ``overwrite``, a disk full…)
  → EXPORTFAILED with the error in the task and the log; :meth:`Job.retry` writes it again.
- Cancelling a running export marks it CONSOLIDATIONCANCELLING; its driver, which looks at the job every
  :data:`CHECK_SECONDS` while the cube is computed, stops the computation and removes the temporary →
  FAILED. Cancelling an export that is not running → FAILED at once.
- A driver that died leaves the job EXPORTINPROGRESS: its retry (or a submitted driver's second attempt,
  :mod:`.submit`) waits until the tasks of the first attempt still running have ended (they carry the
  job's annotation), removes the temporary they wrote and writes again.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask

from .cli.export import ZARR_FORMATS, cube_info, output_format, remove, temporary, write_geotiff, write_zarr
from .entities import JobInfo, JobState, Task, TaskState
from .errors import GeocubeError, InvalidArgument, JobConflict
from .graph.plan import CubePlan
from .jobdask import JOB_ANNOTATION, error_text, job_client, job_token, wait_until_idle
from .jobs import this_process

if TYPE_CHECKING:
    from .geocube import Geocube

S = JobState
TASK = "export"  # the key of an export job's one task
CHECK_SECONDS = 0.5  # how often a running export looks for a cancel
Progress = Callable[[int, int], None]

__all__ = ["create", "export", "rollback"]


class Cancelled(GeocubeError):
    """The export's job was cancelled while its cube was being computed."""


def output_path(out: str | os.PathLike[str]) -> Path:
    """The absolute path of an export's output (a local or shared filesystem path, not a URL)."""
    text = os.fspath(out)
    if "://" in text:
        raise InvalidArgument(f"--out {text!r}: an export writes to a filesystem path (on a cluster: one its "
                              "workers share), not to a URL")
    output_format(text)
    return Path(os.path.abspath(text))


def create(
    gc: Geocube,
    plan: CubePlan,
    out: str | os.PathLike[str],
    *,
    zarr_format: int = 2,
    overwrite: bool = False,
    name: str | None = None,
    execution_level: str = "async",
) -> JobInfo:
    """Persist an export job (NEW) writing the cube of ``plan`` to ``out`` (see :meth:`Geocube.export_job`)."""
    path = output_path(out)
    if zarr_format not in ZARR_FORMATS:
        raise InvalidArgument(f"--zarr-format {zarr_format}: choose 2 or 3")
    if not plan.images:
        raise InvalidArgument(
            "no image matches this request: check --instance, --tag, --time, and that the extent overlaps the "
            "data (see 'geocube dataset list'); no job made"
        )
    payload = {
        "out": str(path), "format": "zarr" if output_format(path) == "zarr" else "geotiff",
        "zarr_format": zarr_format, "overwrite": overwrite, "plan": json.loads(plan.to_json()),
    }
    job_name = name or f"export-{path.stem}-{os.urandom(4).hex()}"
    return gc.insert_job(job_name, "export", execution_level, payload)


def _computer(gc: Geocube, info: JobInfo, client: Any) -> Callable[[Any], None]:
    """A ``compute`` for the writers: the graph on ``client``, stopped when the job is cancelled or a
    task fails (then only once no task of it runs any more)."""
    def compute(delayed: Any) -> None:
        token = job_token(info)
        with dask.annotate(**{JOB_ANNOTATION: token}):  # what a cancel, or a later attempt, waits for
            future = client.compute(delayed)
        # waited for through an event, not future.result(timeout=…): on a loaded machine that failed exports
        # that had ended well (its own TimeoutError as the future ended, an UnboundLocalError from
        # distributed's sync)
        ended = threading.Event()
        future.add_done_callback(lambda _: ended.set())
        try:
            while not ended.wait(CHECK_SECONDS):
                if gc.load_job(info.id).state is S.CONSOLIDATIONCANCELLING:
                    raise Cancelled(f"job {info.name!r} was cancelled")
            future.result()  # the computation's own error, if any
        except BaseException:
            client.cancel(future)
            wait_until_idle(client, token)
            raise

    return compute


def _write(gc: Geocube, info: JobInfo, client: Any) -> dict[str, Any]:
    """Write the job's cube (see the module docstring); return what the task's result records."""
    from distributed import Lock

    from .graph.cube import cube_from_plan

    p = info.payload
    path = Path(p["out"])
    cube = cube_from_plan(CubePlan.from_json(p["plan"]))
    token = job_token(info)
    compute = _computer(gc, info, client)
    start = time.perf_counter()
    if p["format"] == "zarr":
        write_zarr(cube, path, zarr_format=p["zarr_format"], overwrite=p["overwrite"], compute=compute, tag=token)
    else:
        lock = Lock(f"geocube-export-{token}")  # worker processes write windows of one file
        write_geotiff(cube, path, overwrite=p["overwrite"], compute=compute, lock=lock, tag=token)
    seconds = round(time.perf_counter() - start, 3)
    result = {"path": str(path), "format": p["format"], **cube_info(cube), "seconds": seconds}
    if p["format"] == "zarr":
        result["zarr_format"] = p["zarr_format"]
    return result


def export(gc: Geocube, info: JobInfo, *, client: Any = None, progress: Progress | None = None) -> JobInfo:
    """Write the export → DONE; EXPORTFAILED (the error in the task and the log), or FAILED when cancelled."""
    task = Task(info.id, TASK, "export", TaskState.NEW, {"uri": info.payload["out"]}, None, None)
    taken_over = info.state is S.EXPORTINPROGRESS  # from a driver that died: its tasks may still be running
    info = gc.set_job_tasks(info, [task], state=S.EXPORTINPROGRESS, owner=this_process())
    if progress is not None:
        progress(0, 1)
    try:
        with job_client(client) as dask_client:
            if taken_over:  # they would write into the temporary the new attempt writes again
                wait_until_idle(dask_client, job_token(info))
            gc.log_job(info, f"writing {info.payload['out']}; dashboard: {dask_client.dashboard_link}")
            result = _write(gc, info, dask_client)
    except Cancelled:
        return rollback(gc, gc.load_job(info.id))
    except Exception as exc:  # noqa: BLE001 - any failure is the job's outcome, reported in it
        error = error_text(exc)
        gc.finish_task(info, TASK, TaskState.FAILED, error=error)
        return _finish(gc, info, state=S.EXPORTFAILED, level="ERROR",
                       log=f"export failed, nothing written under {info.payload['out']}: {error}; retry() writes "
                           "it again")
    gc.finish_task(info, TASK, TaskState.DONE, result=result)
    if progress is not None:
        progress(1, 1)
    t, b, h, w = result["shape"]
    return _finish(gc, info, state=S.DONE, log=f"wrote {result['path']} ({result['format']}): {t} image(s) × {b} "
                                              f"band(s) × {h} × {w} px in {result['seconds']:.1f} s")


def _finish(gc: Geocube, info: JobInfo, **change: Any) -> JobInfo:
    """The last transition of the step; a cancel that came meanwhile rolls back instead."""
    try:
        return gc.update_job(info, owner=None, **change)
    except JobConflict:
        current = gc.load_job(info.id)
        if current.state is S.CONSOLIDATIONCANCELLING:
            return rollback(gc, current)
        raise


def rollback(gc: Geocube, info: JobInfo) -> JobInfo:
    """ABORTED: remove what the export wrote (the output, if the cancel came once it was complete, and the
    temporary a dead driver left) → FAILED, or ROLLBACKFAILED."""
    if info.state is not S.ABORTED:
        info = gc.update_job(info, state=S.ABORTED, waiting=False, owner=this_process(), log="rolling back")
    path = Path(info.payload["out"])
    try:
        written = gc.job_tasks(info, [TaskState.DONE])
        if written:
            remove(path)
        remove(temporary(path, job_token(info)))
        gc.reset_tasks(info, [TaskState.NEW, TaskState.FAILED, TaskState.DONE], to=TaskState.CANCELLED)
        return gc.update_job(info, state=S.FAILED, owner=None,
                             log=f"cancelled: nothing left under {path}" if written else "cancelled")
    except Exception as exc:  # noqa: BLE001 - whatever stopped the rollback is reported, retry re-runs it
        info = gc.load_job(info.id)
        return gc.update_job(info, state=S.ROLLBACKFAILED, owner=None, level="ERROR",
                             log=f"rollback failed: {error_text(exc)}; retry() or cancel() rolls back again")
