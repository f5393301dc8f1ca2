"""The compiled kernels: against GDAL (as test_kernels.py checks the numpy Resampler), and bit for bit
against the numpy path they replace (Resampler, then map, cast and paint), so that no value changes."""

from __future__ import annotations

import numpy as np
import pytest

from geocube_dask.entities import DFormat
from geocube_dask.graph.chunk import _cast_arg, _mapping_arg, _nodata_arg, _paint
from geocube_dask.graph.grid import GridSpec
from geocube_dask.graph.kernels import Resampler, compiled
from geocube_dask.graph.kernels.weights import _filter_init, _radius
from geocube_dask.graph.mapping import Mapping, valid_mask
from geocube_dask.graph.warp import DENSE, LATTICE_NODES, SEPARABLE, LevelGrid, chunk_coords, chunk_positions

from .test_kernels import (
    CASES,
    NODATA,
    assert_agree,
    blobs,
    centres,
    float_source,
    gdal,
    output_shape,
    typed_source,
)

METHODS = ("bilinear", "cubic", "cubicspline")
KERNELS = {"bilinear": compiled.K_BILINEAR, "cubic": compiled.K_CUBIC, "cubicspline": compiled.K_BSPLINE}
IDENTITY = Mapping(0.0, 1.0, 0.0, 1.0)
EMPTY1, EMPTY2 = np.empty(0), np.empty((0, 0))


def kernel_args(method: str, xres: float, yres: float) -> tuple[int, int, int, int, int, float, float, int, int]:
    """(kind, kernel, kx, ky, …) as the chunk's set-up chooses them for source pixels per output pixel."""
    gx, gy = 1.0 / xres, 1.0 / yres
    if gx >= 0.95 and gy >= 0.95 and method != "cubicspline":
        kind = compiled.BILINEAR4 if method == "bilinear" else compiled.CUBIC4
        return kind, 0, 2, 2, gx, gy, 0, 0
    rx, ry = _radius(method, gx), _radius(method, gy)
    ix, iy = _filter_init(method, rx), _filter_init(method, ry)
    return compiled.GENERAL, KERNELS[method], rx - ix + 1, ry - iy + 1, gx, gy, ix, iy


def paint_dense(src: np.ndarray, nodata: float | None, method: str, sx: np.ndarray, sy: np.ndarray, xres: float,
                yres: float, out: np.ndarray, mapping: Mapping = IDENTITY, origin: tuple[int, int] = (0, 0)) -> None:
    nd, has = _nodata_arg(src.dtype, nodata)
    kind, kernel, kx, ky, gx, gy, ix, iy = kernel_args(method, xres, yres)
    fmt = DFormat(out.dtype.name, 0, 0, 1)
    compiled.paint_interp(src, nd, has, kind, kernel, kx, ky, gx, gy, ix, iy, DENSE, EMPTY1, EMPTY1, EMPTY2,
                          EMPTY2, (0, 0, 0, 0, 16), np.ascontiguousarray(sx), np.ascontiguousarray(sy),
                          float(origin[1]), float(origin[0]), out, _mapping_arg(mapping), _cast_arg(fmt))


def compiled_values(src: np.ndarray, nodata: float | None, method: str, x0: float, y0: float, xres: float,
                    yres: float, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    sx, sy = centres(x0, y0, xres, yres, shape)
    out = np.full((src.shape[0], *shape), np.nan)
    paint_dense(src, nodata, method, sx, sy, xres, yres, out)
    return out, ~np.isnan(out)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("xres", "yres", "x0", "y0"), CASES)
def test_float_source_with_nodata_agrees_with_gdal(method: str, xres: float, yres: float, x0: float,
                                                     y0: float) -> None:
    src = float_source((27, 33), seed=int(xres * 1000 + yres * 100))
    shape = output_shape((27, 33), xres, yres)
    assert_agree(compiled_values(src, NODATA, method, x0, y0, xres, yres, shape),
                 gdal(src, method, x0, y0, xres, yres, shape, NODATA))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "int32", "float32"])
def test_every_source_type_agrees_with_gdal(method: str, dtype: str) -> None:
    """One band: GDAL's reproject of several bands with a nodata value would use one mask for all."""
    src, nodata = typed_source(dtype)
    for xres, yres, x0, y0 in [(1.0, 1.0, 0.25, -0.5), (2.0, 2.0, -0.625, 0.375), (0.625, 0.625, -0.75, 0.25),
                               (1.25, 1.25, -0.875, -0.25)]:
        shape = output_shape((24, 30), xres, yres)
        assert_agree(compiled_values(src, nodata, method, x0, y0, xres, yres, shape),
                     gdal(src, method, x0, y0, xres, yres, shape, nodata))


@pytest.mark.parametrize("layout", ["dense", "separable"])
@pytest.mark.parametrize("seed", range(30))
def test_same_bits_as_the_numpy_path(seed: int, layout: str) -> None:
    """Random source types, nodata, scales, offsets, windows, mappings and variable types: the compiled
    kernel paints exactly what Resampler + map + cast + paint paint, over a chunk already holding values;
    from dense positions (a reprojection's) or separable ones (a grid's, which the general kernel sums in
    two passes)."""
    rng = np.random.default_rng(seed)
    src_dtype = str(rng.choice(["uint16", "int16", "float32", "float64"]))
    h, w = int(rng.integers(2, 40)), int(rng.integers(2, 40))
    if src_dtype in ("uint16", "int16"):
        src = rng.integers(-5 if src_dtype == "int16" else 0, 10000, (3, h, w)).astype(src_dtype)
        nodata = float(rng.choice([0.0, -5.0])) if src_dtype == "int16" else 0.0
    else:
        src = (rng.random((3, h, w)) * 500 - 50).astype(src_dtype)
        nodata = float(rng.choice([-9999.0, np.nan]))
        src[:, rng.random((h, w)) < 0.02] = np.nan
    for b in range(3):
        src[b][blobs((h, w), seed + b, frac=float(rng.random() * 0.05))] = 0 if np.isnan(nodata) else nodata
    if rng.random() < 0.2:
        nodata = None  # no nodata: every value but NaN is valid
    scales = [0.375, 0.625, 0.97, 1.0, 1.03125, 1.25, 1.3, 2.0, 2.5, 3.7]
    xres = float(rng.choice(scales))
    yres = xres if rng.random() < 0.6 else float(rng.choice(scales))
    x0, y0 = (float(v) for v in rng.uniform(-3, 3, 2))
    shape = output_shape((h, w), xres, yres)
    sx, sy = centres(x0, y0, xres, yres, shape)
    if layout == "dense":
        sx += rng.normal(0, 0.01, shape)  # not a plain grid: a reprojection's positions
        sy += rng.normal(0, 0.01, shape)
        sx[rng.random(shape) < 0.01] = np.nan
    out_dtype = str(rng.choice(["uint16", "int16", "float32", "float64"]))
    mapping = IDENTITY if rng.random() < 0.3 else Mapping(
        0.0, 10000.0, float(rng.uniform(-2, 0)), float(rng.uniform(1, 3)), float(rng.choice([1.0, 0.5, 2.2])))
    fmt = DFormat(out_dtype, 0, 0, 1)
    method = str(rng.choice(METHODS))
    start = rng.integers(0, 100, (3, *shape)).astype(out_dtype)
    theirs = start.copy()
    values, ok = Resampler(sx, sy, method, xres, yres, (h, w))(src, valid_mask(src, nodata))
    _paint(theirs, values, ok, mapping, fmt)
    mine = start.copy()
    nd, has = _nodata_arg(src.dtype, nodata)
    kind, kernel, kx, ky, gx, gy, ix, iy = kernel_args(method, xres, yres)
    if layout == "dense":
        positions = (DENSE, EMPTY1, EMPTY1, EMPTY2, EMPTY2, (0, 0, 0, 0, 16), sx, sy)
    else:
        positions = (SEPARABLE, sx[0].copy(), sy[:, 0].copy(), EMPTY2, EMPTY2, (0, 0, 0, 0, 16), EMPTY2, EMPTY2)
    compiled.paint_interp(src, nd, has, kind, kernel, kx, ky, gx, gy, ix, iy, *positions, 0.0, 0.0, mine,
                          _mapping_arg(mapping), _cast_arg(fmt))
    assert (mine != start).any()
    np.testing.assert_array_equal(mine, theirs)


def test_positions_are_chunk_coords() -> None:
    """The compact positions expand (in numpy and pixel by pixel in the kernel) to chunk_coords' values."""
    grid = GridSpec("EPSG:32631", (20.0, 0.0, 699960.0, 0.0, -20.0, 5060040.0), 300, 260)
    lg = LevelGrid("EPSG:32632", (20.0, 0.0, 232000.0, 0.0, -20.0, 5063500.0), 400, 400, 0)
    row0, col0, h, w = 37, 53, 120, 133
    pos = chunk_positions(grid, row0, col0, h, w, lg)
    assert pos.layout == LATTICE_NODES
    sx, sy = chunk_coords(grid, row0, col0, h, w, lg, exact_edges=False)
    ax, ay = pos.arrays()
    np.testing.assert_array_equal(ax, sx)
    np.testing.assert_array_equal(ay, sy)
    src = np.random.default_rng(1).integers(1, 10000, (2, 400, 400)).astype("uint16")
    for method in METHODS:
        dense = np.zeros((2, h, w), dtype="uint16")
        paint_dense(src, 0.0, method, sx, sy, 1.0, 1.0, dense)
        lattice = np.zeros((2, h, w), dtype="uint16")
        kind, kernel, kx, ky, gx, gy, ix, iy = kernel_args(method, 1.0, 1.0)
        compiled.paint_interp(src, 0.0, True, kind, kernel, kx, ky, gx, gy, ix, iy, pos.layout, pos.sep_x, pos.sep_y,
                              pos.nodes_x, pos.nodes_y, pos.lattice, pos.dense_x, pos.dense_y, 0.0, 0.0, lattice,
                              _mapping_arg(IDENTITY), _cast_arg(DFormat("uint16", 0, 0, 1)))
        assert (lattice != 0).mean() > 0.9
        np.testing.assert_array_equal(lattice, dense)


def test_near_gather_paints_valid_values_inside() -> None:
    """paint_near against plain indexing: only inside points and valid values, mapped and cast."""
    rng = np.random.default_rng(3)
    src = rng.integers(0, 1000, (2, 9, 11)).astype("uint16")
    src[:, 2:4, 3:6] = 0
    index = rng.integers(0, 99, 6 * 7).astype(np.int32)
    inside = rng.random(6 * 7) < 0.8
    mapping = Mapping(0.0, 1000.0, 0.0, 1.0)
    out = np.full((2, 6, 7), np.nan, dtype="float32")
    compiled.paint_near(src, index, inside, 0.0, True, out, False, _mapping_arg(mapping),
                        _cast_arg(DFormat("float32", np.nan, 0, 1)))
    want = np.full((2, 6 * 7), np.nan, dtype="float32")
    for b in range(2):
        for p in range(6 * 7):
            v = src[b].ravel()[index[p]]
            if inside[p] and v != 0:
                want[b, p] = np.float32(v / 1000.0)
    np.testing.assert_array_equal(out.reshape(2, -1), want)


def test_near_from_positions_picks_the_pixels_of_exact_coordinates() -> None:
    """paint_near_positions (lattice positions plus the exact exceptions near pixel edges) paints what the
    gather of chunk_coords(exact_edges=True) paints: the pixels an exact per-pixel transform picks."""
    from geocube_dask.graph.setups import gather_setup, near_setup

    grid = GridSpec("EPSG:32631", (7.0, 0.0, 699960.0, 0.0, -7.0, 5060040.0), 700, 700)
    lg = LevelGrid("EPSG:32632", (10.0, 0.0, 232000.0, 0.0, -10.0, 5063500.0), 800, 800, 0)
    row0, col0, h, w = 50, 40, 600, 640
    near = near_setup(grid, row0, col0, h, w, lg)
    assert near is not None and near.fix_index.size > 0  # some points lie near a source pixel edge
    sx, sy = chunk_coords(grid, row0, col0, h, w, lg, exact_edges=True)
    gather = gather_setup(sx, sy, lg)
    assert gather is not None and gather.window == near.window
    r0, c0, hh, ww = near.window
    src = np.random.default_rng(2).integers(0, 10000, (2, hh, ww)).astype("uint16")
    mine = np.full((2, h, w), 7, dtype="uint16")
    theirs = mine.copy()
    pos = near.positions
    fmt = DFormat("uint16", 0, 0, 1)
    compiled.paint_near_positions(src, pos.layout, pos.sep_x, pos.sep_y, pos.nodes_x, pos.nodes_y, pos.lattice,
                                  near.fix_index, near.fix_x, near.fix_y, lg.width, lg.height, c0, r0, 0.0, True,
                                  mine, True, _mapping_arg(IDENTITY), _cast_arg(fmt))
    inside = gather.inside if gather.inside is not None else np.zeros(0, dtype=bool)
    compiled.paint_near(src, gather.index, inside, 0.0, True, theirs, True, _mapping_arg(IDENTITY), _cast_arg(fmt))
    assert (mine != 7).mean() > 0.9
    np.testing.assert_array_equal(mine, theirs)
    # the exceptions are applied at their pixels, and only there: moved one source pixel, they change
    # exactly those pixels (where still inside)
    moved = np.full((2, h, w), 7, dtype="uint16")
    compiled.paint_near_positions(src, pos.layout, pos.sep_x, pos.sep_y, pos.nodes_x, pos.nodes_y, pos.lattice,
                                  near.fix_index, near.fix_x + 1.0, near.fix_y, lg.width, lg.height, c0, r0, 0.0,
                                  True, moved, True, _mapping_arg(IDENTITY), _cast_arg(fmt))
    changed = np.flatnonzero((moved != mine).any(axis=0).ravel())
    assert changed.size > 0 and set(changed) <= set(near.fix_index.tolist())


@pytest.mark.parametrize("direct", [True, False])
def test_near_from_separable_positions_picks_the_pixels_of_exact_coordinates(direct: bool) -> None:
    """On separable positions (a grid in the source's CRS) paint_near_positions paints what the gather of
    exact coordinates paints, values copied or mapped and cast; the grid reaches past the level's edges."""
    from geocube_dask.graph.setups import gather_setup, near_setup

    grid = GridSpec("EPSG:32631", (25.0, 0.0, 599000.0 + 7.3, 0.0, -25.0, 5000500.0 - 3.1), 400, 380)
    lg = LevelGrid("EPSG:32631", (20.0, 0.0, 600000.0, 0.0, -20.0, 5000000.0), 300, 320, 1)
    near = near_setup(grid, 0, 0, 380, 400, lg)
    assert near is not None and near.positions.layout == SEPARABLE and near.fix_index.size == 0
    sx, sy = chunk_coords(grid, 0, 0, 380, 400, lg, exact_edges=True)
    gather = gather_setup(sx, sy, lg)
    assert gather is not None and gather.window == near.window
    r0, c0, hh, ww = near.window
    src = np.random.default_rng(3).integers(0, 10000, (3, hh, ww)).astype("uint16")
    src[:, ::7, ::5] = 0  # nodata
    mapping = IDENTITY if direct else Mapping(0.0, 10000.0, -1.0, 1.0, 1.0)
    fmt = DFormat("uint16", 0, 0, 1) if direct else DFormat("float32", float("nan"), -1, 1)
    mine = np.full((3, 380, 400), 7, dtype=fmt.dtype)
    theirs = mine.copy()
    pos = near.positions
    compiled.paint_near_positions(src, pos.layout, pos.sep_x, pos.sep_y, pos.nodes_x, pos.nodes_y, pos.lattice,
                                  near.fix_index, near.fix_x, near.fix_y, lg.width, lg.height, c0, r0, 0.0, True,
                                  mine, direct, _mapping_arg(mapping), _cast_arg(fmt))
    inside = gather.inside if gather.inside is not None else np.zeros(0, dtype=bool)
    compiled.paint_near(src, gather.index, inside, 0.0, True, theirs, direct, _mapping_arg(mapping), _cast_arg(fmt))
    assert 0.3 < (mine != 7).mean() < 0.95  # painted where inside and valid only
    np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("band", [1e-3, 0.05])
def test_near_scan_finds_the_points_near_pixel_edges_and_the_pixels_of_the_others(band: float) -> None:
    """near_scan over lattice positions gives, as plain numpy on the expanded coordinates does, the
    row-major indices of the points within ``band`` of a source pixel edge, and the span of the pixels
    containing the other points inside the level (a level smaller than the window: some points fall out)."""
    grid = GridSpec("EPSG:32631", (7.0, 0.0, 699960.0, 0.0, -7.0, 5060040.0), 700, 700)
    lg = LevelGrid("EPSG:32632", (10.0, 0.0, 232000.0, 0.0, -10.0, 5063500.0), 300, 250, 0)
    row0, col0, h, w = 50, 40, 600, 640
    pos = chunk_positions(grid, row0, col0, h, w, lg)
    assert pos.layout == LATTICE_NODES
    sx, sy = pos.arrays()
    near = (np.abs(sx - np.round(sx)) < band) | (np.abs(sy - np.round(sy)) < band)
    fx, fy = np.floor(sx + 1e-10), np.floor(sy + 1e-10)
    inside = ~near & (sx >= 0) & (fx < lg.width) & (sy >= 0) & (fy < lg.height)
    assert 0 < inside.mean() < 0.9 and near.any()
    fix, found, x0, x1, y0, y1 = compiled.near_scan(pos.nodes_x, pos.nodes_y, pos.lattice, h, w, band, lg.width,
                                                    lg.height)
    np.testing.assert_array_equal(fix, np.flatnonzero(near.ravel()))
    assert found
    assert (x0, x1, y0, y1) == (fx[inside].min(), fx[inside].max(), fy[inside].min(), fy[inside].max())
