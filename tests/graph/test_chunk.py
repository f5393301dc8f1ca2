"""geocube_dask.graph.chunk on its own: one output chunk painted from real GeoTIFFs, and the set-up cache.

Chunk contexts and source reads are taken from the graph ``cube_from_plan`` builds (one chunk covering
the whole grid), so they carry exactly the geometry (level, scale, alignment, window) a cube gives them;
``compute_chunk`` is then called on any window. Expected pixels are computed plainly with numpy and pyproj.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import dask.config
import numpy as np
import pytest
import rasterio
import rasterio.env
from affine import Affine
from pyproj import Transformer
from scenes import make_plan, origin_near, source_for

from geocube_dask.entities import DFormat
from geocube_dask.errors import GeocubeError, InvalidArgument, SourceReadError
from geocube_dask.graph import setups as setups_module
from geocube_dask.graph.chunk import (
    ChunkContext,
    SourceRead,
    clear_caches,
    compute_chunk,
    configured_settings,
    gdal_cachemax,
)
from geocube_dask.graph.cube import ChunkJob, cube_from_plan
from geocube_dask.graph.grid import GridSpec, make_grid
from geocube_dask.graph.plan import Source
from geocube_dask.graph.read import Prefetched, gdal_settings, open_source
from geocube_dask.graph.setups import setup_cache
from geocube_dask.synthetic import write_raster

VAR = DFormat("uint16", 65535, 0, 10000)  # variable nodata differs from the files' nodata (0)
BANDS = ("b1", "b2", "b3")
RES = 10.0
A_T = origin_near("EPSG:32631", RES, 64, 48)  # file "a": 64 × 48 pixels of 10 m in UTM 31N
B_T = A_T @ Affine.translation(9, 5)  # file "b": the same size, 9 columns right and 5 rows down
U32_T = origin_near("EPSG:32632", RES, 80, 70, (7, -3))  # files "u32" and "u32b": UTM 32N, one tile, two dates


def random_bands(seed: int, height: int, width: int, low: int, high: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, size=(3, height, width), dtype="uint16")


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    """The pixels written to each file (full resolution)."""
    a = random_bands(1, 48, 64, 1, 10001)
    a[:, :6, :10] = 0  # nodata in every band
    rr, cc = np.mgrid[0:48, 0:64]
    a[1][(rr + cc) % 7 == 0] = 0  # nodata in band 2 only
    b = random_bands(2, 48, 64, 20001, 30001)
    b[:, 20:30, 30:40] = 0
    u32 = random_bands(3, 70, 80, 1, 10001)
    u32[:, 50:, :15] = 0
    u32b = random_bands(4, 70, 80, 1, 10001)
    ints = np.array([[[0, 1, 3, 32, 96], [1024, 2000, 8000, -100, -1]]], dtype="int16")
    return {"a": a, "b": b, "u32": u32, "u32b": u32b, "ints": ints}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    root = tmp_path_factory.mktemp("chunk")
    spec = {
        "a": ("EPSG:32631", A_T, 0, (2, 4)),
        "b": ("EPSG:32631", B_T, 0, (2,)),
        "u32": ("EPSG:32632", U32_T, 0, (2, 4)),
        "u32b": ("EPSG:32632", U32_T, 0, (2, 4)),
        "ints": ("EPSG:32631", A_T, -1, ()),
    }
    out = {}
    for name, (crs, transform, nodata, overviews) in spec.items():
        path = root / f"{name}.tif"
        write_raster(path, arrays[name], crs=crs, transform=transform, nodata=nodata, overviews=overviews, blocksize=16)
        out[name] = str(path)
    return out


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    clear_caches()
    yield
    clear_caches()


def src(path: str, **kwargs: Any) -> Source:
    return source_for(path, bands=(1, 2, 3), **kwargs)


def chunk_inputs(
    sources: list[Source], grid: GridSpec, *, dformat: DFormat = VAR, bands: tuple[str, ...] = BANDS,
    resampling: str = "near", **kwargs: Any,
) -> tuple[ChunkContext, tuple[SourceRead, ...]]:
    """The context and source reads of the one chunk task of a one-image, one-chunk cube of ``sources``."""
    plan = make_plan([sources], grid, dformat=dformat, bands=bands, resampling=resampling,
                     chunks=(grid.height, grid.width), **kwargs)
    cube = cube_from_plan(plan)
    jobs = [job for task in dict(cube.data.__dask_graph__()).values() for job in _jobs(task)]
    assert len(jobs) == 1
    return jobs[0].ctx, jobs[0].reads


def _jobs(task: Any) -> Iterator[ChunkJob]:
    if isinstance(task, ChunkJob):
        yield task
    elif isinstance(task, tuple | list):
        for item in task:
            yield from _jobs(item)
    elif isinstance(getattr(task, "args", None), tuple):  # dask Task objects
        for item in task.args:
            yield from _jobs(item)


def grid_on(transform: Affine, dr: int, dc: int, height: int, width: int, res: float = RES) -> GridSpec:
    """A grid of pixel size ``res`` whose pixel (r, c) sits at pixel (r + dr, c + dc) of ``transform``'s grid."""
    origin = transform @ (0, 0)
    return GridSpec("EPSG:32631", (res, 0.0, origin[0] + dc * res, 0.0, -res, origin[1] - dr * res), width, height)


def aligned_expected(data: np.ndarray, nodata: float, dr: int, dc: int, height: int, width: int,
                     out: np.ndarray | None = None, fill: float = VAR.nodata) -> np.ndarray:
    """Paint ``data`` (bands, rows, cols) on a grid whose pixel (r, c) is data pixel (r + dr, c + dc)."""
    if out is None:
        out = np.full((data.shape[0], height, width), fill, dtype=VAR.dtype)
    for r in range(height):
        for c in range(width):
            sr, sc = r + dr, c + dc
            if 0 <= sr < data.shape[1] and 0 <= sc < data.shape[2]:
                for b in range(data.shape[0]):
                    if data[b, sr, sc] != nodata:
                        out[b, r, c] = data[b, sr, sc]
    return out


def nearest_reference(path: str, level: int, grid: GridSpec) -> np.ndarray:
    """Nearest neighbour of each output pixel centre, transformed exactly with pyproj (variable nodata elsewhere)."""
    kwargs = {} if level < 0 else {"overview_level": level}
    with rasterio.open(path, **kwargs) as ds:
        data, src_t, src_crs, nodata = ds.read(), ds.transform, ds.crs.to_string(), ds.nodata
    g = Affine(*grid.transform)
    cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    x, y = g.c + g.a * cols, g.f + g.e * rows
    x, y = Transformer.from_crs(grid.crs, src_crs, always_xy=True).transform(x, y)
    inv = ~src_t
    sx, sy = inv.c + inv.a * x + inv.b * y, inv.f + inv.d * x + inv.e * y
    ci, ri = np.floor(sx + 1e-10), np.floor(sy + 1e-10)
    inside = (sx >= 0) & (ci < data.shape[2]) & (sy >= 0) & (ri < data.shape[1])
    assert inside.any() and not inside.all()
    out = np.full((data.shape[0], grid.height, grid.width), VAR.nodata, dtype=VAR.dtype)
    rr, cc = np.nonzero(inside)
    for b in range(data.shape[0]):
        values = data[b, ri[inside].astype(int), ci[inside].astype(int)]
        ok = values != nodata
        out[b, rr[ok], cc[ok]] = values[ok]
    return out


def grid_around(path: str, crs: str, res: float, margin: float) -> GridSpec:
    """A ``crs`` grid of ``res`` covering the file's footprint with ``margin`` to spare."""
    with rasterio.open(path) as ds:
        left, bottom, right, top = ds.bounds
        src_crs = ds.crs.to_string()
    xs, ys = Transformer.from_crs(src_crs, crs, always_xy=True).transform(
        [left, left, right, right], [bottom, top, bottom, top])
    return make_grid(crs, res, (min(xs) - margin, min(ys) - margin, max(xs) + margin, max(ys) + margin))


# --- shape, nodata, direct reads ------------------------------------------------------------------------


def test_chunk_shape_dtype_and_uncovered_pixels_hold_the_variable_nodata(
    files: dict[str, str], arrays: dict[str, np.ndarray]
) -> None:
    grid = grid_on(A_T, -10, -20, 80, 100)  # the file lies at rows 10..57, cols 20..83
    ctx, reads = chunk_inputs([src(files["a"])], grid)
    out = compute_chunk(ctx, 0, 0, 80, 100, reads)
    assert out.shape == (1, 3, 80, 100) and out.dtype == np.uint16
    covered = np.zeros((80, 100), dtype=bool)
    covered[10:58, 20:84] = True
    assert (out[0][:, ~covered] == 65535).all()
    # stored nodata (0) becomes the variable's nodata, band by band
    block = out[0][:, 10:58, 20:84]
    np.testing.assert_array_equal(block == 65535, arrays["a"] == 0)
    assert not (out == 0).any()
    # a window no source reaches is all nodata, at the shape asked
    empty = compute_chunk(ctx, 60, 0, 20, 15, reads)
    assert empty.shape == (1, 3, 20, 15) and (empty == 65535).all()


@pytest.mark.parametrize("resampling", ["near", "bilinear", "average"])
@pytest.mark.parametrize("window", [(0, 0, 60, 70), (3, 5, 17, 23), (40, 50, 20, 20), (50, 0, 10, 70)])
def test_aligned_source_is_read_directly_as_plain_slicing(
    files: dict[str, str], arrays: dict[str, np.ndarray], resampling: str, window: tuple[int, int, int, int]
) -> None:
    dr, dc = 4, -7  # output pixel (r, c) is file pixel (r + 4, c - 7)
    grid = grid_on(A_T, dr, dc, 60, 70)
    ctx, reads = chunk_inputs([src(files["a"])], grid, resampling=resampling)
    assert reads[0].direct and reads[0].align == (dr, dc) and reads[0].level.level == -1
    row0, col0, h, w = window
    got = compute_chunk(ctx, row0, col0, h, w, reads)[0]
    whole = aligned_expected(arrays["a"], 0, dr, dc, 60, 70)
    np.testing.assert_array_equal(got, whole[:, row0:row0 + h, col0:col0 + w])


def test_aligned_overview_is_read_directly(files: dict[str, str]) -> None:
    with rasterio.open(files["a"], overview_level=0) as ov:
        overview = ov.read()
    assert overview.shape == (3, 24, 32)
    grid = grid_on(A_T, 2, 3, 30, 40, res=2 * RES)  # output pixel (r, c) is ×2 overview pixel (r + 2, c + 3)
    ctx, reads = chunk_inputs([src(files["a"])], grid)
    assert reads[0].direct and reads[0].level.level == 0 and reads[0].align == (2, 3)
    got = compute_chunk(ctx, 0, 0, 30, 40, reads)[0]
    np.testing.assert_array_equal(got, aligned_expected(overview, 0, 2, 3, 30, 40))
    part = compute_chunk(ctx, 11, 13, 9, 25, reads)[0]
    np.testing.assert_array_equal(part, got[:, 11:20, 13:38])


# --- paint order ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_later_valid_pixel_wins_and_nodata_never_overwrites(
    files: dict[str, str], arrays: dict[str, np.ndarray], order: str
) -> None:
    grid = grid_on(A_T, 0, 0, 60, 80)  # a at (0, 0), b at rows 5..52, cols 9..72
    sources = [src(files[name], dataset_id=i) for i, name in enumerate(order)]
    ctx, reads = chunk_inputs(sources, grid)
    assert [r.source.uri for r in reads] == [files[name] for name in order]
    got = compute_chunk(ctx, 0, 0, 60, 80, reads)[0]
    offsets = {"a": (0, 0), "b": (-5, -9)}
    want = None
    for name in order:
        want = aligned_expected(arrays[name], 0, *offsets[name], 60, 80, out=want)
    np.testing.assert_array_equal(got, want)
    # the cases that matter do occur: both valid, only the earlier valid, neither valid
    a_valid = aligned_expected(arrays["a"], 0, 0, 0, 60, 80) != 65535
    b_valid = aligned_expected(arrays["b"], 0, -5, -9, 60, 80) != 65535
    first, last = (a_valid, b_valid) if order == "ab" else (b_valid, a_valid)
    assert (first & last).sum() > 100 and (first & ~last).sum() > 100 and (~first & ~last).sum() > 100
    from_b = (got >= 20001) & (got <= 30000)  # only b holds values above 10000
    assert (from_b == (b_valid if order == "ab" else b_valid & ~a_valid)).all()


# --- nearest neighbour across CRSs ----------------------------------------------------------------------


@pytest.mark.parametrize(("res", "level"), [(12.0, -1), (25.0, 0), (7.0, -1)])
def test_nearest_gather_across_crs_matches_an_exact_pyproj_reference(files: dict[str, str], res: float,
                                                                     level: int) -> None:
    grid = grid_around(files["u32"], "EPSG:32631", res, 5 * res)
    ctx, reads = chunk_inputs([src(files["u32"])], grid)
    assert not reads[0].direct and reads[0].level.level == level
    want = nearest_reference(files["u32"], level, grid)
    got = compute_chunk(ctx, 0, 0, grid.height, grid.width, reads)[0]
    assert (got != 65535).sum() > 1000 and (got == 65535).sum() > 100
    mismatch = got != want
    assert not mismatch.any(), f"{mismatch.sum()} of {got.size} values differ"
    # any window of the grid gives the same pixels
    row0, col0 = grid.height // 3, grid.width // 4
    h, w = grid.height // 2, grid.width // 2
    np.testing.assert_array_equal(compute_chunk(ctx, row0, col0, h, w, reads)[0],
                                  want[:, row0:row0 + h, col0:col0 + w])


@pytest.mark.parametrize(("res", "level"), [(12.0, -1), (25.0, 0)])
def test_a_prefetched_window_wider_than_the_read_gives_the_same_pixels(files: dict[str, str], res: float,
                                                                       level: int) -> None:
    """A window read ahead for several chunks (a batch over a multi-image file) serves each read a strided view
    of it, not a contiguous array: nearest across CRSs paints the pixels of the exact reference all the same."""
    grid = grid_around(files["u32"], "EPSG:32631", res, 5 * res)
    ctx, reads = chunk_inputs([src(files["u32"])], grid)
    sr = reads[0]
    assert not sr.direct and sr.level.level == level
    with rasterio.open(files["u32"], **({} if level < 0 else {"overview_level": level})) as ds:
        whole = ds.read(list(sr.source.bands))
    pre = Prefetched((0, 0, *whole.shape[1:]), sr.source.bands, whole)
    prefetched = {(sr.source.uri, sr.source.subdir, level): pre}
    want = nearest_reference(files["u32"], level, grid)
    row0, col0 = grid.height // 3, grid.width // 4
    h, w = grid.height // 2, grid.width // 2
    got = compute_chunk(ctx, row0, col0, h, w, reads, prefetched)[0]
    assert (got != VAR.nodata).sum() > 100
    np.testing.assert_array_equal(got, want[:, row0:row0 + h, col0:col0 + w])


# --- value mapping and cast ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exponent", "expected"),
    [
        # stored v means 10000 * (v / 1024) ** exponent, rounded half away from zero, saturated to uint16
        (1.0, [[0, 10, 29, 313, 938], [10000, 19531, 65535, 0, 65535]]),
        (0.5, [[0, 313, 541, 1768, 3062], [10000, 13975, 27951, 0, 65535]]),
    ],
)
def test_values_are_mapped_rounded_and_saturated(files: dict[str, str], exponent: float,
                                                 expected: list[list[int]]) -> None:
    # stored int16 0..1024 (nodata -1) means 0..10000 of a uint16 variable
    source = source_for(files["ints"], bands=(1,), dformat=DFormat("int16", -1, 0, 1024), real=(0.0, 10000.0),
                        exponent=exponent)
    grid = grid_on(A_T, -1, -1, 4, 7)  # a ring of uncovered pixels around the 2 × 5 file
    ctx, reads = chunk_inputs([source], grid, bands=("v",))
    got = compute_chunk(ctx, 0, 0, 4, 7, reads)
    assert got.shape == (1, 1, 4, 7) and got.dtype == np.uint16
    assert got[0, 0, 1:3, 1:6].tolist() == expected
    ring = np.ones((4, 7), dtype=bool)
    ring[1:3, 1:6] = False
    assert (got[0, 0][ring] == 65535).all()


def test_float_variable_gets_mapped_values_and_nan_nodata(files: dict[str, str], arrays: dict[str, np.ndarray]) -> None:
    var = DFormat("float32", float("nan"), 0.0, 1.0)
    grid = grid_on(A_T, 0, 0, 50, 64)
    stored = DFormat("uint16", 0, 0, 10000)  # stored 0..10000 means 0..1
    ctx, reads = chunk_inputs([src(files["a"], dformat=stored, real=(0.0, 1.0))], grid, dformat=var)
    got = compute_chunk(ctx, 0, 0, 50, 64, reads)[0]
    assert got.dtype == np.float32
    a = arrays["a"]
    want = np.full((3, 50, 64), np.nan, dtype="float32")
    want[:, :48] = np.where(a != 0, (a / 10000.0).astype("float32"), np.nan)
    np.testing.assert_array_equal(got, want)
    assert np.isnan(got[:, 48:]).all()


# --- read errors ----------------------------------------------------------------------------------------


def test_a_missing_file_raises_source_read_error_naming_it(files: dict[str, str], tmp_path: Path) -> None:
    missing = str(tmp_path / "gone" / "scene.tif")
    grid = grid_on(A_T, 0, 0, 48, 64)
    ctx, reads = chunk_inputs([src(files["a"]), replace(src(files["a"]), uri=missing)], grid)
    assert ctx.on_error == "raise"
    with pytest.raises(SourceReadError, match=re.escape(repr(missing))) as info:
        compute_chunk(ctx, 0, 0, 48, 64, reads)
    assert isinstance(info.value, GeocubeError)
    assert info.value.__cause__ is None and info.value.__context__ is None  # picklable across processes
    assert "on_error='nodata'" in str(info.value)


@pytest.mark.parametrize("missing_first", [True, False])
def test_on_error_nodata_paints_the_other_sources(
    files: dict[str, str], arrays: dict[str, np.ndarray], tmp_path: Path, missing_first: bool
) -> None:
    missing = replace(src(files["a"], dataset_id=9), uri=str(tmp_path / "nothing.tif"))
    good = src(files["b"])
    grid = grid_on(A_T, 0, 0, 60, 80)
    sources = [missing, good] if missing_first else [good, missing]
    ctx, reads = chunk_inputs(sources, grid, on_error="nodata")
    assert len(reads) == 2
    got = compute_chunk(ctx, 0, 0, 60, 80, reads)[0]
    np.testing.assert_array_equal(got, aligned_expected(arrays["b"], 0, -5, -9, 60, 80))


@pytest.mark.parametrize("method", ["bilinear", "lanczos"])  # the compiled kernel and the numpy Resampler
@pytest.mark.parametrize("on_error", ["raise", "nodata"])
@pytest.mark.parametrize("error", [ValueError("a kernel bug"), MemoryError(), RuntimeError("broken invariant")])
def test_errors_that_are_not_read_failures_surface_as_themselves(
    files: dict[str, str], monkeypatch: pytest.MonkeyPatch, on_error: str, error: BaseException, method: str
) -> None:
    """Only I/O failures become SourceReadError (or are left out with on_error='nodata'): a bug in a
    kernel, a MemoryError or a broken invariant is raised as it is, whatever on_error says."""
    from geocube_dask.graph.kernels import Resampler, compiled

    def broken(*args: Any) -> Any:
        raise error

    if method == "bilinear":
        monkeypatch.setattr(compiled, "paint_interp", broken)
    else:
        monkeypatch.setattr(Resampler, "__call__", broken)
    grid = grid_around(files["u32"], "EPSG:32631", 12.0, 60.0)
    ctx, reads = chunk_inputs([src(files["u32"])], grid, on_error=on_error)
    ctx = replace(ctx, resampling=method)
    with pytest.raises(type(error)) as info:
        compute_chunk(ctx, 0, 0, 30, 30, reads)
    assert info.value is error


def test_a_read_failure_reaches_a_distributed_client_as_source_read_error(files: dict[str, str],
                                                                         tmp_path: Path) -> None:
    """rasterio's GDAL errors cannot be unpickled: chained to the SourceReadError, they made it reach the
    client of a process worker as a bare Exception. GDAL's reasons are in the message instead."""
    from distributed import Client, LocalCluster

    broken = tmp_path / "half.tif"
    data = Path(files["a"]).read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    plan = make_plan([[replace(src(files["a"]), uri=str(broken))]], grid_on(A_T, 0, 0, 48, 64), dformat=VAR,
                     bands=BANDS)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster), pytest.raises(SourceReadError, match="half.tif.*TIFF"):
        cube_from_plan(plan).compute()


def test_a_corrupt_block_is_a_read_failure(files: dict[str, str], tmp_path: Path) -> None:
    """GDAL's own errors while decoding (a truncated file) are read failures, named after the file."""
    broken = tmp_path / "truncated.tif"
    data = Path(files["a"]).read_bytes()
    broken.write_bytes(data[: len(data) * 2 // 3])
    grid = grid_on(A_T, 0, 0, 48, 64)
    ctx, reads = chunk_inputs([replace(src(files["a"]), uri=str(broken))], grid)
    with pytest.raises(SourceReadError, match="truncated.tif"):
        compute_chunk(ctx, 0, 0, 48, 64, reads)
    ctx, reads = chunk_inputs([replace(src(files["a"]), uri=str(broken))], grid, on_error="nodata")
    assert (compute_chunk(ctx, 0, 0, 48, 64, reads) == VAR.nodata).all()


# --- the resampling set-up cache ------------------------------------------------------------------------


def test_gather_setups_are_cached_per_chunk_and_reused_for_other_dates(files: dict[str, str]) -> None:
    grid = grid_around(files["u32"], "EPSG:32631", 12.0, 60.0)
    ctx, reads = chunk_inputs([src(files["u32"])], grid)
    _, reads_b = chunk_inputs([src(files["u32b"])], grid)
    assert reads[0].source.grid_key == reads_b[0].source.grid_key
    assert len(setup_cache.items) == 0
    first = compute_chunk(ctx, 0, 0, grid.height, grid.width, reads)
    assert len(setup_cache.items) == 1
    (setup,) = [v for v, _ in setup_cache.items.values()]
    second = compute_chunk(ctx, 0, 0, grid.height, grid.width, reads_b)
    assert len(setup_cache.items) == 1 and next(iter(setup_cache.items.values()))[0] is setup
    assert (first != second).any()
    np.testing.assert_array_equal(second[0], nearest_reference(files["u32b"], -1, grid))
    compute_chunk(ctx, 5, 5, 20, 20, reads)
    assert len(setup_cache.items) == 2
    assert setup_cache.bytes == sum(n for _, n in setup_cache.items.values()) > 0


def test_a_small_budget_keeps_only_the_newest_setup_and_values_do_not_change(files: dict[str, str]) -> None:
    grid = grid_around(files["u32"], "EPSG:32631", 12.0, 60.0)
    ctx, reads = chunk_inputs([src(files["u32"])], grid)
    want = nearest_reference(files["u32"], -1, grid)
    windows = [(0, 0, 40, 40), (30, 20, 40, 50), (10, 40, 35, 30)]
    with dask.config.set({"geocube.cache-bytes": 1}):
        for _ in range(2):
            for row0, col0, h, w in windows:
                got = compute_chunk(ctx, row0, col0, h, w, reads)[0]
                np.testing.assert_array_equal(got, want[:, row0:row0 + h, col0:col0 + w])
                assert len(setup_cache.items) == 1
    assert [k[1:5] for k in setup_cache.items] == [(10, 40, 35, 30)]


def test_clear_caches_forgets_setups_and_closes_this_threads_handles(files: dict[str, str]) -> None:
    grid = grid_around(files["u32"], "EPSG:32631", 12.0, 60.0)
    ctx, reads = chunk_inputs([src(files["u32"])], grid)
    compute_chunk(ctx, 0, 0, 30, 30, reads)
    handle = open_source(files["u32"], "", -1, ctx.env)  # the handle the chunk task used
    assert len(setup_cache.items) == 1 and setup_cache.bytes > 0 and not handle.closed
    assert open_source(files["u32"], "", -1, ctx.env) is handle
    clear_caches()
    assert len(setup_cache.items) == 0 and setup_cache.bytes == 0
    assert handle.closed


def test_a_chunk_the_source_window_reaches_but_no_point_falls_in_is_nodata(files: dict[str, str]) -> None:
    grid = grid_around(files["u32"], "EPSG:32631", 12.0, 120.0)
    ctx, reads = chunk_inputs([src(files["u32"])], grid)
    row0, col0, _, _ = reads[0].window  # the corner of the window's margin lies outside the tilted footprint
    got = compute_chunk(ctx, row0, col0, 2, 2, reads)
    assert got.shape == (1, 3, 2, 2) and (got == 65535).all()
    assert [v for v, _ in setup_cache.items.values()] == ["empty"]


# --- GDAL block cache -----------------------------------------------------------------------------------


def test_gdal_cachemax_reads_dask_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(dask.config.config.get("geocube", {}), "gdal-cachemax", raising=False)
    assert gdal_cachemax() == 32
    with dask.config.set({"geocube.gdal-cachemax": 48}):
        assert gdal_cachemax() == 48
    with dask.config.set({"geocube.gdal-cachemax": "300"}):
        assert gdal_cachemax() == 300
    with dask.config.set({"geocube.gdal-cachemax": "1GB"}):
        assert gdal_cachemax() == "1GB"


@pytest.mark.parametrize(("key", "value"), [("gdal-cachemax", "2 gigs"), ("cache-bytes", "lots")])
def test_an_unreadable_cache_setting_is_refused_when_the_graph_is_built(key: str, value: str) -> None:
    with dask.config.set({f"geocube.{key}": value}), pytest.raises(InvalidArgument, match=f"geocube.{key}="):
        configured_settings()
    with dask.config.set({"geocube.gdal-cachemax": "2 gigs"}), pytest.raises(InvalidArgument):
        gdal_cachemax()


_FRESH_PROCESS = """
import sys, threading
import dask.config, numpy as np, rasterio.env
sys.path[:0] = {paths!r}
from geocube_dask.graph import chunk
from test_chunk import chunk_inputs, grid_on, src, A_T
seen = []
real_open = chunk.open_source
def spy(*args):
    seen.append(rasterio.env.get_gdal_config("GDAL_CACHEMAX"))
    return real_open(*args)
chunk.open_source = spy
grid = grid_on(A_T, 0, 0, 48, 64)
with dask.config.set({{"geocube.gdal-cachemax": {configured}}}):
    ctx, reads = chunk_inputs([src({path!r})], grid)
from dataclasses import replace
ctx = replace(ctx, env={env!r})
threads = [threading.Thread(target=chunk.compute_chunk, args=(ctx, r, 0, 8, 64, reads)) for r in range(0, 48, 8)]
for t in threads: t.start()
for t in threads: t.join()
print(sorted(set(seen)), rasterio.env.get_gdal_config("GDAL_CACHEMAX"))
"""


@pytest.mark.parametrize(("env", "mb"), [((), 48), ((("GDAL_CACHEMAX", "32"),), 32)])
def test_the_block_cache_is_set_once_per_process_in_megabytes(files: dict[str, str], env: tuple, mb: int) -> None:
    """In a fresh process, the first chunk task sizes GDAL's (process-wide) block cache: the client's
    ``geocube.gdal-cachemax`` carried in the graph, or the plan's ``GDAL_CACHEMAX``, in megabytes; tasks
    running at the same time in other threads all see that one value, and it stays after them."""
    import subprocess
    import sys

    tests = Path(__file__).resolve().parent
    code = _FRESH_PROCESS.format(paths=[str(tests), str(tests.parent)], configured=48, path=files["a"], env=env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tests)
    assert out.stdout.split() == [f"[{mb * 2**20}]", str(mb * 2**20)]


def test_a_later_block_cache_setting_changes_nothing(files: dict[str, str], arrays: dict[str, np.ndarray]) -> None:
    grid = grid_on(A_T, 0, 0, 48, 64)
    ctx, reads = chunk_inputs([src(files["a"])], grid)
    compute_chunk(ctx, 0, 0, 48, 64, reads)
    before = rasterio.env.get_gdal_config("GDAL_CACHEMAX")
    got = compute_chunk(replace(ctx, env=(("GDAL_CACHEMAX", "7"),), gdal_cachemax=9), 0, 0, 48, 64, reads)[0]
    assert rasterio.env.get_gdal_config("GDAL_CACHEMAX") == before != 7 * 2**20
    np.testing.assert_array_equal(got, aligned_expected(arrays["a"], 0, 0, 0, 48, 64))
    with rasterio.Env(GDAL_HTTP_TIMEOUT="3"):
        with gdal_settings({"GDAL_HTTP_TIMEOUT": "9"}):
            assert rasterio.env.get_gdal_config("GDAL_HTTP_TIMEOUT") == 9
        assert rasterio.env.get_gdal_config("GDAL_HTTP_TIMEOUT") == 3
        assert rasterio.env.getenv()["GDAL_HTTP_TIMEOUT"] == "3"
    assert rasterio.env.get_gdal_config("GDAL_HTTP_TIMEOUT") is None


def test_the_clients_settings_travel_with_the_graph(files: dict[str, str]) -> None:
    """``geocube.cache-bytes`` and ``geocube.gdal-cachemax`` set on the client reach a process worker,
    whose own dask config does not have them."""
    from distributed import Client, LocalCluster

    plan = make_plan([[src(files["u32"])]], grid_around(files["u32"], "EPSG:32631", 12.0, 60.0),
                     dformat=VAR, bands=BANDS, resampling="bilinear")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        with dask.config.set({"geocube.cache-bytes": 123457, "geocube.gdal-cachemax": 41}):
            cube = cube_from_plan(plan)
        cube.compute()

        def seen() -> tuple[int, object, object]:
            import dask.config as worker_config

            return (setups_module.setup_cache.max_bytes, rasterio.env.get_gdal_config("GDAL_CACHEMAX"),
                    worker_config.get("geocube.cache-bytes", None))

        assert list(client.run(seen).values()) == [(123457, 41 * 2**20, None)]
