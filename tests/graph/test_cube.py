"""The engine against the plain reference (tests/graph/reference.py), without any database."""

from __future__ import annotations

import math
from pathlib import Path

import dask
import numpy as np
import pytest
from reference import reference_image
from scenes import centre_in, make_plan, ref_grid, ref_of, source_for

from geocube_dask.entities import DFormat
from geocube_dask.errors import SourceReadError
from geocube_dask.graph.cube import cube_from_plan
from geocube_dask.graph.grid import GridSpec, make_grid


def grid_around(crs: str, res: float, half: float, shift=(0.0, 0.0)):
    x, y = centre_in(crs)
    x += shift[0]
    y += shift[1]
    return make_grid(crs, res, (x - half, y - half, x + half, y + half))


def expected(images, grid, dformat, resampling, nbands=4):
    return np.stack([
        reference_image([ref_of(s) for s in srcs], ref_grid(grid), dformat.dtype, dformat.nodata, resampling, nbands)
        for srcs in images
    ])


def compute(plan):
    with dask.config.set(scheduler="threads"):
        return cube_from_plan(plan).values


FMT = DFormat("uint16", 0.0, 0.0, 10000.0)


@pytest.mark.parametrize(
    ("crs", "res", "half"),
    [
        ("EPSG:32631", 10.0, 1500.0),  # aligned with utm31: direct reads
        ("EPSG:32631", 20.0, 1500.0),  # the ×2 overview is the grid: direct reads
        ("EPSG:32631", 40.0, 1500.0),  # the ×4 overview
        ("EPSG:32631", 15.0, 1500.0),  # full resolution, resampled
        ("EPSG:32631", 7.0, 900.0),  # finer than the sources
        ("EPSG:4326", 0.0002, 0.015),
        ("EPSG:3857", 25.0, 2000.0),
    ],
)
def test_nearest_mosaic_of_every_crs_matches_reference_exactly(scenes, crs, res, half):
    names = ["utm31", "utm32", "l93", "wgs84", "utm31b"]
    grid = grid_around(crs, res, half)
    images = [[source_for(scenes[n].path, record_id=f"r{i}", dataset_id=i)] for i, n in enumerate(names)]
    images.append([source_for(scenes[n].path, dataset_id=10 + i) for i, n in enumerate(names)])  # one mosaic
    plan = make_plan(images, grid, chunks=100)
    got = compute(plan)
    want = expected([list(im.sources) for im in plan.images], grid, FMT, "near")
    assert got.shape == want.shape
    assert got.dtype == np.uint16
    mismatch = got != want
    assert not mismatch.any(), f"{mismatch.sum()} pixels differ of {got.size}"
    # something was painted, and nodata holes exist
    assert (got != 0).mean() > 0.2 and (got == 0).any()


@pytest.mark.parametrize(("res", "offset", "shifted"), [
    (20.0, (0.3, -0.45), True),  # on the ×2 overview's pixel size: a whole-pixel translation of it
    (10.0, (-0.7, 0.2), True),  # on the full resolution's
    (20.0, (0.5, 0.25), False),  # centres on the source's pixel edges: resampled (right/lower pixel)
])
def test_nearest_on_a_grid_offset_by_a_fraction_of_a_pixel_matches_reference_exactly(scenes, res, offset, shifted):
    """At the sources' pixel size, nearest on a grid offset by a fraction of a pixel reads each source
    translated by whole pixels (no positions), unless pixel centres fall on source pixel edges; either
    way every pixel is the reference's (exact coordinates)."""
    from geocube_dask.graph.warp import alignment, choose_level

    base = grid_around("EPSG:32631", res, 1500.0)
    a, b, c, d, e, f = base.transform
    grid = GridSpec(base.crs, (a, b, c + offset[0] * a, d, e, f + offset[1] * e), base.width, base.height)
    names = ["utm31", "utm32", "l93", "utm31b"]
    images = [[source_for(scenes[n].path, record_id=f"r{i}", dataset_id=i)] for i, n in enumerate(names)]
    plan = make_plan(images, grid, chunks=(70, 90))
    level, _ = choose_level(plan.images[0].sources[0], grid)
    assert (alignment(level, grid, nearest=True) is not None) is shifted
    assert alignment(level, grid) is None  # other methods resample
    got = compute(plan)
    want = expected([list(im.sources) for im in plan.images], grid, FMT, "near")
    mismatch = got != want
    assert not mismatch.any(), f"{mismatch.sum()} pixels differ of {got.size}"
    assert (got != 0).mean() > 0.2 and (got == 0).any()


def test_paint_order_later_valid_pixel_wins_and_nodata_never_overwrites(scenes):
    grid = grid_around("EPSG:32631", 10.0, 1500.0)
    a = source_for(scenes["utm31"].path, dataset_id=1)
    b = source_for(scenes["utm31b"].path, dataset_id=2)
    ab = compute(make_plan([[a, b]], grid))[0]
    ba = compute(make_plan([[b, a]], grid))[0]
    only_a = compute(make_plan([[a]], grid))[0]
    only_b = compute(make_plan([[b]], grid))[0]
    both = (only_a != 0) & (only_b != 0)
    assert both.any() and (only_a[both] != only_b[both]).any()
    assert np.array_equal(ab[both], only_b[both]) and np.array_equal(ba[both], only_a[both])
    a_only = (only_a != 0) & (only_b == 0)
    assert a_only.any() and np.array_equal(ab[a_only], only_a[a_only])  # b's nodata did not overwrite


def test_band_subset_and_order(scenes):
    grid = grid_around("EPSG:32631", 10.0, 800.0)
    src = source_for(scenes["six"].path, bands=(5, 2, 6))
    plan = make_plan([[src]], grid, bands=("e", "b", "f"))
    got = compute(plan)
    assert np.array_equal(got, expected([[src]], grid, FMT, "near", nbands=3))
    cube = cube_from_plan(plan)
    assert list(cube.band.values) == ["e", "b", "f"]


def test_float_source_nan_nodata_to_float_variable(scenes):
    fmt = DFormat("float32", math.nan, 0.0, 1.0)
    src = source_for(scenes["float"].path, dformat=DFormat("float32", math.nan, 0.0, 1.0), real=(0.0, 1.0))
    grid = grid_around("EPSG:32632", 12.0, 1200.0)
    got = compute(make_plan([[src]], grid, dformat=fmt))
    want = expected([[src]], grid, fmt, "near")
    assert np.isnan(got).any() and (~np.isnan(got)).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~np.isnan(got)], want[~np.isnan(want)])


@pytest.mark.parametrize("exponent", [1.0, 0.5, 2.5])
def test_mapping_with_exponent_into_int16(scenes, exponent):
    # stored int16 -10000..10000 means -1..1; the variable stores -1..1 as int16 * 1000, nodata -32768
    fmt = DFormat("int16", -32768.0, -1000.0, 1000.0)
    src = source_for(scenes["ndvi"].path, bands=(1,), dformat=DFormat("int16", -10001.0, -10000.0, 10000.0),
                     real=(-1000.0, 1000.0), exponent=exponent)
    grid = grid_around("EPSG:32631", 10.0, 1000.0)
    got = compute(make_plan([[src]], grid, dformat=fmt, bands=("ndvi",)))
    want = expected([[src]], grid, fmt, "near", nbands=1)
    assert np.array_equal(got, want)
    assert (got == -32768).any() and (got > 500).any() and (got < -500).any()


def test_values_above_the_range_saturate_in_a_narrow_dtype(scenes):
    # reflectance 0..10000 mapped to 0..250 in uint8: clouds (> 10000) saturate at 255, never wrap
    fmt = DFormat("uint8", 0.0, 0.0, 250.0)
    src = source_for(scenes["utm31"].path, dformat=DFormat("uint16", 0.0, 0.0, 10000.0), real=(0.0, 250.0))
    grid = grid_around("EPSG:32631", 20.0, 1500.0)
    got = compute(make_plan([[src]], grid, dformat=fmt))
    assert np.array_equal(got, expected([[src]], grid, fmt, "near"))
    assert (got == 255).any()


def test_request_touching_nothing_is_an_empty_cube(scenes):
    grid = make_grid("EPSG:32631", 10, (100000, 100000, 101000, 101000))
    plan = make_plan([[source_for(scenes["utm31"].path)]], grid)
    assert plan.images == ()
    cube = cube_from_plan(plan)
    assert cube.shape == (0, 4, 100, 100)
    assert cube.compute().shape == (0, 4, 100, 100)


def test_partial_cover_leaves_nodata(scenes):
    src = source_for(scenes["utm31"].path)
    a = src.transform
    # a grid half over the scene's east edge
    east = a[2] + a[0] * src.width
    grid = make_grid("EPSG:32631", 10, (east - 500, a[5] - 1000, east + 500, a[5] - 100))
    got = compute(make_plan([[src]], grid))
    assert (got[..., 50:] == 0).all() and (got[..., :50] != 0).any()


def test_same_request_same_keys_and_graph_size_independent_of_files(scenes):
    grid = grid_around("EPSG:32631", 10.0, 1500.0)
    srcs = [source_for(scenes["utm31"].path, dataset_id=i) for i in range(40)]
    p1 = make_plan([srcs], grid, chunks=100)
    c1, c2 = cube_from_plan(p1), cube_from_plan(p1)
    assert c1.data.name == c2.data.name
    assert set(dict(c1.data.dask)) == set(dict(c2.data.dask))
    p_one = make_plan([srcs[:1]], grid, chunks=100)
    n_chunks = len(c1.data.dask.layers[c1.data.name])
    assert n_chunks == len(cube_from_plan(p_one).data.dask.layers[cube_from_plan(p_one).data.name])


def test_chunks_no_source_touches_read_nothing(scenes):
    src = source_for(scenes["utm31"].path)
    a = src.transform
    east = a[2] + a[0] * src.width
    grid = make_grid("EPSG:32631", 10, (east - 500, a[5] - 1000, east + 4500, a[5] - 100))
    cube = cube_from_plan(make_plan([[src]], grid, chunks=100))
    layer = dict(cube.data.dask.layers[cube.data.name])
    readers = [v for v in layer.values() if isinstance(v, tuple) and getattr(v[0], "__name__", "") == "run_chunk_job"]
    assert 0 < len(readers) < cube.data.npartitions


@pytest.mark.parametrize(("chunks", "keep_files", "left_open"), [
    (1024, False, set()),  # each file is read by one chunk: closed once painted
    (1024, True, {"utm31", "utm32", "l93"}),  # kept for later requests (tiles, timeseries)
    ((64, 96), False, {"utm31", "utm32", "l93"}),  # read by several chunks: kept for the next one
])
def test_a_chunk_closes_the_files_no_other_chunk_reads(scenes, chunks, keep_files, left_open):
    """An open dataset that has been read keeps its tile buffers and decoded tiles: after ``compute()``,
    only the files that several chunks read (or all, with ``keep_files``) are still open. A mosaic
    reads two files in one chunk: each is closed after it is painted."""
    from geocube_dask.graph import read

    grid = grid_around("EPSG:32631", 15.0, 1500.0)
    images = [[source_for(scenes["utm31"].path, dataset_id=0)],
              [source_for(scenes["utm32"].path, dataset_id=1), source_for(scenes["l93"].path, dataset_id=2)]]
    plan = make_plan(images, grid, chunks=chunks)
    read.clear_handle_cache()
    with dask.config.set(scheduler="sync"):
        got = cube_from_plan(plan, keep_files=keep_files).values
    np.testing.assert_array_equal(got, expected(images, grid, plan.dformat, "near"))
    assert {key[0] for key in read._handles().items} == {scenes[n].path for n in left_open}
    read.clear_handle_cache()


def test_missing_source_is_a_clear_error_or_nodata(scenes, tmp_path):
    import shutil

    path = tmp_path / "gone.tif"
    shutil.copy(scenes["utm31"].path, path)
    src = source_for(str(path))
    good = source_for(scenes["utm31b"].path)
    grid = grid_around("EPSG:32631", 10.0, 1500.0)
    plan = make_plan([[good, src]], grid)
    path.unlink()
    with pytest.raises(SourceReadError, match="gone.tif"):
        compute(plan)
    filled = compute(make_plan([[good, src]], grid, on_error="nodata"))
    assert np.array_equal(filled, compute(make_plan([[good]], grid)))


def test_corrupt_source_is_a_clear_error(scenes, tmp_path):
    path = tmp_path / "cut.tif"
    data = Path(scenes["utm31"].path).read_bytes()
    path.write_bytes(data)
    src = source_for(str(path))
    path.write_bytes(data[: len(data) // 2])
    grid = grid_around("EPSG:32631", 10.0, 1500.0)
    with pytest.raises(SourceReadError, match="cut.tif"):
        compute(make_plan([[src]], grid))


@pytest.mark.parametrize("chunks", [1024, 64])
def test_a_source_failing_half_way_is_left_out_with_on_error_nodata(scenes, tmp_path, chunks):
    """The first source of a chunk is read straight into it when copied as is: a read that fails after
    some tiles were decoded leaves none of them behind."""
    path = tmp_path / "cut.tif"
    data = Path(scenes["utm31"].path).read_bytes()
    path.write_bytes(data)
    cut = source_for(str(path))
    path.write_bytes(data[: len(data) * 3 // 4])  # the header and the first tiles are intact
    good = source_for(scenes["utm32"].path)
    grid = grid_around("EPSG:32631", 10.0, 1500.0)  # on utm31's grid: direct reads
    got = compute(make_plan([[cut], [cut, good]], grid, chunks=chunks, on_error="nodata"))
    whole = compute(make_plan([[source_for(scenes["utm31"].path)]], grid))[0]
    left_out = 0
    for r in range(0, grid.height, chunks):  # each chunk: the source's pixels, or none of them
        for c in range(0, grid.width, chunks):
            block = (slice(None), slice(r, r + chunks), slice(c, c + chunks))
            if (got[0][block] == 0).all():
                left_out += 1
                want = compute(make_plan([[good]], grid))[0][block]
            else:
                assert np.array_equal(got[0][block], whole[block])
                want = compute(make_plan([[source_for(scenes["utm31"].path), good]], grid))[0][block]
            assert np.array_equal(got[1][block], want)
    assert left_out >= 1


def test_cube_coordinates_and_metadata(scenes):
    grid = grid_around("EPSG:32631", 20.0, 1000.0)
    plan = make_plan([[source_for(scenes["utm31"].path)], [source_for(scenes["utm32"].path)]], grid)
    cube = cube_from_plan(plan)
    assert cube.dims == ("time", "band", "y", "x")
    assert cube.rio.crs.to_epsg() == 32631
    assert tuple(cube.rio.transform())[:6] == grid.transform
    assert cube.attrs["_FillValue"] == 0 and cube.rio.nodata == 0
    assert cube.attrs["resampling"] == "near" and cube.attrs["variable"] == "refl"
    assert list(cube.record_ids.values) == ["rec000", "rec001"]
    assert list(cube.record_names.values) == ["record-0", "record-1"]
    assert cube.x.values[0] == grid.transform[2] + 10 and cube.y.values[0] == grid.transform[5] - 10
    assert str(cube.time.values[1])[:10] == "2024-01-02"
    assert cube.dtype == np.uint16


def _compare_kernels(got: np.ndarray, want: np.ndarray):
    """(share of pixels whose validity differs, max |difference| where both are valid)."""
    gv, wv = got != 0, want != 0
    both = gv & wv
    diff = np.abs(got.astype("int64") - want.astype("int64"))[both]
    return float((gv != wv).mean()), int(diff.max()) if diff.size else 0


@pytest.mark.parametrize("method", ["bilinear", "cubic", "cubicspline", "lanczos", "average"])
@pytest.mark.parametrize("res", [7.0, 15.0, 20.0, 30.0])
def test_kernels_same_crs_match_gdal_within_one_unit(scenes, method, res):
    src = source_for(scenes["utm31"].path)
    grid = grid_around("EPSG:32631", res, 1400.0, shift=(3.3, -1.7))
    got = compute(make_plan([[src]], grid, resampling=method, chunks=64))[0]
    want = expected([[src]], grid, FMT, method)[0]
    mismatch, worst = _compare_kernels(got, want)
    assert mismatch == 0.0
    assert worst <= 1


@pytest.mark.parametrize("method", ["bilinear", "cubic"])
def test_kernels_across_crs_match_gdal_within_its_approximation(scenes, method):
    # GDAL's approximate transformer (0.125 px) moves sample points a little: values agree within one unit
    # on almost every pixel; validity only differs along nodata edges
    src = source_for(scenes["utm32"].path)
    grid = grid_around("EPSG:32631", 15.0, 1400.0)
    got = compute(make_plan([[src]], grid, resampling=method, chunks=64))[0]
    want = expected([[src]], grid, FMT, method)[0]
    gv, wv = got != 0, want != 0
    assert (gv != wv).mean() < 0.01
    both = gv & wv
    diff = np.abs(got.astype("int64") - want.astype("int64"))[both]
    assert (diff <= 1).mean() > 0.98


@pytest.mark.parametrize("method", ["bilinear", "cubic"])
def test_kernels_on_float_variable_within_relative_tolerance(scenes, method):
    fmt = DFormat("float32", math.nan, 0.0, 1.0)
    src = source_for(scenes["float"].path, dformat=DFormat("float32", math.nan, 0.0, 1.0), real=(0.0, 1.0))
    grid = grid_around("EPSG:32631", 13.0, 1200.0, shift=(2.0, 5.0))
    got = compute(make_plan([[src]], grid, dformat=fmt, resampling=method))
    want = expected([[src]], grid, fmt, method)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(got)
    assert ok.mean() > 0.3
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-4)


def _rewrite_with(path: Path, source: str, factor: int) -> None:
    """Rewrite ``path`` in place (a new file under the same name) with ``source``'s pixels // factor + 1."""
    import os

    import rasterio

    with rasterio.open(source) as src:
        profile, data = src.profile, src.read()
    tmp = path.with_suffix(".new.tif")
    with rasterio.open(tmp, "w", **{**profile, "driver": "GTiff"}) as dst:
        dst.write(data // factor + 1)
    os.replace(tmp, path)


@pytest.mark.parametrize("where", ["threads", "processes"])
def test_a_file_rewritten_in_place_is_read_anew(scenes, tmp_path: Path, where: str) -> None:
    """The same plan computed again after its file was rewritten under the same name gives the new
    pixels, on threads and on worker processes that kept the old file open."""
    import shutil

    path = tmp_path / "scene.tif"
    shutil.copyfile(scenes["utm31"].path, path)
    src = source_for(str(path))
    x, y = centre_in("EPSG:32631")
    grid = make_grid("EPSG:32631", 10.0, (x - 800, y - 800, x + 800, y + 800))
    plan = make_plan([[src]], grid, chunks=64)

    def computed() -> np.ndarray:
        return cube_from_plan(plan).compute().values[0]

    def expected() -> np.ndarray:
        return reference_image([ref_of(src)], ref_grid(grid), "uint16", 0, "near", 4)

    if where == "threads":
        with dask.config.set(scheduler="threads"):
            first = computed()
            _rewrite_with(path, scenes["utm31"].path, 2)
            second = computed()
    else:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            first = computed()
            _rewrite_with(path, scenes["utm31"].path, 2)
            second = computed()
            from geocube_dask.graph import clear_caches, read, setups

            def state() -> tuple[int, int]:
                return len(setups.setup_cache.items), read._generation

            before = client.run(state)
            clear_caches(client=client)  # every worker forgets its set-ups; each thread closes its handles
            after = client.run(state)
            assert after.keys() == before.keys() and len(after) == 2
            assert all(after[w] == (0, before[w][1] + 1) for w in after)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(second, expected())


def test_a_remote_object_rewritten_under_its_name_is_read_anew_after_clear_caches(scenes, http_server,
                                                                                 tmp_path: Path) -> None:
    """GDAL keeps what it downloaded of a URL for the life of the process: after the object is rewritten
    on the server, ``clear_caches()`` makes the next compute fetch it again and give the new pixels."""
    import uuid

    from geocube_dask.graph import clear_caches

    name = f"rewritten/{uuid.uuid4().hex}/scene.tif"
    url = http_server.put(scenes["utm31"].path, name)
    src = source_for(scenes["utm31"].path)
    remote = type(src)(**{**src.__dict__, "uri": url})
    x, y = centre_in("EPSG:32631")
    grid = make_grid("EPSG:32631", 10.0, (x - 800, y - 800, x + 800, y + 800))
    plan = make_plan([[remote]], grid, chunks=64, gdal_env={"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"})
    with dask.config.set(scheduler="threads"):
        first = cube_from_plan(plan).compute().values[0]
        np.testing.assert_array_equal(first, reference_image([ref_of(src)], ref_grid(grid), "uint16", 0, "near", 4))
        local = tmp_path / "new.tif"
        _rewrite_with(local, scenes["utm31"].path, 3)
        http_server.put(local, name)
        clear_caches()
        second = cube_from_plan(plan).compute().values[0]
    want = reference_image([ref_of(source_for(str(local)))], ref_grid(grid), "uint16", 0, "near", 4)
    np.testing.assert_array_equal(second, want)
