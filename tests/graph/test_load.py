"""gd.load: a lazy cube computed into one preallocated array, checked against the plain reference."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import rasterio
import xarray as xr
from distributed import Client, LocalCluster
from reference import reference_image
from scenes import centre_in, make_plan, ref_grid, ref_of, source_for

import geocube_dask as gd
from geocube_dask.entities import DFormat
from geocube_dask.graph import cube as cube_module
from geocube_dask.graph.cube import cube_from_plan
from geocube_dask.graph.grid import make_grid
from geocube_dask.graph.load import _local_get

NAMES = ["utm31", "utm32", "l93", "utm31b"]


def centre_grid():
    """A 15 m grid (201 × 147 pixels) around the scenes' centre, in UTM 31N."""
    x, y = centre_in("EPSG:32631")
    return make_grid("EPSG:32631", 15.0, (x - 1500, y - 1100, x + 1500, y + 1100))


@pytest.fixture
def plan(scenes):
    grid = centre_grid()
    images = [[source_for(scenes[n].path, record_id=f"r{i}", dataset_id=i)] for i, n in enumerate(NAMES)]
    return make_plan(images, grid, chunks=(64, 96))  # many chunks of unequal sizes at the edges


def reference(plan) -> np.ndarray:
    fmt = plan.dformat
    return np.stack([
        reference_image([ref_of(s) for s in im.sources], ref_grid(plan.grid), fmt.dtype, fmt.nodata, "near", 4)
        for im in plan.images
    ])


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_load_gives_the_reference_pixels_with_the_cube_coordinates(plan, scheduler: str) -> None:
    cube = cube_from_plan(plan)
    got = gd.load(cube, scheduler=scheduler)
    assert isinstance(got.data, np.ndarray) and got.data.flags.c_contiguous
    np.testing.assert_array_equal(got.values, reference(plan))
    assert got.dims == cube.dims and got.dtype == cube.dtype and got.attrs == cube.attrs
    xr.testing.assert_identical(got.coords.to_dataset(), cube.coords.to_dataset())
    assert got.rio.crs == cube.rio.crs and got.rio.nodata == cube.rio.nodata


def test_load_of_a_computed_or_empty_cube(plan, scenes) -> None:
    cube = cube_from_plan(plan)
    computed = cube.compute()
    assert gd.load(computed) is computed
    x, y = centre_in("EPSG:32631")
    far = make_grid("EPSG:32631", 15.0, (x + 5e5, y, x + 5e5 + 300, y + 300))
    empty = cube_from_plan(make_plan([[source_for(scenes["utm31"].path)]], far))
    loaded = gd.load(empty)
    assert loaded.shape == empty.shape and loaded.shape[0] == 0 and isinstance(loaded.data, np.ndarray)


def test_on_a_distributed_client_load_computes_on_the_workers(plan) -> None:
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        assert not _local_get(None) and not _local_get(client)
        got = gd.load(cube_from_plan(plan))
        np.testing.assert_array_equal(got.values, reference(plan))
    assert _local_get(None) and _local_get("threads") and _local_get("sync")


_FRESH = """
import sys
sys.path[:0] = {paths!r}
import dask, numpy as np
import geocube_dask as gd
from geocube_dask.graph.plan import CubePlan
cube = gd.cube_from_plan(CubePlan.from_json({plan!r}))
with dask.config.set({config!r}):
    got = gd.load(cube{kwargs})
np.save({out!r}, got.values)
print("distributed" in sys.modules)
"""


@pytest.mark.parametrize(("config", "kwargs"), [({}, ""), ({"scheduler": "threads"}, ""), ({}, ", scheduler='sync'")])
def test_load_in_a_fresh_process_does_not_import_distributed(plan, tmp_path, config, kwargs) -> None:
    """No Client can exist before ``distributed`` is imported: asking dask for the active scheduler would
    import it (a fifth of a second on a process's first cube)."""
    import subprocess
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    out = tmp_path / "got.npy"
    code = _FRESH.format(paths=[str(tests), str(tests.parent)], plan=plan.to_json(), config=config, kwargs=kwargs,
                         out=str(out))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tests)
    assert run.stdout.split()[-1] == "False"
    np.testing.assert_array_equal(np.load(out), reference(plan))


def test_with_the_multiprocessing_scheduler_load_gets_the_chunks_back(plan) -> None:
    # tasks run in other processes: writing into this process's array would leave it empty
    assert not _local_get("processes")
    got = gd.load(cube_from_plan(plan), scheduler="processes", num_workers=2)
    np.testing.assert_array_equal(got.values, reference(plan))


@pytest.mark.parametrize("dformat", [None, DFormat("int16", -1.0, 0.0, 10000.0),
                                     DFormat("float32", float("nan"), 0.0, 1.0)], ids=["zero", "minus1", "nan"])
def test_a_cube_as_built_is_computed_in_place_and_a_selection_through_store(plan, scenes, monkeypatch,
                                                                            dformat) -> None:
    """The engine's chunk tasks write into the result (no chunk arrays, da.store never called), chunks
    no source touches included; any other graph (a selection) goes through da.store. Values are the
    reference's either way, whether the nodata is zero bytes (the result's pages are left as the system
    zeroed them where nothing is painted) or not (filled)."""
    import dask.array

    src = source_for(scenes["utm31"].path)
    a = src.transform
    east = a[2] + a[0] * src.width
    partial = make_grid("EPSG:32631", 10, (east - 500, a[5] - 1000, east + 4500, a[5] - 100))
    real_store = dask.array.store
    if dformat is not None:
        plan = make_plan([list(im.sources) for im in plan.images], plan.grid, dformat=dformat, chunks=(64, 96))
    for p in (plan, make_plan([[src]], partial, chunks=(40, 70), dformat=dformat)):
        cube = cube_from_plan(p)
        stored: list[object] = []
        monkeypatch.setattr(dask.array, "store", lambda *a, stored=stored, **k: stored.append(a) or real_store(*a, **k))
        got = gd.load(cube, scheduler="threads")
        assert stored == []
        np.testing.assert_array_equal(got.values, reference(p))
        np.testing.assert_array_equal(got.values, cube.compute().values)
        nodata = np.isnan(got.values) if np.isnan(p.dformat.nodata) else got.values == p.dformat.nodata
        assert nodata.any()
        part = gd.load(cube.isel(time=slice(-1, None), x=slice(3, None)), scheduler="threads")
        assert len(stored) == 1
        np.testing.assert_array_equal(part.values, reference(p)[-1:, :, :, 3:])


def test_with_enough_images_a_thread_computes_an_image_s_chunks_in_row_major_order(scenes, monkeypatch) -> None:
    """One task per image when there are at least IMAGES_PER_WORKER images per thread: each image's chunks
    are computed by one thread, one after the other (row by row); with fewer images, chunk by chunk on
    every thread. Values are the reference's either way."""
    import threading

    load_module = sys.modules["geocube_dask.graph.load"]
    grid = centre_grid()
    names = NAMES * 2  # 8 images: 4 per thread with 2 threads
    images = [[source_for(scenes[n].path, record_id=f"r{i}", dataset_id=i)] for i, n in enumerate(names)]
    real = load_module.compute_chunk
    for nimages, grouped in ((8, True), (7, False)):
        plan = make_plan(images[:nimages], grid, chunks=(64, 96))
        calls: list[tuple[int | None, int, int, int]] = []

        def spy(ctx, row0, col0, h, w, reads, prefetched=None, out=None, calls=calls, **kw):
            calls.append((reads[0].source.dataset_id, threading.get_ident(), row0, col0))
            return real(ctx, row0, col0, h, w, reads, prefetched, out, **kw)

        monkeypatch.setattr(load_module, "compute_chunk", spy)
        got = gd.load(cube_from_plan(plan), scheduler="threads", num_workers=2)
        np.testing.assert_array_equal(got.values, reference(plan))
        by_image: dict[int | None, list[tuple[int, int, int]]] = {}
        for image, thread, row0, col0 in calls:  # one dataset per image
            by_image.setdefault(image, []).append((thread, row0, col0))
        assert len(by_image) == nimages
        threads_per_image = [len({t for t, _, _ in c}) for c in by_image.values()]
        if grouped:
            assert threads_per_image == [1] * len(by_image)
            assert all([(r, c) for _, r, c in c] == sorted((r, c) for _, r, c in c) for c in by_image.values())
        else:
            assert max(threads_per_image) == 2


def test_tasks_take_the_costliest_image_left_first(scenes, monkeypatch) -> None:
    """Grouped by image, whatever order the scheduler runs the tasks in, each computes the image with the
    most output pixels to paint among those left: an image covering the whole grid goes before images
    covering a corner of it, wherever it is in time. Values are the reference's."""
    load_module = sys.modules["geocube_dask.graph.load"]
    big = scenes["utm31"].path
    with rasterio.open(big) as ds:
        grid = make_grid("EPSG:32631", 10.0, tuple(ds.bounds))
    paths = [scenes["six"].path] * 8
    paths[3] = big
    images = [[source_for(p, record_id=f"r{i}", dataset_id=i)] for i, p in enumerate(paths)]
    plan = make_plan(images, grid, chunks=(100, 100))
    real = load_module.compute_chunk
    calls: list[int | None] = []

    def spy(ctx, row0, col0, h, w, reads, prefetched=None, out=None, **kw):
        calls.append(reads[0].source.dataset_id)
        return real(ctx, row0, col0, h, w, reads, prefetched, out, **kw)

    monkeypatch.setattr(load_module, "compute_chunk", spy)
    got = gd.load(cube_from_plan(plan), scheduler="threads", num_workers=1)
    np.testing.assert_array_equal(got.values, reference(plan))
    assert calls[:16] == [3] * 16  # the big image's 4 × 4 chunks, first


def test_a_thread_closes_an_image_s_files_after_computing_the_whole_image(scenes) -> None:
    """Grouped by image, the thread that computed an image no longer holds its files open (each open
    dataset that has been read keeps about a megabyte); computed chunk by chunk, they stay open for the
    image's other chunks. Values are the reference's either way."""
    from geocube_dask.graph import read

    grid = centre_grid()
    images = [[source_for(scenes[n].path, record_id=f"r{i}", dataset_id=i)] for i, n in enumerate(NAMES * 2)]
    uris = {scenes[n].path for n in NAMES}
    for nimages, closed in ((8, True), (2, False)):
        read.clear_handle_cache()
        plan = make_plan(images[:nimages], grid, chunks=(64, 96))
        got = gd.load(cube_from_plan(plan), scheduler="sync", num_workers=2)
        np.testing.assert_array_equal(got.values, reference(plan))
        still_open = {key[0] for key in read._handles().items} & uris
        assert still_open == (set() if closed else {scenes[n].path for n in NAMES[:nimages]})


def test_a_file_is_closed_after_the_last_chunk_of_its_image_that_reads_it(scenes, monkeypatch) -> None:
    """Grouped by image, an image made of several files closes each file once no chunk left reads it,
    before the thread computes the next chunk, and never while a later chunk of the image still reads
    it (which would open it again)."""
    load_module = sys.modules["geocube_dask.graph.load"]
    grid = centre_grid()
    images = [[source_for(scenes[a].path, record_id=f"r{i}", dataset_id=i),
               source_for(scenes[b].path, record_id=f"r{i}", dataset_id=i)]
              for i, (a, b) in enumerate([("utm31", "l93"), ("utm32", "utm31b")] * 4)]
    plan = make_plan(images, grid, chunks=(64, 96))
    events: list[tuple[str, int | None, frozenset[str]]] = []  # (what, image, files)
    real_chunk, real_forget = load_module.compute_chunk, cube_module.forget_source

    def chunk_spy(ctx, row0, col0, h, w, reads, prefetched=None, out=None, **kw):
        events.append(("chunk", reads[0].source.dataset_id, frozenset(sr.source.uri for sr in reads)))
        return real_chunk(ctx, row0, col0, h, w, reads, prefetched, out, **kw)

    def forget_spy(uri: str) -> None:
        events.append(("close", None, frozenset([uri])))
        real_forget(uri)

    monkeypatch.setattr(load_module, "compute_chunk", chunk_spy)
    monkeypatch.setattr(cube_module, "forget_source", forget_spy)
    got = gd.load(cube_from_plan(plan), scheduler="threads", num_workers=1)
    np.testing.assert_array_equal(got.values, reference(plan))
    closes = [i for i, (kind, _, _) in enumerate(events) if kind == "close"]
    assert len(closes) == 16  # each of the 8 images' 2 files, once
    early = 0
    for i in closes:
        (uri,) = events[i][2]
        last = max(j for j in range(i) if events[j][0] == "chunk")
        image = events[last][1]
        assert uri in events[last][2]  # the chunk just computed read it, and no later chunk of its image does
        later = [files for kind, im, files in events[i:] if kind == "chunk" and im == image]
        assert all(uri not in files for files in later)
        early += bool(later)
    assert early  # some files are read by part of their image's chunks only, and closed before it ends


def test_a_mosaic_chunk_closes_each_file_once_painted(scenes, monkeypatch) -> None:
    """An image of one chunk made of several files (a day's mosaic) closes each file once it is painted,
    before opening the next: one file open at a time, not the whole mosaic's."""
    chunk_module = sys.modules["geocube_dask.graph.chunk"]
    grid = centre_grid()
    images = [[source_for(scenes[n].path, record_id=f"r{i}", dataset_id=i) for n in NAMES] for i in range(8)]
    plan = make_plan(images, grid, chunks=(1024, 1024))
    open_now: set[str] = set()
    most = 0
    real_open, real_forget = chunk_module.open_source, cube_module.forget_source

    def open_spy(uri, *args):
        nonlocal most
        open_now.add(uri)
        most = max(most, len(open_now))
        return real_open(uri, *args)

    def forget_spy(uri: str) -> None:
        open_now.discard(uri)
        real_forget(uri)

    monkeypatch.setattr(chunk_module, "open_source", open_spy)
    monkeypatch.setattr(cube_module, "forget_source", forget_spy)
    got = gd.load(cube_from_plan(plan), scheduler="threads", num_workers=1)
    np.testing.assert_array_equal(got.values, reference(plan))
    assert most == 1 and not open_now
