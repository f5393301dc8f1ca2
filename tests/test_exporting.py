"""Export jobs (geocube_dask.exporting), on SQLite and PostGIS: a cube written to Zarr or GeoTIFF by a job,
with its failures (nothing under the requested name), retry and cancel (also while it computes)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
import xarray as xr
from distributed import Client, LocalCluster
from test_consolidation import BOUNDS, CRS, RES, cube, indexed, scene_paths  # noqa: F401 - fixtures

import geocube_dask as gd
from geocube_dask import exporting
from geocube_dask.cli.export import temporary
from geocube_dask.entities import JobState, JobType, TaskState
from geocube_dask.graph import cube as cube_module
from geocube_dask.jobdask import JOB_ANNOTATION, job_token

S = JobState


def plan(gc, inst):
    return gc.get_cube_plan(inst, crs=CRS, resolution=RES, bounds=BOUNDS, chunks=96)


def test_an_export_job_writes_a_zarr_store(gc, indexed, tmp_path: Path) -> None:  # noqa: F811
    inst = indexed[0]
    expected = cube(gc, inst)
    out = tmp_path / "out" / "c.zarr"
    out.parent.mkdir()
    job = gc.export_job(plan(gc, inst), out, name="e1")
    assert (job.type, job.state, job.tasks) == (JobType.EXPORT, S.NEW, [])
    assert job.run().state is S.DONE, job.logs
    written = xr.open_zarr(out, mask_and_scale=False)["refl"]
    np.testing.assert_array_equal(written.values, expected.values)
    assert [str(b) for b in written.band.values] == ["B2", "B3", "B4"]
    (task,) = job.tasks
    assert (task.key, task.state, task.plan["uri"]) == ("export", TaskState.DONE, str(out))
    assert task.result["path"] == str(out) and task.result["shape"] == list(expected.shape)
    assert os.listdir(out.parent) == ["c.zarr"]  # no temporary left
    assert job.logs[-1].message.startswith(f"wrote {out} (zarr): 3 image(s)")


def test_an_export_job_writes_a_geotiff(gc, indexed, tmp_path: Path) -> None:  # noqa: F811
    inst = indexed[0]
    expected = cube(gc, inst).values
    out = tmp_path / "c.tif"
    job = gc.export_job(plan(gc, inst), out)
    assert job.run().state is S.DONE, job.logs[-1].message
    with rasterio.open(out) as ds:
        t, b, h, w = expected.shape
        np.testing.assert_array_equal(ds.read(), expected.reshape(t * b, h, w))
        assert ds.descriptions[:2] == ("2024-01-05T10:00:00Z/B2", "2024-01-05T10:00:00Z/B3")


def test_a_failed_export_leaves_nothing_and_is_retried(gc, indexed, tmp_path: Path) -> None:  # noqa: F811
    inst, _, copies, _ = indexed
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "c.zarr"
    job = gc.export_job(plan(gc, inst), out, name="e1")
    away = copies["b"].with_suffix(".away")
    copies["b"].rename(away)
    assert job.run().state is S.EXPORTFAILED
    (task,) = job.tasks
    assert task.state is TaskState.FAILED and str(copies["b"]) in task.error
    assert f"nothing written under {out}" in job.logs[-1].message and job.logs[-1].level == "ERROR"
    assert os.listdir(out_dir) == []  # neither the output nor its temporary
    away.rename(copies["b"])
    assert job.retry().state is S.DONE
    np.testing.assert_array_equal(xr.open_zarr(out, mask_and_scale=False)["refl"].values, cube(gc, inst).values)
    # the output is there now: another export to it fails unless told to overwrite, and leaves it as it is
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    again = gc.export_job(plan(gc, inst), out)
    assert again.run().state is S.EXPORTFAILED and "already exists: pass --overwrite" in again.tasks[0].error
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert gc.export_job(plan(gc, inst), out, overwrite=True).run().state is S.DONE


# the in-process cluster's tasks run in this process (threads): they see these events
started, stopped = threading.Event(), threading.Event()
annotations: list[dict] = []
run_chunk_job, wait_until_idle = cube_module.run_chunk_job, exporting.wait_until_idle


def slow_chunk(job):
    """A chunk task that waits until the export's driver stops the graph (it notes its annotations)."""
    from distributed import get_worker
    from distributed.worker import thread_state

    annotations.append(get_worker().state.tasks[thread_state.key].annotations)
    started.set()
    stopped.wait(60)
    return run_chunk_job(job)


def stopping(*args):
    stopped.set()
    return wait_until_idle(*args)


def test_cancel_an_export(gc, indexed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    inst = indexed[0]
    out = tmp_path / "out" / "c.tif"
    out.parent.mkdir()
    waiting = gc.export_job(plan(gc, inst), out, name="e0")
    assert waiting.cancel().state is S.FAILED and not out.exists()
    # while it computes: the chunk tasks wait until the driver has seen the cancel and stopped the graph
    started.clear()
    stopped.clear()
    annotations.clear()
    monkeypatch.setattr(cube_module, "run_chunk_job", slow_chunk)
    monkeypatch.setattr(exporting, "wait_until_idle", stopping)
    job = gc.export_job(plan(gc, inst), out, name="e1")
    driver = threading.Thread(target=job.run)
    driver.start()
    assert started.wait(60)
    assert gc.get_job("e1").cancel().state is S.CONSOLIDATIONCANCELLING  # its driver is alive: it stops
    driver.join(60)
    assert job.state is S.FAILED and stopped.is_set(), job.logs
    assert annotations and annotations[0] == {JOB_ANNOTATION: job_token(job.info)}  # what a later attempt waits on
    assert [t.state for t in job.tasks] == [TaskState.CANCELLED]
    assert os.listdir(out.parent) == []


let_go, late_started = threading.Event(), threading.Event()


def late_write(directory: str) -> None:
    """A task of a dead driver's export still running: it writes into the temporary once let go (as a zarr
    chunk write, making the directories it needs)."""
    late_started.set()
    let_go.wait(60)
    (Path(directory) / "late").mkdir(parents=True, exist_ok=True)
    (Path(directory) / "late" / "0").write_bytes(b"late")


def test_an_export_taken_over_waits_for_the_dead_attempt_s_running_tasks(gc, indexed, tmp_path: Path) -> None:  # noqa: F811
    inst = indexed[0]
    out = tmp_path / "out" / "c.zarr"
    out.parent.mkdir()
    job = gc.export_job(plan(gc, inst), out, name="e1")
    info = gc.update_job(job.info, state=S.EXPORTINPROGRESS, owner="elsewhere:123")  # its driver is gone
    let_go.clear()
    late_started.clear()
    with LocalCluster(n_workers=1, threads_per_worker=4, processes=False, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        with dask.annotate(**{JOB_ANNOTATION: job_token(info)}):  # as the dead driver's graph was
            late = client.submit(late_write, str(temporary(out, job_token(info))), pure=False)
        assert late_started.wait(60)
        driver = threading.Thread(target=gc.get_job("e1").retry, kwargs={"force": True, "client": client})
        driver.start()
        driver.join(1.0)
        assert driver.is_alive(), "the new attempt did not wait for the dead attempt's task"
        let_go.set()
        late.result(60)
        driver.join(60)
    assert gc.get_job("e1").state is S.DONE
    assert os.listdir(out.parent) == ["c.zarr"] and not (out / "late").exists()
    np.testing.assert_array_equal(xr.open_zarr(out, mask_and_scale=False)["refl"].values, cube(gc, inst).values)


def test_export_requests_are_checked(gc, indexed, tmp_path: Path) -> None:  # noqa: F811
    inst = indexed[0]
    with pytest.raises(gd.InvalidArgument, match="not to a URL"):
        gc.export_job(plan(gc, inst), "s3://bucket/c.zarr")
    with pytest.raises(gd.InvalidArgument, match=".zarr store or a .tif"):
        gc.export_job(plan(gc, inst), tmp_path / "c.nc")
    with pytest.raises(gd.InvalidArgument, match="2 or 3"):
        gc.export_job(plan(gc, inst), tmp_path / "c.zarr", zarr_format=4)
    empty = gc.get_cube_plan(inst, crs=CRS, resolution=RES, bounds=(0.0, 0.0, 1000.0, 1000.0))
    with pytest.raises(gd.InvalidArgument, match="no image matches"):
        gc.export_job(empty, tmp_path / "c.zarr")
    assert gc.list_jobs() == []
