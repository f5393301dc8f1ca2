"""Job persistence: rows with optimistic concurrency, logs, tasks, dataset locks, consolidation settings,
layout files and the job steps that change datasets, on SQLite and PostGIS."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import sqlalchemy as sa
from shapely.geometry import box

import geocube_dask as gd
from geocube_dask.entities import ConsolidationParams, DatasetStatus, DFormat, JobState, Task, TaskState
from geocube_dask.errors import JobConflict

from .helpers import prepared, sql, table_counts

JOB_INTERNALS = "job internals (insert_job, update_job, tasks, locks): the API exposes job control only"


@pytest.fixture
def datasets(gc, instance, make_record):
    r1, r2 = make_record(), make_record()
    return gc.add_datasets([
        (r1, instance, prepared("/a.tif")), (r2, instance, prepared("/b.tif")), (r2, instance, prepared("/c.tif")),
    ])


@pytest.mark.local_only(JOB_INTERNALS)
def test_insert_load_find(gc) -> None:
    job = gc.insert_job("q1", "consolidation", "async", {"layout": "L"})
    assert (job.state, job.waiting, job.version, job.payload) == (JobState.NEW, False, 1, {"layout": "L"})
    assert gc.load_job("q1") == job == gc.load_job(job.id)
    other = gc.insert_job("cleanup-1", "deletion", "step-by-step-all", {})
    assert [j.name for j in gc.find_jobs()] == ["q1", "cleanup-1"]
    assert [j.name for j in gc.find_jobs(name_like="q*")] == ["q1"]
    assert gc.find_jobs(state="DONE") == []
    assert [j.id for j in gc.find_jobs(state=["NEW"], type="deletion")] == [other.id]
    with pytest.raises(gd.AlreadyExists, match="q1"):
        gc.insert_job("q1", "consolidation", "async", {})
    with pytest.raises(gd.InvalidArgument):
        gc.insert_job("q2", "compaction", "async", {})
    with pytest.raises(gd.InvalidArgument):
        gc.find_jobs(state="SLEEPING")
    with pytest.raises(gd.NotFound):
        gc.load_job("nope")
    assert [e.message for e in gc.job_logs(job)] == ["created consolidation job 'q1' (async)"]


@pytest.mark.local_only(JOB_INTERNALS)
def test_updates_are_refused_on_a_stale_version(gc) -> None:
    job = gc.insert_job("q1", "consolidation", "async", {})
    moved = gc.update_job(job, state="CREATED", payload={"cells": 3}, log="planned 3 cells")
    assert (moved.state, moved.version, moved.payload) == (JobState.CREATED, 2, {"cells": 3})
    before = table_counts(gc)
    with pytest.raises(JobConflict, match="changed by another process.*CREATED.*get_job"):
        gc.update_job(job, state="CONSOLIDATIONINPROGRESS")  # `job` is version 1
    assert table_counts(gc) == before and gc.load_job(job.id) == moved
    assert gc.update_job(moved, waiting=True).waiting is True
    assert [e.message for e in gc.job_logs(job)][-1] == "planned 3 cells"


@pytest.mark.local_only(JOB_INTERNALS)
def test_datasets_a_job_holds_cannot_be_deleted_or_remapped(gc, datasets) -> None:
    ids = [d.id for d in datasets]
    job = gc.insert_job("busy", "consolidation", "async", {}, lock=ids[1:2])
    before = table_counts(gc)
    mappings = [(d.dformat, d.real_min, d.real_max, d.exponent) for d in gc.list_datasets()]
    with pytest.raises(JobConflict, match=f"cannot delete these datasets: dataset {ids[1]} is locked by job 'busy'"):
        gc.delete_datasets(ids)
    with pytest.raises(JobConflict, match="cannot change the mapping.*'busy'.*cancel"):
        gc.update_dataset_mapping(ids, exponent=2.0)
    assert table_counts(gc) == before
    assert [(d.dformat, d.real_min, d.real_max, d.exponent) for d in gc.list_datasets()] == mappings
    gc.delete_datasets([ids[0]])  # datasets no job holds go as before
    gc.release_job(job, state="DONE")
    gc.delete_datasets(ids[1:])
    assert gc.list_datasets() == []


@pytest.mark.local_only(JOB_INTERNALS)
def test_tasks(gc) -> None:
    job = gc.insert_job("q1", "consolidation", "async", {})
    plans = [Task(job.id, f"cell-{i}", "file", TaskState.NEW, {"uri": f"/out/{i}.tif"}) for i in range(3)]
    job = gc.set_job_tasks(job, plans, state="CREATED")
    assert job.state == JobState.CREATED and [t.key for t in gc.job_tasks(job)] == ["cell-0", "cell-1", "cell-2"]
    gc.finish_task(job, "cell-0", "DONE", result={"records": ["r"]})
    gc.finish_task(job, "cell-1", "FAILED", error="cannot read /in/x.tif")
    done, failed = gc.job_tasks(job, "DONE"), gc.job_tasks(job, ["FAILED"])
    assert done[0].result == {"records": ["r"]} and failed[0].error == "cannot read /in/x.tif"
    assert gc.reset_tasks(job, ["FAILED"]) == 1
    assert [t.state for t in gc.job_tasks(job)] == [TaskState.DONE, TaskState.NEW, TaskState.NEW]
    assert gc.job_tasks(job, "NEW")[0].error is None
    with pytest.raises(gd.NotFound):
        gc.finish_task(job, "cell-9", "DONE")
    # replacing the tasks with a stale job changes nothing
    with pytest.raises(JobConflict):
        gc.set_job_tasks(replace(job, version=1), [], state="NEW")
    assert len(gc.job_tasks(job)) == 3


@pytest.mark.local_only(JOB_INTERNALS)
def test_a_dataset_is_locked_by_one_job(gc, datasets) -> None:
    ids = [d.id for d in datasets]
    first = gc.insert_job("first", "consolidation", "async", {}, lock=ids[:2])
    assert gc.job_locks(first) == ids[:2]
    before = table_counts(gc)
    with pytest.raises(JobConflict, match=f"dataset {ids[1]} is locked by job 'first'.*cancel"):
        gc.insert_job("second", "consolidation", "async", {}, lock=ids[1:])
    assert table_counts(gc) == before  # the second job was not created
    second = gc.insert_job("second", "deletion", "async", {}, lock=ids[2:])
    with pytest.raises(JobConflict, match="'second'"):
        gc.lock_datasets(first, ids)
    gc.lock_datasets(first, ids[:2])  # locking again what it holds is harmless
    assert gc.dataset_lock_holders(ids) == {ids[0]: "first", ids[1]: "first", ids[2]: "second"}
    released = gc.release_job(first, state="DONE")
    assert released.state == JobState.DONE and gc.job_locks(first) == []
    gc.lock_datasets(second, ids[:1])
    assert gc.delete_job_rows([second.id]) == 1
    assert gc.dataset_lock_holders(ids) == {}  # locks and tasks go with their job
    with pytest.raises(gd.NotFound):
        gc.insert_job("third", "deletion", "async", {}, lock=[999999])


def test_consolidation_params(gc, variable) -> None:
    default = gc.get_consolidation_params(variable)
    assert default == ConsolidationParams(variable.id, variable.dformat)
    lossy = gc.set_consolidation_params(ConsolidationParams(
        variable.name, DFormat("uint8", 255, 0, 250), exponent=2, compression="lossy", max_error=2,
        resampling="average"))
    assert gc.get_consolidation_params(variable.id) == lossy and lossy.exponent == 2.0
    custom = gc.set_consolidation_params(ConsolidationParams(
        variable.id, DFormat("float32", math.nan, 0, 1), compression="custom", creation_options={"compress": "ZSTD"}))
    got = gc.get_consolidation_params(variable)
    assert got.creation_options == {"COMPRESS": "ZSTD"} and got.dformat.nodata_is_nan and repr(got) == repr(custom)
    for bad in (
        {"compression": "lossy"},                                  # no max_error
        {"compression": "lossless", "max_error": 1},
        {"compression": "custom"},                                 # no options
        {"creation_options": {"COMPRESS": "LZW"}},                 # options without custom
        {"exponent": 0},
        {"resampling": "smooth"},
        {"compression": "zip"},
    ):
        with pytest.raises(gd.InvalidArgument):
            gc.set_consolidation_params(ConsolidationParams(variable.id, variable.dformat, **bad))
    with pytest.raises(gd.NotFound):
        gc.get_consolidation_params("nope")
    gc.delete_variable(variable)
    with sql(gc, write=False) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM consolidation_params")).scalar_one() == 0


@pytest.mark.local_only(JOB_INTERNALS)
def test_job_dataset_steps(gc, instance, make_record, datasets) -> None:
    """Index new files INACTIVE and locked, swap statuses, delete the old ones: each with the job's change."""
    gc.create_layout("L", crs="EPSG:4326", resolution=0.01, cell_size=256)
    old = [d.id for d in datasets]
    job = gc.insert_job("q1", "consolidation", "async", {}, lock=old)
    items = [(d.record_id, instance.id, prepared("/out/c0.tif", box(0, 0, 1, 1), subdir=f"GTIFF_DIR:{i}"))
             for i, d in enumerate(datasets[:2])]
    files = [("/out/c0.tif", "L", instance.id, "c0", "sig")]
    job, new = gc.index_job_files(job, items, files, state="CONSOLIDATIONINDEXED")
    assert job.state == JobState.CONSOLIDATIONINDEXED
    assert [d.status for d in new] == [DatasetStatus.INACTIVE] * 2
    assert gc.get_container("/out/c0.tif").managed
    assert gc.job_locks(job) == sorted(old + [d.id for d in new])
    (lf,) = gc.layout_files("L", instance)
    assert (lf.uri, lf.cell_id, lf.signature, [d.id for d in lf.datasets]) == ("/out/c0.tif", "c0", "sig",
                                                                                 [d.id for d in new])
    assert gc.layout_files("L", instance, cells=["c1"]) == []
    # again (a retry): nothing new
    job, again = gc.index_job_files(job, items, files, state="CONSOLIDATIONINDEXED")
    assert [d.id for d in again] == [d.id for d in new] and len(gc.list_datasets()) == 5
    job = gc.swap_job_datasets(job, old, [d.id for d in new], state="CONSOLIDATIONEFFECTIVE")
    assert {d.id: d.status for d in gc.list_datasets()} == {
        **{i: DatasetStatus.TODELETE for i in old}, **{d.id: DatasetStatus.ACTIVE for d in new}}
    # a stale job changes no dataset
    with pytest.raises(JobConflict):
        gc.delete_job_datasets(replace(job, version=1), old)
    assert len(gc.list_datasets()) == 5
    job, emptied = gc.delete_job_datasets(job, [*old, 999999], state="DONE")
    assert emptied == [] and [d.id for d in gc.list_datasets()] == [d.id for d in new]  # unmanaged: not reported
    job, emptied = gc.delete_job_datasets(job, [d.id for d in new])
    assert emptied == ["/out/c0.tif"] and gc.layout_files("L", instance) == []
    job = gc.set_job_datasets_status(job, [], "ACTIVE", state="DONE")
    assert job.state == JobState.DONE


def test_job_filters_of_the_wrong_kind_are_refused(gc) -> None:
    """An unknown type, or a state that is neither a state nor a list of them, is the caller's error (they
    once raised ValueError and TypeError, a 500 over HTTP)."""
    with pytest.raises(gd.InvalidArgument, match="unknown job type 'null'.*consolidation"):
        gc.find_jobs(type="null")
    for state in (5, None, {"DONE": 1}, ["DONE", 5]):
        with pytest.raises(gd.InvalidArgument):
            gc.clean_jobs(state=state)
    for state in (5, {"DONE": 1}, [None]):
        with pytest.raises(gd.InvalidArgument):
            gc.find_jobs(state=state)
    assert gc.find_jobs(state=[JobState.DONE, "FAILED"], type="deletion") == []
    assert gc.clean_jobs(state=["DONE"]) == 0
