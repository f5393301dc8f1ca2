"""The job state machine, driven through deletion jobs (no pixels needed): execution levels, next,
cancel, retry, locks, clean-up of files, and takeover of a job left by a dead process, on both backends."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from catalog.helpers import prepared
from shapely.geometry import box

import geocube_dask as gd
from geocube_dask.entities import DatasetStatus, JobState
from geocube_dask.errors import JobConflict

S = JobState


@pytest.fixture
def files(gc, tmp_path: Path):
    """Two managed files (three datasets) and one unmanaged file, on disk."""
    var = gc.create_variable("v", ("uint16", 0, 0, 10000), ["b"])
    inst = gc.instantiate(var, "master")
    recs = [gc.create_record(f"r{i}", f"2024-01-0{i + 1}T00:00:00Z") for i in range(3)]
    paths = {name: tmp_path / f"{name}.tif" for name in ("m1", "m2", "user")}
    for p in paths.values():
        p.write_bytes(b"not really a tiff")
    gc.add_datasets([(recs[0], inst, prepared(str(paths["m1"]), box(0, 0, 1, 1))),
                     (recs[1], inst, prepared(str(paths["m1"]), box(0, 0, 1, 1), subdir="GTIFF_DIR:2")),
                     (recs[2], inst, prepared(str(paths["m2"]), box(5, 5, 6, 6)))], managed=True)
    gc.add_datasets([(recs[2], inst, prepared(str(paths["user"]), box(0, 0, 1, 1)))])
    return inst, recs, paths


def states(job) -> list[str]:
    """The states a job went through, from its log."""
    return [e.message.split()[-1] for e in job.logs if e.message.startswith("going on to")]


def test_an_async_deletion_job_deletes_datasets_and_the_managed_files_left_empty(gc, files) -> None:
    inst, recs, paths = files
    job = gc.delete_datasets_job(inst, aoi=box(-1, -1, 2, 2), name="wipe")
    assert job.state is S.NEW and len(gc.job_locks(job.id)) == 3
    assert job.run().state is S.DONE and not job.waiting
    assert [d.uri for d in gc.list_datasets()] == [str(paths["m2"])]
    assert not paths["m1"].exists() and paths["m2"].exists()
    assert paths["user"].exists()  # unmanaged: the catalogue forgets it, the file stays
    assert gc.job_locks(job.id) == [] and gc.get_job("wipe").state is S.DONE
    with pytest.raises(JobConflict, match="nothing to retry"):
        job.retry()
    with pytest.raises(JobConflict, match="already DONE"):
        job.cancel()
    with pytest.raises(JobConflict, match="not waiting"):
        job.next()


@pytest.mark.parametrize(("level", "pauses"), [
    ("async", []),
    ("step-by-step-critical", ["CREATED"]),
    ("step-by-step-major", ["NEW", "CREATED"]),
    ("step-by-step-all", ["NEW", "CREATED", "DELETIONEFFECTIVE"]),
])
def test_execution_levels_wait_before_their_steps(gc, files, level: str, pauses: list[str]) -> None:
    inst, _, _ = files
    job = gc.delete_datasets_job(inst, execution_level=level)
    seen = []
    job.run()
    while job.waiting:
        seen.append(job.state.value)
        job.next()
    assert seen == pauses and job.state is S.DONE and gc.list_datasets() == []


def test_cancel_while_waiting_restores_the_catalogue(gc, files) -> None:
    inst, _, paths = files
    before = {d.id: d.status for d in gc.list_datasets()}
    gc.set_datasets_status([min(before)], "INACTIVE")
    before = {d.id: d.status for d in gc.list_datasets()}
    job = gc.delete_datasets_job(inst, execution_level="step-by-step-critical").run()
    assert job.waiting and job.state is S.CREATED
    assert {d.status for d in gc.list_datasets()} == {DatasetStatus.TODELETE}
    # a second job over a locked dataset is refused and names the first
    with pytest.raises(JobConflict, match=f"locked by job '{job.name}'"):
        gc.delete_datasets_job(inst)
    assert job.cancel().state is S.FAILED and not job.waiting
    assert {d.id: d.status for d in gc.list_datasets()} == before
    assert all(p.exists() for p in paths.values()) and gc.job_locks(job.id) == []
    assert gc.delete_datasets_job(inst).run().state is S.DONE  # nothing locked any more


def test_a_file_that_cannot_be_deleted_leaves_the_job_untidy_until_retried(gc, files) -> None:
    inst, recs, paths = files
    paths["m2"].unlink()
    paths["m2"].mkdir()  # a folder where the file was: deleting it as a file fails
    (paths["m2"] / "x").write_text("x")
    job = gc.delete_datasets_job(inst, records=[recs[2]]).run()
    assert job.state is S.DONEBUTUNTIDY and job.payload["untidy"] == [str(paths["m2"])]
    assert any("cannot delete" in e.message and e.level == "ERROR" for e in job.logs)
    assert gc.job_locks(job.id) == []  # the datasets are gone: nothing to hold
    (paths["m2"] / "x").unlink()
    paths["m2"].rmdir()
    paths["m2"].write_bytes(b"x")
    assert job.retry().state is S.DONE and not paths["m2"].exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_job_left_in_progress_is_taken_over_only_when_its_driver_is_gone(gc, files) -> None:
    inst, _, paths = files
    job = gc.delete_datasets_job(inst, execution_level="step-by-step-critical").run()
    info = gc.update_job(job.info, state="DELETIONINPROGRESS", waiting=False, owner=f"{socket.gethostname()}:1")
    with pytest.raises(JobConflict, match="in process .*:1"):
        job.retry()  # pid 1 is alive
    with pytest.raises(JobConflict, match="cannot be cancelled"):
        job.cancel()  # deleting has begun
    gc.update_job(job.info, state="DELETIONINPROGRESS", owner=f"{socket.gethostname()}:{_dead_pid()}")
    assert job.retry().state is S.DONE and not paths["m1"].exists()
    assert info.owner != job.info.owner


def test_retry_force_takes_over_a_job_of_another_host(gc, files) -> None:
    inst, _, _ = files
    job = gc.delete_datasets_job(inst, execution_level="step-by-step-critical").run()
    gc.update_job(job.info, state="DELETIONINPROGRESS", waiting=False, owner="elsewhere:123")
    with pytest.raises(JobConflict, match="retry\\(force=True\\)"):
        job.retry()
    assert job.retry(force=True).state is S.DONE


def test_list_get_and_clean_jobs(gc, files) -> None:
    inst, recs, _ = files
    done = gc.delete_datasets_job(inst, records=[recs[0]], name="d-1").run()
    waiting = gc.delete_datasets_job(inst, records=[recs[2]], name="d-2", execution_level="step-by-step-all").run()
    assert [j.name for j in gc.list_jobs()] == ["d-1", "d-2"]
    assert [j.name for j in gc.list_jobs(state="DONE")] == ["d-1"]
    assert [j.name for j in gc.list_jobs(name_like="*-2")] == ["d-2"]
    with pytest.raises(gd.InvalidArgument, match="only DONE and FAILED"):
        gc.clean_jobs(state="NEW")
    assert gc.clean_jobs() == 1
    with pytest.raises(gd.NotFound):
        gc.get_job(done.id)
    assert gc.get_job("d-2").waiting and repr(waiting) == "Job('d-2', deletion, NEW, waiting)"
