"""Resampling set-ups: where a chunk's output pixels fall in a source level, computed once per (output
chunk, source grid, method) and kept in a byte-bounded cache shared by a process's threads, so that the
other dates of the same tile reuse them.

* ``near``: :class:`Near` (compact positions; the compiled kernel finds each pixel on the fly, with the
  points near a source pixel edge transformed exactly) or, where the positions have no compact form, a
  :class:`Gather` (flat indices into the source window);
* ``bilinear``, ``cubic``, ``cubicspline``: :class:`Interp`, the compiled interpolation's parameters;
* the other methods (and the cases where GDAL takes the nearest pixel instead): :class:`Kernel`, the
  numpy :class:`~geocube_dask.graph.kernels.Resampler`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..projection import same_crs
from .grid import GridSpec
from .kernels import Resampler, compiled, corner_footprints, kernel_margin
from .kernels.weights import _FOUR_SAMPLE_MIN_SCALE, _filter_init, _gdal_scale, _is_pixel_translation, _radius
from .lru import ByteLRU
from .warp import (
    DENSE,
    SEPARABLE,
    LevelGrid,
    Positions,
    chunk_coords,
    chunk_positions,
    lattice_edge_band,
    source_pixel_coords,
)

# nearest picks the pixel containing the point; a point on a pixel edge goes to the right/lower pixel.
# The epsilon absorbs floating point noise in the coordinates, exactly as GDAL's warper does: a point
# is inside when 0 <= x and x + eps < width, and its pixel is floor(x + eps).
NEAREST_EPS = 1e-10
# resampling set-ups a process keeps, in bytes, unless configured (see cache_budget)
DEFAULT_CACHE_BYTES = 256 * 2**20
# methods that weigh the source pixels under an output pixel's footprint (GDAL's GWKAverageOrMode)
AREA_METHODS = frozenset({"average", "mode", "min", "max", "med", "q1", "q3"})
# methods the compiled kernel computes (the others go through the numpy Resampler)
COMPILED_METHODS = frozenset({"bilinear", "cubic", "cubicspline"})


def cache_budget(configured: int | str | None = None) -> int:
    """Bytes of resampling set-ups a process keeps: ``configured`` (captured from the client's
    ``geocube.cache-bytes`` when the graph was built), else this process's ``geocube.cache-bytes``, else a
    quarter of a distributed worker's memory limit, else 256 MiB."""
    import dask.config
    from dask.utils import parse_bytes

    if configured is None:
        configured = dask.config.get("geocube.cache-bytes", None)
    if configured is not None:
        return int(parse_bytes(configured) if isinstance(configured, str) else configured)
    limit = None
    if "distributed" in sys.modules:  # else no worker runs here (and importing it takes a fifth of a second)
        try:
            from distributed import get_worker

            limit = get_worker().memory_manager.memory_limit
        except (ImportError, ValueError, AttributeError):
            pass
    if limit:
        return int(limit // 4)
    return DEFAULT_CACHE_BYTES


class SetupCache(ByteLRU):
    """The resampling set-ups of a process, by (chunk, source grid, method); its budget is
    :func:`cache_budget`'s unless given."""

    def put(self, key: tuple[Any, ...], value: Any, nbytes: int, budget: int | None = None) -> None:
        super().put(key, value, nbytes, cache_budget() if budget is None else budget)


setup_cache = SetupCache(DEFAULT_CACHE_BYTES)


def clear_setups() -> None:
    """Forget this process's resampling set-ups."""
    setup_cache.clear()


@dataclass(frozen=True)
class Gather:
    """Nearest-neighbour set-up: source window and flat indices of the chunk's pixels in it."""

    window: tuple[int, int, int, int]  # row0, col0, height, width in the level grid
    index: np.ndarray  # flat index into the window, per output pixel (h*w,)
    inside: np.ndarray | None  # bool (h*w,) where the point falls in the source; None = all


@dataclass(frozen=True)
class Kernel:
    window: tuple[int, int, int, int]
    resampler: Any  # kernels.Resampler


@dataclass(frozen=True, eq=False)
class Interp:
    """Set-up of the compiled interpolation (kernels.compiled.paint_interp): the source window, the
    window's compact source positions and the kernel's parameters; nothing per pixel beyond the positions'
    compact form, so that caching it for the other dates costs little memory."""

    window: tuple[int, int, int, int]  # row0, col0, height, width in the level grid
    positions: Positions
    kind: int  # compiled.BILINEAR4, CUBIC4 or GENERAL
    kernel: int  # compiled.K_* (GENERAL)
    taps: tuple[int, int]  # taps along x and y (GENERAL)
    gdal_scale: tuple[float, float]  # output pixels per source pixel, along x and y
    init: tuple[int, int]  # first tap offset along x and y (GENERAL)

    @property
    def nbytes(self) -> int:
        return self.positions.nbytes + 256


def resampling_setup(grid: GridSpec, lg: LevelGrid, method: str, scale: tuple[float, float], row0: int, col0: int,
                     h: int, w: int, cache_bytes: int | str | None = None) -> Gather | Kernel | Interp | Near | None:
    """The set-up of ``method`` for output window (row0, col0, h, w) of ``grid`` over source level ``lg``
    (``scale``: source pixels per output pixel), from the cache or computed and cached (``cache_bytes``:
    the budget as :func:`cache_budget` reads it); None when no output pixel falls in the level."""
    key = (grid, row0, col0, h, w, lg, method, scale)
    found = setup_cache.get(key)
    if found is not None:
        return found if found != "empty" else None
    setup: Gather | Kernel | Interp | Near | None
    if method in COMPILED_METHODS:
        setup = interp_setup(grid, row0, col0, h, w, lg, method, scale)
    elif method == "near":
        setup = near_setup(grid, row0, col0, h, w, lg)
    else:
        sx, sy = chunk_coords(grid, row0, col0, h, w, lg, exact_edges=False)
        corners = _corner_coords(grid, row0, col0, h, w, lg) if method in AREA_METHODS else None
        setup = kernel_setup(sx, sy, lg, method, scale, corners)
    if setup is None:
        setup_cache.put(key, "empty", 64, cache_budget(cache_bytes))
        return None
    if isinstance(setup, Gather):
        nbytes = setup.index.nbytes + (setup.inside.nbytes if setup.inside is not None else 0)
    elif isinstance(setup, Interp | Near):
        nbytes = setup.nbytes
    else:
        nbytes = setup.resampler.nbytes
    setup_cache.put(key, setup, nbytes, cache_budget(cache_bytes))
    return setup


def interp_setup(grid: GridSpec, row0: int, col0: int, h: int, w: int, lg: LevelGrid, method: str,
                  scale: tuple[float, float]) -> Interp | Kernel | None:
    """The compiled kernel's set-up, or the numpy Resampler's where GDAL takes the nearest pixel instead
    (a source window one pixel wide or high, a whole-pixel translation at scale 1)."""
    pos = chunk_positions(grid, row0, col0, h, w, lg)
    found, x0, x1, y0, y1 = compiled.position_bounds(pos.layout, pos.sep_x, pos.sep_y, pos.nodes_x, pos.nodes_y,
                                                     pos.lattice, pos.dense_x, pos.dense_y, h, w)
    if not found:
        return None
    mx, my = kernel_margin(method, scale[0], scale[1])
    c0, c1 = max(0, x0 - mx), min(lg.width, x1 + mx + 1)
    r0, r1 = max(0, y0 - my), min(lg.height, y1 + my + 1)
    if c1 <= c0 or r1 <= r0:
        return None
    window = (r0, c0, r1 - r0, c1 - c0)
    translation = False
    if scale[0] == 1.0 and scale[1] == 1.0:  # what _is_pixel_translation tests first (and cheaply)
        sx, sy = pos.arrays()
        translation = _is_pixel_translation(sx - c0, sy - r0, np.isfinite(sx) & np.isfinite(sy), 1.0, 1.0)
    if r1 - r0 == 1 or c1 - c0 == 1 or translation:
        sx, sy = pos.arrays()
        return kernel_setup(np.asarray(sx), np.asarray(sy), lg, method, scale)
    gx, gy = _gdal_scale(scale[0]), _gdal_scale(scale[1])
    four = gx >= _FOUR_SAMPLE_MIN_SCALE and gy >= _FOUR_SAMPLE_MIN_SCALE
    if four and method in ("bilinear", "cubic"):
        kind = compiled.BILINEAR4 if method == "bilinear" else compiled.CUBIC4
        return Interp(window, pos, kind, 0, (2, 2), (gx, gy), (0, 0))
    rx, ry = _radius(method, gx), _radius(method, gy)
    ix, iy = _filter_init(method, rx), _filter_init(method, ry)
    kernel = {"bilinear": compiled.K_BILINEAR, "cubic": compiled.K_CUBIC, "cubicspline": compiled.K_BSPLINE}[method]
    return Interp(window, pos, compiled.GENERAL, kernel, (rx - ix + 1, ry - iy + 1), (gx, gy), (ix, iy))


@dataclass(frozen=True, eq=False)
class Near:
    """Nearest-neighbour set-up of the compiled kernel (kernels.compiled.paint_near_positions): the source
    window, the compact positions and the few pixels whose coordinates were made exact (near a source
    pixel edge); the pixel containing each point is found on the fly, so nothing per pixel is kept."""

    window: tuple[int, int, int, int]  # row0, col0, height, width in the level grid
    positions: Positions
    fix_index: np.ndarray
    fix_x: np.ndarray
    fix_y: np.ndarray
    level_size: tuple[int, int]  # width, height of the level grid

    @property
    def nbytes(self) -> int:
        return self.positions.nbytes + self.fix_index.nbytes + self.fix_x.nbytes + self.fix_y.nbytes + 256


def near_setup(grid: GridSpec, row0: int, col0: int, h: int, w: int, lg: LevelGrid) -> Near | Gather | None:
    """The compiled nearest set-up; a gather index where the positions have no compact form. Nothing per
    pixel is expanded here: separable positions are bounded axis by axis, lattice positions scanned by
    the compiled kernel, which also finds the points near a source pixel edge (transformed exactly)."""
    pos = chunk_positions(grid, row0, col0, h, w, lg)
    if pos.layout == DENSE:
        return gather_setup(pos.dense_x, pos.dense_y, lg)
    fix_index, fix_x, fix_y = np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    if pos.layout == SEPARABLE:
        xs, ys = _axis_span(pos.sep_x, lg.width), _axis_span(pos.sep_y, lg.height)
        spans = None if xs is None or ys is None else (xs, ys)
    else:
        band = lattice_edge_band(grid, lg, pos)
        fix_index, found, x0, x1, y0, y1 = compiled.near_scan(pos.nodes_x, pos.nodes_y, pos.lattice, h, w, band,
                                                              lg.width, lg.height)
        rr, cc = np.divmod(fix_index, w)
        fix_x, fix_y = source_pixel_coords(grid, cc + col0 + 0.5, rr + row0 + 0.5, lg)
        fx, fy, inside = _level_pixels(fix_x, fix_y, lg)
        xs_all = np.concatenate([fx[inside], [x0, x1] if found else []])
        ys_all = np.concatenate([fy[inside], [y0, y1] if found else []])
        spans = None if xs_all.size == 0 else ((int(xs_all.min()), int(xs_all.max()) + 1),
                                               (int(ys_all.min()), int(ys_all.max()) + 1))
    if spans is None:
        return None
    (c0, c1), (r0, r1) = spans
    return Near((r0, c0, r1 - r0, c1 - c0), pos, fix_index, fix_x, fix_y, (lg.width, lg.height))


def _containing(s: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Along one axis, the pixel containing each coordinate of ``s`` and whether the point is inside
    [0, size): the rule of the compiled kernels (``floor(x + eps)``, inside when ``0 <= x``)."""
    with np.errstate(invalid="ignore"):
        f = np.floor(s + NEAREST_EPS)
        return f, (s >= 0) & (f < size)


def _axis_span(s: np.ndarray, size: int) -> tuple[int, int] | None:
    """(first, last + 1) of the pixels containing the coordinates ``s`` that are inside [0, size) along one
    axis, or None."""
    f, inside = _containing(s, size)
    if not inside.any():
        return None
    return int(f[inside].min()), int(f[inside].max()) + 1


def _level_pixels(sx: np.ndarray, sy: np.ndarray, lg: LevelGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The columns and rows of the pixels containing the points (sx, sy), and whether each point is inside
    the level."""
    (fx, in_x), (fy, in_y) = _containing(sx, lg.width), _containing(sy, lg.height)
    return fx, fy, in_x & in_y


def _gather_bounds(sx: np.ndarray, sy: np.ndarray, lg: LevelGrid
                   ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray, np.ndarray] | None:
    """((row0, col0, row1, col1) of the source pixels containing the points inside the level, their
    columns, rows and where the points are inside), or None when no point is inside."""
    fx, fy, inside = _level_pixels(sx, sy, lg)
    all_in = bool(inside.all())
    if not all_in and not inside.any():
        return None
    where = {} if all_in else {"where": inside}
    c0 = int(np.min(fx, initial=np.inf, **where))
    c1 = int(np.max(fx, initial=-np.inf, **where)) + 1
    r0 = int(np.min(fy, initial=np.inf, **where))
    r1 = int(np.max(fy, initial=-np.inf, **where)) + 1
    return (r0, c0, r1, c1), fx, fy, inside


def gather_setup(sx: np.ndarray, sy: np.ndarray, lg: LevelGrid) -> Gather | None:
    found = _gather_bounds(sx, sy, lg)
    if found is None:
        return None
    (r0, c0, r1, c1), fx, fy, inside = found
    all_in = bool(inside.all())
    ww = c1 - c0
    # pixel indices are whole numbers far below 2**53: exact in float64, cast once
    index = (fy - r0) * ww + (fx - c0)
    if not all_in:
        index[~inside] = 0
    itype = np.int32 if (r1 - r0) * ww < 2**31 else np.int64
    return Gather((r0, c0, r1 - r0, ww), index.astype(itype).ravel(), None if all_in else inside.ravel())


def _corner_coords(grid: GridSpec, row0: int, col0: int, h: int, w: int, lg: LevelGrid
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """Source coordinates (H+1, W+1) of the corners of a window's output pixels, or None when the grids
    are axis-aligned in one CRS (the footprint is then the box of the scale around the centre). The
    corners are the pixel centres of the grid shifted by half a pixel, so that every chunking computes
    the same corner coordinates for a pixel."""
    g = grid.transform
    if same_crs(grid.crs, lg.crs) and lg.transform[1] == 0 and lg.transform[3] == 0:
        return None
    a, _, c, _, e, f = g
    corners = replace(grid, transform=(a, 0.0, c - 0.5 * a, 0.0, e, f - 0.5 * e), width=grid.width + 1,
                      height=grid.height + 1)
    return chunk_coords(corners, row0, col0, h + 1, w + 1, lg, exact_edges=True)  # which pixels: exact


def kernel_setup(
    sx: np.ndarray, sy: np.ndarray, lg: LevelGrid, method: str, scale: tuple[float, float],
    corners: tuple[np.ndarray, np.ndarray] | None = None,
) -> Kernel | None:
    finite = np.isfinite(sx) & np.isfinite(sy)
    if not finite.any():
        return None
    if corners is not None:  # area methods across CRSs: the footprint of the pixel's corners, as GDAL
        xlo, xhi, ylo, yhi = corner_footprints(*corners)
        ok = finite & np.isfinite(xlo) & np.isfinite(xhi) & np.isfinite(ylo) & np.isfinite(yhi)
        if not ok.any():
            return None
        c0 = max(0, int(np.floor(xlo[ok].min())) - 1)
        c1 = min(lg.width, int(np.ceil(xhi[ok].max())) + 1)
        r0 = max(0, int(np.floor(ylo[ok].min())) - 1)
        r1 = min(lg.height, int(np.ceil(yhi[ok].max())) + 1)
        if c1 <= c0 or r1 <= r0:
            return None
        sx = np.where(ok, sx, np.nan)
        footprints = (xlo - c0, xhi - c0, ylo - r0, yhi - r0)
        res = Resampler(np.ascontiguousarray(sx - c0), np.ascontiguousarray(sy - r0), method, scale[0], scale[1],
                        (r1 - r0, c1 - c0), footprints)
        return Kernel((r0, c0, r1 - r0, c1 - c0), res)
    mx, my = kernel_margin(method, scale[0], scale[1])
    fx = np.floor(sx[finite])
    fy = np.floor(sy[finite])
    c0 = max(0, int(fx.min()) - mx)
    c1 = min(lg.width, int(fx.max()) + mx + 1)
    r0 = max(0, int(fy.min()) - my)
    r1 = min(lg.height, int(fy.max()) + my + 1)
    if c1 <= c0 or r1 <= r0:
        return None
    res = Resampler(np.ascontiguousarray(sx - c0), np.ascontiguousarray(sy - r0), method,
                    scale[0], scale[1], (r1 - r0, c1 - c0))
    return Kernel((r0, c0, r1 - r0, c1 - c0), res)
