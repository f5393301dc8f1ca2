"""Consolidation jobs end to end, on SQLite and PostGIS: the files written, what the catalogue holds
afterwards, cubes read before and after, re-consolidation, and the faults of the issue (an unreadable
source, a killed worker, a killed driver, a cancel)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rasterio
import tifffile
from affine import Affine
from pyproj import Transformer
from rasters import Scene, write_scene
from reference import RefGrid, RefSource, reference_image

from geocube_dask.catalog.ingest.requests import NewRecord
from geocube_dask.entities import DatasetStatus, JobState, TaskState

S = JobState
BANDS = ["B2", "B3", "B4"]
CRS = "EPSG:32631"
RES = 20.0
# the scenes lie in [360000, 364000] × [4826000, 4830000] (EPSG:32631); cells are 2560 m wide
BOUNDS = (359000.0, 4825000.0, 366000.0, 4831000.0)


def _l93_scene() -> Scene:
    x, y = Transformer.from_crs(CRS, "EPSG:2154", always_xy=True).transform(361200.0, 4829500.0)
    return Scene("EPSG:2154", round(x, -1), round(y, -1), 25.0, 90, 80)


SCENES = {  # name: (scene, datetime, seed)
    "a": (Scene(CRS, 360000.0, 4830000.0, RES, 150, 100), "2024-01-05T10:00:00Z", 1),
    "b": (Scene(CRS, 361000.0, 4829000.0, RES, 150, 100), "2024-01-10T10:00:00Z", 2),
    "c": (_l93_scene(), "2024-01-12T10:00:00Z", 3),
}


@pytest.fixture(scope="module")
def scene_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("consolidation-scenes")
    return {n: write_scene(root / f"{n}.tif", s, bands=3, seed=seed, nodata_fraction=0.15)
            for n, (s, _, seed) in {**SCENES, "d": (SCENES["b"][0], None, 4)}.items()}


@pytest.fixture
def indexed(gc, scene_paths, tmp_path: Path):
    """Scenes a, b, c indexed (copies, so that a test may break one) + a layout of 128-pixel cells."""
    var = gc.create_variable("refl", ("uint16", 0, 0, 10000), BANDS, resampling="near")
    inst = gc.instantiate(var, "master")
    copies = {}
    for name, (_, when, _) in SCENES.items():
        copies[name] = tmp_path / "in" / f"{name}.tif"
        copies[name].parent.mkdir(exist_ok=True)
        copies[name].write_bytes(scene_paths[name].read_bytes())
        gc.index_dataset(str(copies[name]), record=NewRecord(name, when, {}), instance=inst)
    layout = gc.create_layout("L", crs=CRS, resolution=RES, cell_size=128, block_size=64, max_records=2,
                              overview_min_size=32)
    return inst, layout, copies, tmp_path / "store"


def cube(gc, inst):
    return gc.get_cube(inst, crs=CRS, resolution=RES, bounds=BOUNDS, chunks=96).compute(scheduler="threads")


def catalogue(gc) -> list[tuple]:
    """What a reader sees: every dataset with its file, subdir, record and status, and the containers."""
    names = {r.id: r.name for r in gc.list_records()}
    return sorted((d.uri, d.subdir, names[d.record_id], d.status.value) for d in gc.list_datasets()) + sorted(
        (c.uri, c.managed) for c in gc.list_containers())


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def per_record_and_file(gc) -> Counter:
    return Counter((d.record_id, d.uri) for d in gc.list_datasets())


def test_lossless_consolidation_keeps_every_cube_value(gc, indexed) -> None:
    inst, layout, copies, store = indexed
    before = cube(gc, inst)
    originals = {d.id for d in gc.list_datasets()}
    job = gc.consolidate(inst, layout, storage_uri=str(store), name="q1")
    assert job.run().state is S.DONE, job.logs
    after = cube(gc, inst)
    assert np.array_equal(before.values, after.values)
    assert list(after.record_names.values) == list(before.record_names.values)
    datasets = gc.list_datasets()
    assert not originals & {d.id for d in datasets}  # the originals are retired and deleted
    assert all(d.status is DatasetStatus.ACTIVE and gc.get_container(d.uri).managed for d in datasets)
    assert all(p.exists() for p in copies.values())  # the user's files are never deleted
    assert sorted(files_under(store)) == sorted(str(Path(d.uri).relative_to(store)) for d in {
        d.uri: d for d in datasets}.values())
    # one dataset per record and file; MUCOG records are GTIFF_DIR:1.., a single record is a plain COG
    assert set(per_record_and_file(gc).values()) == {1}
    by_file: dict[str, list] = {}
    for d in datasets:
        by_file.setdefault(d.uri, []).append(d)
    assert max(len(v) for v in by_file.values()) == 2  # max_records
    for _uri, ds in by_file.items():
        subdirs = sorted(d.subdir for d in ds)
        assert subdirs == ([""] if len(ds) == 1 else [f"GTIFF_DIR:{i + 1}" for i in range(len(ds))])
    # a file's pixels are the reference's image of its record on the cell (read by GDAL, not by our engine)
    names = {r.id: r.name for r in gc.list_records()}
    for d in datasets[:6]:
        name = names[d.record_id]
        grid = RefGrid(d.crs, Affine(*d.transform), d.width, d.height)
        want = reference_image([RefSource(str(copies[name]), (1, 2, 3), 0, 10000, 0, 10000)], grid, "uint16", 0,
                               "near", 3)
        with rasterio.open(f"{d.subdir}:{d.uri}" if d.subdir else d.uri) as src:
            assert np.array_equal(src.read(), want), (name, d.uri, d.subdir)
            assert src.block_shapes[0] == (64, 64) and src.overviews(1) == [2, 4]
    assert gc.job_locks(job.id) == [] and job.payload["untidy"] == []


@pytest.mark.parametrize(("codec", "tiff_code"), [("deflate", 8), ("lerc_zstd", 34887)])
def test_the_layout_compression_is_the_codec_of_lossless_files(gc, indexed, codec, tiff_code) -> None:
    inst, _, _, store = indexed
    layout = gc.create_layout("C", crs=CRS, resolution=RES, cell_size=128, block_size=64, compression=codec)
    before = cube(gc, inst)
    job = gc.consolidate(inst, layout, storage_uri=str(store), name="codec")
    assert job.run().state is S.DONE, job.logs
    assert np.array_equal(cube(gc, inst).values, before.values)
    for uri in {d.uri for d in gc.list_datasets()}:
        with tifffile.TiffFile(uri) as tif:  # TIFF compression tags (TIFF 6 / libtiff), not GDAL's names
            assert {int(p.compression) for p in tif.pages} == {tiff_code}


def test_unchanged_files_are_kept_and_a_new_record_joins_its_cells(gc, indexed, scene_paths) -> None:
    inst, layout, _, store = indexed
    assert gc.consolidate(inst, layout, storage_uri=str(store)).run().state is S.DONE
    first = {d.id: (d.uri, d.subdir) for d in gc.list_datasets()}
    mtimes = {p: p.stat().st_mtime_ns for p in store.rglob("*.tif")}
    again = gc.consolidate(inst, layout, storage_uri=str(store)).run()
    assert again.state is S.DONE and again.tasks == []
    assert len(again.payload["kept"]) == len({u for u, _ in first.values()})
    assert {d.id: (d.uri, d.subdir) for d in gc.list_datasets()} == first
    # a record indexed later: only the files of its cells are rewritten
    gc.index_dataset(str(scene_paths["d"]), record=NewRecord("d", "2024-01-03T10:00:00Z", {}), instance=inst)
    before = cube(gc, inst)
    job = gc.consolidate(inst, layout, storage_uri=str(store)).run()
    assert job.state is S.DONE and 0 < len(job.tasks) < len(set(u for u, _ in first.values())) + 2
    assert np.array_equal(cube(gc, inst).values, before.values)
    rewritten = {u for t in job.tasks for u in t.plan["replaces"]}
    untouched = {p for p in mtimes if str(p) not in rewritten}
    assert untouched and all(p.exists() and p.stat().st_mtime_ns == mtimes[p] for p in untouched)
    assert not any(Path(u).exists() for u in rewritten)  # the replaced files are deleted
    assert set(per_record_and_file(gc).values()) == {1}


def test_an_unreadable_source_fails_its_tasks_and_retry_reruns_only_them(gc, indexed) -> None:
    inst, layout, copies, store = indexed
    before = cube(gc, inst)
    hidden = copies["c"].with_suffix(".away")
    copies["c"].rename(hidden)
    job = gc.consolidate(inst, layout, storage_uri=str(store)).run()
    assert job.state is S.CONSOLIDATIONFAILED
    failed = [t for t in job.tasks if t.state is TaskState.FAILED]
    done = {t.key: t.result for t in job.tasks if t.state is TaskState.DONE}
    assert failed and done and all(str(copies["c"]) in t.error for t in failed)
    written = {p: p.stat().st_mtime_ns for p in store.rglob("*.tif")}
    assert len(written) == len(done)
    hidden.rename(copies["c"])
    assert job.retry().state is S.DONE
    assert {t.key: t.result for t in job.tasks if t.key in done} == done
    assert all(p.stat().st_mtime_ns == m for p, m in written.items())  # not rewritten
    assert any(f"computing {len(failed)} file(s)" in e.message for e in job.logs)
    assert set(per_record_and_file(gc).values()) == {1}
    assert np.array_equal(cube(gc, inst).values, before.values)


def test_cancel_while_waiting_leaves_catalogue_and_storage_as_before(gc, indexed) -> None:
    inst, layout, _, store = indexed
    before = catalogue(gc)
    job = gc.consolidate(inst, layout, storage_uri=str(store), execution_level="step-by-step-major").run()
    assert (job.state, job.waiting) == (S.CREATED, True)
    job.next()  # files written, then waits before indexing
    assert (job.state, job.waiting) == (S.CONSOLIDATIONDONE, True) and files_under(store)
    job.next()  # indexed INACTIVE, waits before the swap
    assert (job.state, job.waiting) == (S.CONSOLIDATIONINDEXED, True)
    assert any(d.status is DatasetStatus.INACTIVE for d in gc.list_datasets())
    assert job.cancel().state is S.FAILED
    assert catalogue(gc) == before and files_under(store) == [] and gc.job_locks(job.id) == []
    assert gc.consolidate(inst, layout, storage_uri=str(store)).run().state is S.DONE  # nothing left locked


def test_a_second_job_over_locked_datasets_is_refused(gc, indexed) -> None:
    from geocube_dask.errors import JobConflict

    inst, layout, _, store = indexed
    gc.consolidate(inst, layout, storage_uri=str(store), name="first")
    records = [r for r in gc.list_records() if r.name == "b"]
    with pytest.raises(JobConflict, match="locked by job 'first'"):
        gc.consolidate(inst, layout, records=records, storage_uri=str(store))
    assert [j.name for j in gc.list_jobs()] == ["first"]


def test_lossy_and_requantised_consolidation_stay_within_their_error(gc, indexed) -> None:
    inst, layout, _, store = indexed
    before = cube(gc, inst).values.astype("float64")
    gc.configure_consolidation("refl", dformat=("uint8", 255, 0, 250), compression="lossy", max_error=1)
    assert gc.consolidate(inst, layout, storage_uri=str(store)).run().state is S.DONE
    after = cube(gc, inst).values.astype("float64")
    valid = before != 0
    assert np.array_equal(valid, after != 0)  # values beyond the stored range saturate, they stay valid
    # one stored unit is 10000 / 250 = 40 reflectance units: half of it for rounding, one unit of LERC error
    inside = valid & (before <= 10000 * 253 / 250)  # 254 is one step from nodata: it becomes 253
    assert 0 < np.abs(after - before)[inside].max() <= 40 * 1.5 + 1


DRIVER = textwrap.dedent("""
    import os, signal, sys
    import geocube_dask as gd
    gc = gd.connect(sys.argv[1])
    job = gc.get_job(sys.argv[2])

    def progress(done, total):
        if done >= 1:  # one file recorded: the driver dies without a word
            os.kill(os.getpid(), signal.SIGKILL)

    job.run(progress=progress)
""")


def test_a_new_process_takes_over_a_job_whose_driver_was_killed(gc, catalog_url, indexed) -> None:
    inst, layout, _, store = indexed
    before = cube(gc, inst)
    job = gc.consolidate(inst, layout, storage_uri=str(store), name="killed")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", DRIVER, catalog_url, job.name], env=env, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert job.state is S.CONSOLIDATIONINPROGRESS
    assert Counter(t.state for t in job.tasks)[TaskState.DONE] >= 1
    assert job.retry().state is S.DONE
    assert set(per_record_and_file(gc).values()) == {1}
    assert np.array_equal(cube(gc, inst).values, before.values)
    datasets = gc.list_datasets()
    assert sorted(files_under(store)) == sorted({str(Path(d.uri).relative_to(store)) for d in datasets})


def test_a_killed_worker_fails_or_recovers_cleanly(gc, indexed) -> None:
    from distributed import Client, LocalCluster

    inst, layout, _, store = indexed
    before = cube(gc, inst)
    job = gc.consolidate(inst, layout, storage_uri=str(store))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        killed = []

        def progress(done: int, total: int) -> None:
            if done >= 1 and not killed:
                killed.append(pids[0])
                os.kill(pids[0], signal.SIGKILL)

        job.run(client=client, progress=progress)
        assert killed and job.state in (S.DONE, S.CONSOLIDATIONFAILED)
        if job.state is S.CONSOLIDATIONFAILED:
            job.retry(client=client)
    assert job.state is S.DONE
    assert set(per_record_and_file(gc).values()) == {1}
    assert np.array_equal(cube(gc, inst).values, before.values)


def test_tile_aoi_gives_the_cells_of_regular_and_stored_grids(gc) -> None:
    from shapely.geometry import box

    gc.create_layout("L", crs=CRS, resolution=RES, cell_size=128, block_size=64)
    aoi = box(361000.0, 4828000.0, 362000.0, 4829000.0)
    cells = gc.tile_aoi(aoi, "L", aoi_crs=CRS)
    # cells are 2560 m squares from the origin (0, 0); row j counts downwards: x = 2560 i, top = -2560 j
    assert [c.id for c in cells] == ["x141_y-1887", "x141_y-1886"]
    assert [tuple(c.transform)[:6] for c in cells] == [(RES, 0.0, 141 * 2560.0, 0.0, -RES, 1887 * 2560.0),
                                                       (RES, 0.0, 141 * 2560.0, 0.0, -RES, 1886 * 2560.0)]
    assert all(c.shape == (128, 128) and c.crs == CRS for c in cells)
    lonlat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(361500.0, 4829500.0)
    assert [c.id for c in gc.tile_aoi(box(*lonlat, lonlat[0] + 1e-4, lonlat[1] + 1e-4), "L")] == ["x141_y-1887"]
    gc.create_grid("tiles", [("T1", CRS, box(360000.0, 4828000.0, 361010.0, 4830000.0)),
                             ("T2", CRS, box(370000.0, 4828000.0, 372000.0, 4830000.0))])
    gc.create_layout("S", grid="tiles", resolution=RES, cell_size=128, block_size=64)
    (t1,) = gc.tile_aoi(aoi, "S", aoi_crs=CRS)
    # the polygon's bounds snapped outwards to the resolution: 360000 .. 361020
    assert (t1.id, t1.shape, tuple(t1.transform)[:6]) == ("T1", (100, 51), (RES, 0.0, 360000.0, 0.0, -RES, 4830000.0))


def test_configure_consolidation_checks_and_stores(gc) -> None:
    import geocube_dask as gd

    gc.create_variable("refl", ("uint16", 0, 0, 10000), BANDS)
    assert gc.get_consolidation_params("refl").compression == "lossless"
    with pytest.raises(gd.InvalidArgument, match="max_error"):
        gc.configure_consolidation("refl", compression="lossy")
    with pytest.raises(gd.InvalidArgument):
        gc.configure_consolidation("refl", compression="custom", creation_options={"NOT_AN_OPTION": "1"})
    with pytest.raises(gd.InvalidDFormat):
        gc.configure_consolidation("refl", dformat=("uint8", 0, 10, 5))
    stored = gc.configure_consolidation("refl", compression="custom", creation_options={"compress": "deflate"},
                                        resampling="average")
    assert gc.get_consolidation_params("refl") == stored and stored.creation_options == {"COMPRESS": "deflate"}


def test_consolidation_on_a_stored_grid(gc, indexed) -> None:
    from shapely.geometry import box

    inst, _, _, store = indexed
    gc.create_grid("tiles", [("west", CRS, box(359000.0, 4825000.0, 362000.0, 4831000.0)),
                             ("east", CRS, box(362000.0, 4825000.0, 366000.0, 4831000.0)),
                             ("far", CRS, box(400000.0, 4825000.0, 402000.0, 4831000.0))])
    layout = gc.create_layout("S", grid="tiles", resolution=RES, cell_size=128, block_size=64, max_records=5)
    before = cube(gc, inst)
    job = gc.consolidate(inst, layout, storage_uri=str(store)).run()
    assert job.state is S.DONE and sorted(t.key for t in job.tasks) == ["east#0", "west#0"]
    assert np.array_equal(cube(gc, inst).values, before.values)
    assert {d.subdir for d in gc.list_datasets()} == {"GTIFF_DIR:1", "GTIFF_DIR:2", "GTIFF_DIR:3"}


def test_consolidation_into_object_storage(gc, indexed, s3_server, s3_env, monkeypatch) -> None:
    import uuid

    import fsspec.config

    inst, layout, _, _ = indexed
    bucket = f"cons-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"client_kwargs": {"endpoint_url": s3_server.endpoint_url},
                                                    "key": s3_env["AWS_ACCESS_KEY_ID"],
                                                    "secret": s3_env["AWS_SECRET_ACCESS_KEY"]})
    before = cube(gc, inst)
    job = gc.consolidate(inst, layout, storage_uri=f"s3://{bucket}/cubes").run()
    assert job.state is S.DONE, [e.message for e in job.logs]
    uris = {d.uri for d in gc.list_datasets()}
    assert all(u.startswith(f"s3://{bucket}/cubes/L/") for u in uris)
    keys = {o["Key"] for o in s3_server.client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert keys == {u.split("/", 3)[3] for u in uris}
    assert np.array_equal(cube(gc, inst).values, before.values)  # read back through GDAL's /vsis3/
    # a second consolidation with a new setting rewrites every file and deletes the old objects
    gc.configure_consolidation("refl", compression="none")
    assert gc.consolidate(inst, layout, storage_uri=f"s3://{bucket}/cubes").run().state is S.DONE
    keys_after = {o["Key"] for o in s3_server.client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert not keys & keys_after and len(keys_after) == len(keys)
    assert np.array_equal(cube(gc, inst).values, before.values)


def test_cancel_from_elsewhere_while_running_stops_and_rolls_back(gc, catalog_url, indexed) -> None:
    import geocube_dask as gd

    inst, layout, _, store = indexed
    before = catalogue(gc)
    job = gc.consolidate(inst, layout, storage_uri=str(store), name="stopped")
    other = gd.connect(catalog_url)  # another handle on the catalogue, as another process would have
    answers = []

    def progress(done: int, total: int) -> None:
        if done >= 1 and not answers:
            answers.append(other.get_job("stopped").cancel().info.state)  # the driver is alive: only marked

    try:
        assert job.run(progress=progress).state is S.FAILED
    finally:
        other.close()
    assert answers == [S.CONSOLIDATIONCANCELLING]
    assert catalogue(gc) == before and files_under(store) == [] and gc.job_locks(job.id) == []
    assert {t.state for t in job.tasks} <= {TaskState.DONE, TaskState.CANCELLED}
    assert [e.message for e in job.logs][-1].startswith("rolled back")


def test_an_aoi_limits_the_cells_and_keeps_what_reaches_outside(gc, indexed) -> None:
    from shapely.geometry import box

    inst, layout, copies, store = indexed
    before = cube(gc, inst)
    to_lonlat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    aoi = box(*to_lonlat.transform(361000.0, 4828500.0), *to_lonlat.transform(361500.0, 4829000.0))
    job = gc.consolidate(inst, layout, storage_uri=str(store), aoi=aoi).run()
    assert job.state is S.DONE and job.payload["cells"] == 1
    (cell,) = {t.plan["cell"]["id"] for t in job.tasks}
    # every scene reaches outside that cell: the originals stay ACTIVE, under the new file
    assert {d.uri for d in gc.list_datasets() if not gc.get_container(d.uri).managed} == {
        str(p) for p in copies.values()}
    assert np.array_equal(cube(gc, inst).values, before.values)
    first = {t.result["uri"] for t in job.tasks}
    rest = gc.consolidate(inst, layout, storage_uri=str(store)).run()
    assert rest.state is S.DONE and cell not in {t.plan["cell"]["id"] for t in rest.tasks}
    assert first <= set(rest.payload["kept"])  # the first file is kept
    assert all(gc.get_container(d.uri).managed for d in gc.list_datasets())  # now every original is retired
    assert np.array_equal(cube(gc, inst).values, before.values)
    assert set(per_record_and_file(gc).values()) == {1}
