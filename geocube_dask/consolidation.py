"""The steps of a consolidation job, run by the process that owns the job (see :mod:`.jobs`).

This is where the catalogue and :mod:`.consolidate` meet: the steps read the job's datasets and the
layout's files from the catalogue, give them to the pure planner and graph builder, compute the graph
on a dask client, and write the outcome back (tasks, new datasets, statuses) through the catalogue's
job methods, each step ending with one versioned transition of the job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import shapely
from affine import Affine

from .catalog.ingest.footprints import footprint_4326, footprint_native
from .catalog.ingest.requests import PreparedDataset
from .consolidate.files import FileSettings, staging_root
from .consolidate.graph import Settings, consolidation_graph
from .consolidate.images import ImageSettings
from .consolidate.plan import ExistingFile, FilePlan, plan_consolidation
from .entities import (
    ConsolidationParams,
    Dataset,
    DatasetStatus,
    Instance,
    JobInfo,
    JobState,
    Layout,
    Record,
    Task,
    TaskState,
    Variable,
)
from .errors import GeocubeError, InvalidArgument, JobConflict
from .gdal_settings import gdal_env, public_env
from .graph.plan import PlanRecord, Source
from .jobdask import error_text, job_client, job_token, wait_until_idle
from .jobs import this_process
from .storage import delete, normalize_uri

if TYPE_CHECKING:
    from .geocube import Geocube

S = JobState
STORAGE_ENV = "GEOCUBE_STORAGE"
Progress = Callable[[int, int], None]


def default_storage() -> str:
    """``$GEOCUBE_STORAGE``, else the folder ``./geocube-data``: where consolidated files go by default."""
    return normalize_uri(os.environ.get(STORAGE_ENV) or "geocube-data")


# --- creation -------------------------------------------------------------------------------------------


def create(
    gc: Geocube,
    instance: Instance | str,
    layout: Layout | str,
    *,
    records: Sequence[Record | str] | None,
    tags: Mapping[str, str | None] | None,
    time: Any,
    aoi: Any,
    name: str | None,
    storage_uri: str | None,
    execution_level: str,
) -> JobInfo:
    """Persist a new consolidation job (NEW) and lock its datasets. See :meth:`Geocube.consolidate`."""
    from .catalog.geometry import query_area

    inst = instance if isinstance(instance, Instance) else gc.get_instance(instance)
    lay = gc.get_layout(layout.name if isinstance(layout, Layout) else layout)
    area = None if aoi is None else query_area(aoi)
    record_ids = None if records is None else [r.id if isinstance(r, Record) else str(r) for r in records]
    rows = gc.find_datasets(inst, records=record_ids, tags=tags, time=time, aoi=area, footprints=False)
    if not rows:
        raise InvalidArgument(
            f"nothing to consolidate: no ACTIVE dataset of instance {inst.name!r} matches the request "
            "(check records=, tags=, time= and aoi=)"
        )
    storage = normalize_uri(storage_uri) if storage_uri is not None else default_storage()
    payload = {
        "instance_id": inst.id,
        "layout": lay.name,
        "storage_uri": storage,
        "aoi": None if area is None else area.wkt,
        "datasets": [ds.id for _, ds in rows],
        "records": list(dict.fromkeys(rec.id for rec, _ in rows)),
    }
    job_name = name or f"consolidation-{lay.name}-{os.urandom(4).hex()}"
    return gc.insert_job(job_name, "consolidation", execution_level, payload, lock=payload["datasets"])


# --- NEW → CREATED --------------------------------------------------------------------------------------


def _cells(gc: Geocube, layout: Layout, area: Any) -> list[Any]:
    """The layout's cells touching ``area`` (EPSG:4326)."""
    return gc.tile_aoi(area, layout)


def signature(layout: Layout, params: ConsolidationParams, resampling: str) -> str:
    """What a file's content depends on besides its records: a later job with the same keeps the file."""
    doc = {
        "grid": layout.grid, "crs": layout.crs, "resolution": layout.resolution, "cell_size": layout.cell_size,
        "origin": list(layout.origin), "block_size": layout.block_size,
        "overview_min_size": layout.overview_min_size, "pattern": layout.pattern,
        "compression": layout.compression, "dformat": params.dformat.to_json(), "exponent": params.exponent,
        "kind": params.compression, "max_error": params.max_error, "options": dict(params.creation_options),
        "ov_resampling": params.resampling, "resampling": resampling,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def settings_for(layout: Layout, variable: Variable, instance: Instance, params: ConsolidationParams) -> Settings:
    """How the job's files are computed and written (checked: bad creation options raise here)."""
    from .consolidate.cog import creation_options, overview_resampling_for

    options = creation_options(
        params.dformat.dtype, compression=params.compression, max_error=params.max_error,
        creation_options=dict(params.creation_options) or None, block_size=layout.block_size,
        overview_resampling=overview_resampling_for(params.resampling or variable.resampling),
        bands=len(variable.bands), codec=layout.compression,
    )
    images = ImageSettings(
        variable=variable.name, instances=(instance.name,), bands=variable.bands, dformat=variable.dformat,
        resampling=variable.resampling, stored=params.dformat, exponent=params.exponent,
        chunks=max(layout.block_size, 1024), gdal_env=public_env(gdal_env()),
        nodata_margin=params.max_error if params.compression == "lossy" and params.max_error else 0.0,
    )
    files = FileSettings(
        options={str(k): str(v) for k, v in options.items()}, overview_min_size=layout.overview_min_size,
        overview_resampling=options["OVERVIEW_RESAMPLING"], pattern=layout.pattern, nodata=params.dformat.nodata,
    )
    return Settings(images, files)


def _rows(gc: Geocube, instance: Instance, record_ids: Sequence[str], ids: set[int]) -> list[tuple[Record, Dataset]]:
    if not ids:
        return []
    return [(r, d) for r, d in gc.find_datasets(instance, records=list(record_ids)) if d.id in ids]


def initialise(gc: Geocube, info: JobInfo) -> JobInfo:
    """Plan the files, lock what they replace, store the tasks → CREATED (else INITIALISATIONFAILED)."""
    try:
        return _initialise(gc, info)
    except (GeocubeError, OSError, ValueError) as exc:
        info = gc.load_job(info.id)
        return gc.update_job(info, state=S.INITIALISATIONFAILED, log=f"initialisation failed: {exc}", level="ERROR")


def _initialise(gc: Geocube, info: JobInfo) -> JobInfo:
    from .catalog.geometry import query_area
    from .geocube import source_of

    p = dict(info.payload)
    inst = gc.get_instance(p["instance_id"])
    var = gc.get_variable(inst.variable_id)
    layout = gc.get_layout(p["layout"])
    params = gc.get_consolidation_params(var)
    rows = _rows(gc, inst, p["records"], set(p["datasets"]))
    if len(rows) < len(p["datasets"]):
        gc.log_job(info, f"{len(p['datasets']) - len(rows)} of the job's datasets are no longer ACTIVE: left out",
                   "WARNING")
    area = shapely.union_all([ds.footprint_4326 for _, ds in rows]) if rows else None
    if area is not None and p.get("aoi"):
        area = area.intersection(shapely.from_wkt(p["aoi"]))
    cells = _cells(gc, layout, query_area(area)) if area is not None and not area.is_empty else []
    cell_ids = {str(c.id) for c in cells}
    existing = [f for f in gc.layout_files(layout.name, inst, cells=sorted(cell_ids))
                if f.datasets and all(d.status is DatasetStatus.ACTIVE for d in f.datasets)]
    known = {ds.id for _, ds in rows}
    extra = {d.id for f in existing for d in f.datasets} - known
    if extra:
        gc.lock_datasets(info, extra)
        rows += _rows(gc, inst, sorted({d.record_id for f in existing for d in f.datasets}), extra)
    rows.sort(key=lambda rd: (rd[0].datetime, rd[0].id, rd[1].id))
    footprints = {ds.id: ds.footprint_4326 for _, ds in rows}

    def covered(src: Source) -> bool:
        return {str(c.id) for c in _cells(gc, layout, query_area(footprints[src.dataset_id]))} <= cell_ids

    sig = signature(layout, params, var.resampling)
    storage, token = p["storage_uri"].rstrip("/"), job_token(info)
    plan = plan_consolidation(
        cells,
        [(PlanRecord(rec.id, rec.name, rec.datetime), source_of(rec, ds)) for rec, ds in rows],
        [ExistingFile(f.uri, f.cell_id, f.signature, tuple(d.id for d in f.datasets),
                      tuple(dict.fromkeys(d.record_id for d in f.datasets))) for f in existing],
        max_records=layout.max_records,
        signature=sig,
        uri_for=lambda cell, n: f"{storage}/{layout.name}/{inst.id}/{cell}/{token}-{n}.tif",
        covered=covered,
    )
    settings = settings_for(layout, var, inst, params)
    tasks = [Task(info.id, f.key, "file", TaskState.NEW, f.to_json()) for f in plan.files]
    p.update(settings=settings.to_json(), signature=sig, retire=list(plan.retire), kept=list(plan.kept),
             cells=len(cells))
    return gc.set_job_tasks(
        info, tasks, state=S.CREATED, payload=p,
        log=f"planned {len(plan.files)} file(s) over {len(cells)} cell(s) ({len(plan.kept)} file(s) kept as they "
            f"are); {len(plan.retire)} dataset(s) to retire",
    )


# --- CREATED → CONSOLIDATIONINPROGRESS → CONSOLIDATIONDONE ----------------------------------------------


def consolidate(gc: Geocube, info: JobInfo, *, client: Any = None, progress: Progress | None = None) -> JobInfo:
    """Compute the pending tasks in one dask graph, storing each outcome as it comes.

    → CONSOLIDATIONDONE when every task is done, CONSOLIDATIONFAILED when some failed (each names its
    error), or the rollback when the job was cancelled meanwhile.
    """
    from distributed import as_completed

    info = gc.update_job(info, state=S.CONSOLIDATIONINPROGRESS, owner=this_process())
    settings = Settings.from_json(info.payload["settings"])
    every = gc.job_tasks(info)
    todo = [t for t in every if t.state is TaskState.NEW]
    done = len(every) - len(todo)
    if progress is not None:
        progress(done, len(every))
    cancelled = False
    if todo:
        graph = consolidation_graph([FilePlan.from_json(t.plan) for t in todo], settings, job_token(info))
        with job_client(client) as dask_client:
            gc.log_job(info, f"computing {len(todo)} file(s); dashboard: {dask_client.dashboard_link}")
            futures = dask_client.compute(list(graph.values()))
            key_of = {f.key: k for f, k in zip(futures, graph, strict=True)}
            for fut in as_completed(futures, loop=dask_client.loop):
                key = key_of[fut.key]
                if fut.status == "finished":
                    gc.finish_task(info, key, TaskState.DONE, result=fut.result())
                else:
                    error = error_text(fut.exception() if fut.status == "error" else None)
                    gc.finish_task(info, key, TaskState.FAILED, error=error)
                    gc.log_job(info, f"task {key} failed: {error}", "ERROR")
                done += 1
                if progress is not None:
                    progress(done, len(every))
                if gc.load_job(info.id).state is S.CONSOLIDATIONCANCELLING:
                    cancelled = True
                    dask_client.cancel(futures)
                    wait_until_idle(dask_client, job_token(info))
                    break
    current = gc.load_job(info.id)
    if cancelled or current.state is S.CONSOLIDATIONCANCELLING:
        return rollback(gc, current)
    failed = gc.job_tasks(info, [TaskState.FAILED, TaskState.NEW, TaskState.CANCELLED])
    try:
        if failed:
            return gc.update_job(info, state=S.CONSOLIDATIONFAILED, owner=None, level="ERROR",
                                 log=f"{len(failed)} of {len(every)} task(s) failed (see tasks): retry() re-runs them")
        return gc.update_job(info, state=S.CONSOLIDATIONDONE, owner=None, log=f"{len(every)} file(s) written")
    except JobConflict:
        current = gc.load_job(info.id)
        if current.state is S.CONSOLIDATIONCANCELLING:
            return rollback(gc, current)
        raise


# --- CONSOLIDATIONDONE → INDEXED → EFFECTIVE → DONE -----------------------------------------------------


def _prepared(uri: str, described: Mapping[str, Any], settings: Settings, variable: Variable) -> PreparedDataset:
    transform = Affine(*described["transform"][:6])
    width, height, crs = int(described["width"]), int(described["height"]), described["crs"]
    return PreparedDataset(
        uri=uri, subdir=described["subdir"], bands=tuple(range(1, len(variable.bands) + 1)),
        dformat=settings.images.stored, real_min=variable.dformat.min, real_max=variable.dformat.max,
        exponent=settings.images.exponent, crs=crs, transform=tuple(float(v) for v in described["transform"][:6]),
        width=width, height=height, overviews=tuple((int(w), int(h)) for w, h in described["overviews"]),
        footprint_wkt=footprint_native(transform, width, height).wkt,
        footprint_4326_wkt=footprint_4326(crs, transform, width, height).wkt,
    )


def index(gc: Geocube, info: JobInfo) -> JobInfo:
    """Index the written files: datasets INACTIVE in managed containers, locked by the job → INDEXED."""
    p = dict(info.payload)
    inst = gc.get_instance(p["instance_id"])
    var = gc.get_variable(inst.variable_id)
    settings = Settings.from_json(p["settings"])
    items, files = [], []
    for task in gc.job_tasks(info, TaskState.DONE):
        plan, result = FilePlan.from_json(task.plan), task.result
        if len(result["records"]) != len(plan.records):
            raise GeocubeError(f"{result['uri']} holds {len(result['records'])} image(s) for "
                               f"{len(plan.records)} record(s): retry the job")
        for (rec, _), described in zip(plan.records, result["records"], strict=True):
            items.append((rec.id, inst.id, _prepared(result["uri"], described, settings, var)))
        files.append((result["uri"], p["layout"], inst.id, plan.cell.id, p["signature"]))
    return gc.index_job_files(
        info, items, files, state=S.CONSOLIDATIONINDEXED,
        log=f"indexed {len(items)} dataset(s) in {len(files)} file(s), INACTIVE",
    )[0]


def new_datasets(gc: Geocube, info: JobInfo) -> list[Dataset]:
    """The datasets indexed from the job's files (found by the files' uris, which only this job writes)."""
    return [d for t in gc.job_tasks(info) for d in gc.list_datasets(uri=t.plan["uri"])]


def swap(gc: Geocube, info: JobInfo) -> JobInfo:
    """In one transaction the retired datasets become TODELETE, the new ones ACTIVE → EFFECTIVE."""
    retire, new = info.payload["retire"], [d.id for d in new_datasets(gc, info)]
    return gc.swap_job_datasets(
        info, retire, new, state=S.CONSOLIDATIONEFFECTIVE,
        log=f"{len(new)} new dataset(s) ACTIVE, {len(retire)} retired (TODELETE)",
    )


def cleanup(gc: Geocube, info: JobInfo) -> JobInfo:
    """Delete the retired datasets and the managed files they leave empty, release the locks → DONE."""
    p = dict(info.payload)
    # the files that may be left empty are noted first, so that a driver stopped after the deletion
    # still knows which files to delete
    p["untidy"] = sorted(set(p.get("untidy", [])) | set(gc.managed_containers_of(p["retire"])))
    info = gc.update_job(info, payload=p)
    info, _ = gc.delete_job_datasets(info, p["retire"], log=f"deleted {len(p['retire'])} retired dataset(s)")
    return tidy(gc, info)


def _remove_staging(info: JobInfo) -> None:
    settings = info.payload.get("settings")
    root = staging_root(FileSettings.from_json(settings["files"])) if settings else None
    if root is not None:
        shutil.rmtree(root / job_token(info), ignore_errors=True)
        with contextlib.suppress(OSError):  # the shared root goes too once no job uses it
            root.rmdir()


def delete_untidy(gc: Geocube, info: JobInfo) -> list[str]:
    """Delete the managed files noted in ``payload["untidy"]`` that no dataset uses any more; return the
    uris that could not be deleted (each logged)."""
    left = []
    for uri in info.payload.get("untidy", []):
        if gc.list_containers(uri=uri):
            continue  # still holds datasets: not a file to delete
        try:
            delete(uri)
        except Exception as exc:  # noqa: BLE001 - any storage failure leaves the job untidy, not broken
            left.append(uri)
            gc.log_job(info, f"cannot delete {uri}: {error_text(exc)}", "ERROR")
    return left


def tidy(gc: Geocube, info: JobInfo) -> JobInfo:
    """Delete the files left (:func:`delete_untidy`), release the locks → DONE, or DONEBUTUNTIDY when a
    file could not be deleted."""
    left = delete_untidy(gc, info)
    _remove_staging(info)
    p = {**info.payload, "untidy": left}
    if left:
        return gc.release_job(info, state=S.DONEBUTUNTIDY, payload=p, owner=None, level="WARNING",
                              log=f"{len(left)} file(s) could not be deleted: retry() tries again")
    return gc.release_job(info, state=S.DONE, payload=p, owner=None, log="done")


# --- cancel ---------------------------------------------------------------------------------------------


def rollback(gc: Geocube, info: JobInfo) -> JobInfo:
    """ABORTED: delete the job's new datasets and files, release its locks → FAILED (or ROLLBACKFAILED)."""
    if info.state is not S.ABORTED:
        info = gc.update_job(info, state=S.ABORTED, waiting=False, owner=this_process(), log="rolling back")
    try:
        uris = [t.plan["uri"] for t in gc.job_tasks(info)]
        new = [d for uri in uris for d in gc.list_datasets(uri=uri)]
        if any(d.status is DatasetStatus.ACTIVE for d in new):
            raise JobConflict("some of the job's new datasets are ACTIVE already: the job cannot be rolled back")
        info, _ = gc.delete_job_datasets(info, [d.id for d in new], log=f"deleted {len(new)} new dataset(s)")
        removed = 0
        for uri in uris:
            if gc.list_containers(uri=uri):
                continue  # indexed by something else meanwhile: not ours to delete
            removed += delete(uri)
        _remove_staging(info)
        gc.reset_tasks(info, [TaskState.NEW], to=TaskState.CANCELLED)
        return gc.release_job(info, state=S.FAILED, owner=None, log=f"rolled back: {removed} file(s) deleted")
    except Exception as exc:  # noqa: BLE001 - whatever stopped the rollback is reported, retry re-runs it
        info = gc.load_job(info.id)
        return gc.update_job(info, state=S.ROLLBACKFAILED, owner=None, level="ERROR",
                             log=f"rollback failed: {error_text(exc)}; retry() or cancel() rolls back again")
