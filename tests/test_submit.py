"""``submit_job``: a job driven by a task on the cluster. Its driver's worker dies mid-job: the scheduler runs
the driver again elsewhere, which takes the job over, and the job ends DONE with every file once (a
consolidation) or the whole cube written (an export)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import numpy as np
import pytest
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin
from test_consolidation import cube, files_under, indexed, per_record_and_file, scene_paths  # noqa: F401 - fixtures

import geocube_dask as gd
from geocube_dask.entities import JobState
from geocube_dask.submit import driver_key, submit_job

S = JobState


class KillTheDriverAfterTheFirstFile(SchedulerPlugin):
    """Kills (SIGKILL) the worker process running the driver as soon as the job's first file is uploaded."""

    def __init__(self, scheduler: Any, driver: str) -> None:
        self.scheduler, self.driver, self.killed = scheduler, driver, []

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if self.killed or finish != "memory" or not str(key).startswith("consolidate-upload-"):
            return
        ws = self.scheduler.tasks[self.driver].processing_on
        self.killed.append(ws.address)
        os.kill(ws.pid, signal.SIGKILL)


def wait_for(job: gd.Job, timeout: float = 60.0) -> JobState:
    deadline = time.monotonic() + timeout
    while job.state not in (S.DONE, S.FAILED, S.CONSOLIDATIONFAILED, S.EXPORTFAILED) and time.monotonic() < deadline:
        time.sleep(0.2)
    return job.state


def test_a_submitted_job_survives_the_death_of_its_driver_s_worker(gc, indexed) -> None:  # noqa: F811
    inst, layout, _, store = indexed
    before = cube(gc, inst)
    job = gc.consolidate(inst, layout, storage_uri=str(store), name="survivor")
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        killer = KillTheDriverAfterTheFirstFile(cluster.scheduler, driver_key(job.id))
        cluster.scheduler.add_plugin(killer, name="killer")
        assert submit_job(job, client) == driver_key(job.id)
        assert wait_for(job) is S.DONE, job.logs
        assert killer.killed, "the driver's worker was not killed: the test proved nothing"
    messages = [entry.message for entry in job.logs]
    assert any(f"the driver on {killer.killed[0]} is gone: taking the job over" in m for m in messages), messages
    assert set(per_record_and_file(gc).values()) == {1}
    assert np.array_equal(cube(gc, inst).values, before.values)
    datasets = gc.list_datasets()
    assert sorted(files_under(store)) == sorted({os.path.relpath(d.uri, store) for d in datasets})


def test_submit_job_needs_a_client(gc, indexed) -> None:  # noqa: F811
    inst, layout, _, store = indexed
    job = gc.consolidate(inst, layout, storage_uri=str(store))
    with pytest.raises(gd.InvalidArgument, match="distributed.Client"):
        submit_job(job, None)


class KillTheDriverAfterTheFirstChunk(KillTheDriverAfterTheFirstFile):
    """Kills the worker running the driver as soon as one task of the export's graph has a result."""

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if self.killed or finish != "memory" or str(key).startswith("geocube-job-driver-"):
            return
        ws = self.scheduler.tasks[self.driver].processing_on
        self.killed.append(ws.address)
        os.kill(ws.pid, signal.SIGKILL)


def test_a_submitted_export_survives_the_death_of_its_driver_s_worker(gc, indexed, tmp_path) -> None:  # noqa: F811
    import xarray as xr

    inst = indexed[0]
    expected = cube(gc, inst)
    out = tmp_path / "out" / "c.zarr"
    out.parent.mkdir()
    plan = gc.get_cube_plan(inst, crs="EPSG:32631", resolution=20.0, bounds=(359000.0, 4825000.0, 366000.0, 4831000.0),
                            chunks=96)
    job = gc.export_job(plan, out, name="exporter")
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        killer = KillTheDriverAfterTheFirstChunk(cluster.scheduler, driver_key(job.id))
        cluster.scheduler.add_plugin(killer, name="killer")
        submit_job(job, client)
        assert wait_for(job) is S.DONE, job.logs
        assert killer.killed, "the driver's worker was not killed: the test proved nothing"
    messages = [entry.message for entry in job.logs]
    assert any(f"the driver on {killer.killed[0]} is gone: taking the job over" in m for m in messages), messages
    np.testing.assert_array_equal(xr.open_zarr(out, mask_and_scale=False)["refl"].values, expected.values)
    assert os.listdir(out.parent) == ["c.zarr"]
