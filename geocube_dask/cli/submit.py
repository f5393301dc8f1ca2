"""``geocube submit consolidate|export``: create a job and hand it to a running dask cluster, then return.

Unlike ``geocube consolidate --scheduler`` or ``geocube cube --out``, whose process does the work to its
end, the job's driver runs on the cluster (:mod:`geocube_dask.submit`): this command returns as soon as
the scheduler has it, and ``geocube job show NAME`` follows the job from then on. An export job
(:mod:`geocube_dask.exporting`) writes its file where the workers see ``--out``; once DONE, its task names
the file; a failed export (EXPORTFAILED, with the error) leaves nothing under that name.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from ..errors import ClusterConnectionError
from .common import Json, Tags, Time, state
from .cube import (
    AoiExtentOpt,
    BoundsOpt,
    ChunksOpt,
    CrsOpt,
    FromPlanOpt,
    GroupByOpt,
    InstanceOpt,
    OverwriteOpt,
    ResamplingOpt,
    ResolutionOpt,
    ZarrFormatOpt,
    request_plan,
)
from .jobs import (
    AoiOpt,
    InstanceArg,
    LayoutOpt,
    LevelOpt,
    NameOpt,
    RecordOpt,
    StorageOpt,
    create_consolidation,
    job_dict,
)
from .output import Output

submit_app = typer.Typer(no_args_is_help=True, help=(
    "Hand jobs to a running dask cluster (e.g. 'geocube cluster local') and return at once."))

SchedulerAddress = Annotated[str, typer.Option(metavar="ADDRESS", help=(
    "The dask scheduler to run on, e.g. tcp://127.0.0.1:8786 (its workers must reach the catalogue)."))]
WorkerDb = Annotated[str | None, typer.Option(metavar="URL", help=(
    "The catalogue's URL as the workers reach it (default: the same as --db; 'env': the workers' own "
    "$GEOCUBE_DB, as on Kubernetes)."))]


def _accepted(key: str, dask_scheduler: Any = None) -> bool:
    """(Run on the scheduler) whether it holds the task ``key`` for nobody in particular (fire and forget)."""
    ts = dask_scheduler.tasks.get(key)
    return ts is not None and any(cs.client_key == "fire-and-forget" for cs in ts.who_wants or ())


@contextmanager
def scheduler_client(address: str, timeout: float) -> Iterator[Any]:
    """A client of the scheduler at ``address``; ClusterConnectionError when it cannot be reached."""
    from distributed import Client

    try:
        client = Client(address, set_as_default=False, timeout=timeout)
    except (OSError, ValueError) as exc:
        raise ClusterConnectionError(
            f"cannot reach the dask scheduler at {address} ({exc}): check the address, or start a cluster "
            "with 'geocube cluster local'"
        ) from None
    with client:
        yield client


def hand_over(job: Any, client: Any, worker_db: str | None, timeout: float) -> str:
    """Submit ``job``'s driver through ``client``; return its key once the scheduler holds it, or once the
    driver has moved the job on (a driver that ends at once, e.g. on an output already there, may be done
    and forgotten by the scheduler before it is first asked)."""
    from ..entities import JobState
    from ..submit import submit_job

    key = submit_job(job, client, worker_db)
    deadline = time.monotonic() + timeout
    while not (client.run_on_scheduler(_accepted, key) or job.state != JobState.NEW):
        if time.monotonic() > deadline:
            raise ClusterConnectionError(
                f"the scheduler did not take job {job.name!r}'s driver within {timeout:.0f} s: check the cluster, "
                f"then run the job with 'geocube job retry {job.name} --scheduler ADDRESS'"
            )
        time.sleep(0.05)
    return key


@submit_app.command("consolidate")
def submit_consolidate(
    ctx: typer.Context,
    instance: InstanceArg,
    layout: LayoutOpt,
    scheduler: SchedulerAddress,
    record: RecordOpt = None,
    tag: Tags = None,
    time: Time = None,
    aoi: AoiOpt = None,
    name: NameOpt = None,
    storage: StorageOpt = None,
    level: LevelOpt = "async",
    worker_db: WorkerDb = None,
    timeout: Annotated[float, typer.Option(metavar="SECONDS", help="How long to try to reach the scheduler.")] = 30.0,
    as_json: Json = False,
) -> None:
    """Create a consolidation job and run it on the cluster of --scheduler; return at once (follow it with
    'geocube job show NAME')."""
    with scheduler_client(scheduler, timeout) as client:  # reached before the job is made (and locks datasets)
        job = create_consolidation(state(ctx).gc, instance, layout, record, tag, time, aoi, name, storage, level)
        key = hand_over(job, client, worker_db, timeout)
    out = Output(as_json)
    out.emit({**job_dict(job), "scheduler": scheduler, "driver": key})
    out.show(f"job {job.name}: submitted to {scheduler}")
    out.note(f"follow it with: geocube job show {job.name}")


@submit_app.command("export")
def submit_export(
    ctx: typer.Context,
    out_path: Annotated[str, typer.Option("--out", metavar="FILE", help=(
        "Output: a .zarr store or a .tif GeoTIFF, as the workers see it (a relative path is taken from here)."))],
    scheduler: SchedulerAddress,
    instance: InstanceOpt = None,
    crs: CrsOpt = None,
    resolution: ResolutionOpt = None,
    bounds: BoundsOpt = None,
    aoi: AoiExtentOpt = None,
    tag: Tags = None,
    time: Time = None,
    resampling: ResamplingOpt = None,
    group_by: GroupByOpt = None,
    chunks: ChunksOpt = None,
    from_plan: FromPlanOpt = None,
    zarr_format: ZarrFormatOpt = 2,
    overwrite: OverwriteOpt = False,
    name: NameOpt = None,
    worker_db: WorkerDb = None,
    timeout: Annotated[float, typer.Option(metavar="SECONDS", help="How long to try to reach the scheduler.")] = 30.0,
    as_json: Json = False,
) -> None:
    """Create a job writing a cube (the request of 'geocube cube') to --out, and run it on the cluster of
    --scheduler; return at once. 'geocube job show NAME' follows it: DONE with its file in the task list, or
    EXPORTFAILED with the error (then nothing is under --out; 'geocube job retry NAME --scheduler ADDRESS')."""
    with scheduler_client(scheduler, timeout) as client:
        plan = request_plan(ctx, instance, crs, resolution, bounds, aoi, tag, time, resampling, group_by, chunks,
                            from_plan)
        job = state(ctx).gc.export_job(plan, out_path, zarr_format=zarr_format, overwrite=overwrite, name=name)
        key = hand_over(job, client, worker_db, timeout)
    out = Output(as_json)
    target = job.payload["out"]
    out.emit({**job_dict(job), "out": target, "scheduler": scheduler, "driver": key})
    out.show(f"job {job.name}: export to {target} submitted to {scheduler}")
    out.note(f"follow it with: geocube job show {job.name}")
