"""``geocube submit consolidate|export``: the submitting process returns and exits, the job runs on the cluster
and ``geocube job show`` reports it DONE, or an export EXPORTFAILED with nothing under its name (SQLite and
PostGIS). The cluster runs worker processes, as a real one
does: the driver and the job's tasks never share memory with the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from distributed import Client, LocalCluster

from .test_commands import as_json, error, ok, run
from .test_jobs import catalogue, cube_values, scenes  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]


# the submissions of these tests allow a slow machine more than the default 30 s to reach the scheduler
PATIENT = ("--timeout", "120")


@pytest.fixture
def empty_cluster(catalogue) -> Iterator[LocalCluster]:  # noqa: F811
    """A scheduler with no worker yet (worker processes are added by the tests); its workers have the
    catalogue's URL in $GEOCUBE_DB, as on Kubernetes."""
    with LocalCluster(n_workers=0, threads_per_worker=2, processes=True, dashboard_address="127.0.0.1:0",
                      host="127.0.0.1", env={"GEOCUBE_DB": catalogue[0]}) as cluster:
        yield cluster


def geocube(url: str, *args: str) -> subprocess.CompletedProcess:
    """The ``geocube`` command in its own process (which must exit for the test to go on)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", "from geocube_dask.cli import app; app()", "--db", url, *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def wait_for_state(url: str, name: str, states: set[str], timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = as_json(run(url, "job", "show", name, "--json"))
        if shown["state"] in states or time.monotonic() > deadline:
            return shown
        time.sleep(0.2)


def test_submit_returns_and_the_cluster_runs_the_job(catalogue, empty_cluster: LocalCluster) -> None:  # noqa: F811
    url, store, _ = catalogue
    before = cube_values(url)
    address = empty_cluster.scheduler_address
    submitted = geocube(url, "submit", "consolidate", "refl/master", "--layout", "L", "--storage", str(store),
                        "--name", "s1", "--scheduler", address, "--worker-db", "env", "--json", *PATIENT)
    assert submitted.returncode == 0, submitted.stderr
    info = json.loads(submitted.stdout)
    assert (info["name"], info["scheduler"], info["driver"]) == ("s1", address, f"geocube-job-driver-{info['id']}")
    # the submitting process has exited; with no worker yet, nothing has happened to the job
    assert as_json(run(url, "job", "show", "s1", "--json"))["state"] == "NEW"
    empty_cluster.scale(1)  # a worker comes: the driver runs there and drives the job to its end
    shown = wait_for_state(url, "s1", {"DONE", "CONSOLIDATIONFAILED", "FAILED"})
    assert shown["state"] == "DONE", shown["logs"]
    assert shown["tasks"] == {"DONE": len(shown["task_list"])} and len(shown["task_list"]) > 1
    assert np.array_equal(cube_values(url), before)
    assert sorted(p.name for p in store.rglob("*.tif")) and all(
        Path(t["uri"]).exists() for t in shown["task_list"])
    # the driver ran on the worker (not in this process, not in the submitter): its task is gone, forgotten
    with Client(address, set_as_default=False) as client:
        assert client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.tasks)) == []


def test_submit_needs_a_reachable_scheduler(catalogue) -> None:  # noqa: F811
    url, store, _ = catalogue
    message = error(run(url, "submit", "consolidate", "refl/master", "--layout", "L", "--storage", store,
                        "--scheduler", "tcp://127.0.0.1:1", "--timeout", "1"))
    assert "cannot reach the dask scheduler at tcp://127.0.0.1:1" in message and "geocube cluster local" in message
    assert as_json(run(url, "job", "list", "--json")) == []  # no job made (its datasets would be locked)


CUBE = ("--instance", "refl/master", "--crs", "EPSG:32631", "--resolution", "20", "--bounds",
        "359000,4826000,364000,4831000", "--chunks", "64")


def test_submit_export_returns_and_the_cluster_writes_the_file(catalogue, empty_cluster: LocalCluster,  # noqa: F811
                                                               tmp_path: Path) -> None:
    url = catalogue[0]
    expected = cube_values(url)
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    out = out_dir / "cube.tif"
    address = empty_cluster.scheduler_address
    submitted = geocube(url, "submit", "export", *CUBE, "--out", str(out), "--name", "x1", "--scheduler", address,
                        *PATIENT, "--json")
    assert submitted.returncode == 0, submitted.stderr
    info = json.loads(submitted.stdout)
    assert (info["name"], info["type"], info["out"], info["driver"]) == (
        "x1", "export", str(out), f"geocube-job-driver-{info['id']}")
    # the submitting process has exited; with no worker yet, nothing is written
    assert as_json(run(url, "job", "show", "x1", "--json"))["state"] == "NEW" and not out.exists()
    empty_cluster.scale(2)  # two worker processes write windows of the one GeoTIFF
    shown = wait_for_state(url, "x1", {"DONE", "EXPORTFAILED", "FAILED"})
    assert shown["state"] == "DONE", shown["logs"]
    assert shown["task_list"] == [{"key": "export", "state": "DONE", "uri": str(out), "error": None}]
    assert "plan" not in shown["payload"] and shown["payload"]["out"] == str(out)
    with rasterio.open(out) as ds:
        t, b, h, w = expected.shape
        np.testing.assert_array_equal(ds.read(), expected.reshape(t * b, h, w))
    assert os.listdir(out_dir) == ["cube.tif"]
    assert f"wrote {out} (geotiff)" in ok(run(url, "job", "show", "x1"))


def test_a_failed_submitted_export_is_reported_and_leaves_nothing(catalogue, empty_cluster: LocalCluster,  # noqa: F811
                                                                  tmp_path: Path) -> None:
    url, _, copies = catalogue
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    address = empty_cluster.scheduler_address
    empty_cluster.scale(1)
    # a source file gone: the export fails mid-way, nothing appears under its name
    copies["b"].rename(copies["b"].with_suffix(".away"))
    submitted = geocube(url, "submit", "export", *CUBE, "--out", str(out_dir / "c.zarr"), "--name", "x2",
                        "--scheduler", address, "--worker-db", "env", *PATIENT)
    assert submitted.returncode == 0, submitted.stderr
    assert "job x2: export to" in submitted.stdout and "follow it with: geocube job show x2" in submitted.stdout
    shown = wait_for_state(url, "x2", {"DONE", "EXPORTFAILED", "FAILED"})
    assert shown["state"] == "EXPORTFAILED" and str(copies["b"]) in shown["task_list"][0]["error"]
    assert f"nothing written under {out_dir / 'c.zarr'}" in shown["logs"][-1]["message"]
    assert os.listdir(out_dir) == []
    # an output already there is not replaced without --overwrite
    (out_dir / "old.tif").write_bytes(b"not a cube")
    ok(run(url, "submit", "export", *CUBE, "--out", out_dir / "old.tif", "--name", "x3", "--scheduler", address,
           *PATIENT))
    shown = wait_for_state(url, "x3", {"DONE", "EXPORTFAILED", "FAILED"})
    assert shown["state"] == "EXPORTFAILED" and "already exists: pass --overwrite" in shown["task_list"][0]["error"]
    assert (out_dir / "old.tif").read_bytes() == b"not a cube" and os.listdir(out_dir) == ["old.tif"]


def test_submit_export_checks_the_request_before_making_a_job(catalogue, empty_cluster: LocalCluster) -> None:  # noqa: F811
    url = catalogue[0]
    address = empty_cluster.scheduler_address
    assert ".zarr store or a .tif" in error(run(url, "submit", "export", *CUBE, "--out", "c.nc", "--scheduler",
                                                address))
    assert "a cube needs --instance" in error(run(url, "submit", "export", "--out", "c.zarr", "--scheduler", address))
    assert "cannot reach the dask scheduler" in error(run(url, "submit", "export", *CUBE, "--out", "c.zarr",
                                                          "--scheduler", "tcp://127.0.0.1:1", "--timeout", "1"))
    assert as_json(run(url, "job", "list", "--json")) == []


def test_a_driver_done_and_forgotten_before_the_first_look_counts_as_taken(catalogue, tmp_path: Path,  # noqa: F811
                                                                           monkeypatch) -> None:
    """hand_over returns once the scheduler holds the driver or the driver has moved the job on: a driver that
    ends at once (here: an output already there) may be finished and forgotten by the scheduler before the
    submitter first asks. A job still NEW whose driver the scheduler does not hold times out."""
    import geocube_dask as gd
    import geocube_dask.submit as submit_module
    from geocube_dask.cli.submit import hand_over
    from geocube_dask.errors import ClusterConnectionError

    url = catalogue[0]
    (tmp_path / "old.tif").write_bytes(b"not a cube")
    with gd.connect(url) as gc, LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                             dashboard_address=":0") as cluster, Client(cluster) as client:
        plan = gc.get_cube_plan(gc.get_instance("refl", "master"), crs="EPSG:32631", resolution=20,
                                bounds=(359000, 4826000, 364000, 4831000))
        done, stuck = (gc.export_job(plan, tmp_path / f"{name}.tif", name=name) for name in ("old", "new"))

        def run_at_once(job, client, worker_db=None):  # the driver has run and the scheduler forgot it
            job.run()
            return f"gone-{job.id}"

        monkeypatch.setattr(submit_module, "submit_job", run_at_once)
        assert hand_over(done, client, None, timeout=30) == f"gone-{done.id}"
        assert done.state == "EXPORTFAILED"
        monkeypatch.setattr(submit_module, "submit_job", lambda job, client, worker_db=None: f"gone-{job.id}")
        with pytest.raises(ClusterConnectionError, match="did not take job 'new''s driver within 1 s"):
            hand_over(stuck, client, None, timeout=1)
        assert stuck.state == "NEW"
