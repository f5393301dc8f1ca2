"""Computing one output chunk (one image × all bands × one spatial tile): read, resample, map, paint.

Sources are painted in order; a later valid pixel overwrites an earlier one; nodata never
overwrites; pixels no source covers keep the variable's nodata. Per source:

* aligned grids (same CRS and pixel size, integer offset — e.g. a 10 m tile's ×2 overview under a
  20 m output; for ``near`` any offset that puts no pixel centre on a source pixel edge, a whole-pixel
  translation) are read directly, no resampling;
* otherwise the source coordinates of the chunk's pixel centres are set up once per (source grid,
  chunk) in a compact form (one coordinate per column and row in the source's CRS; across CRSs a
  lattice of exact transforms, with the points near a source pixel edge transformed exactly for
  ``near``) and cached for the other dates of the same tile; the compiled kernels
  (:mod:`~geocube_dask.graph.kernels.compiled`) expand them pixel by pixel for ``near``, ``bilinear``,
  ``cubic`` and ``cubicspline``; the other methods go through
  :class:`~geocube_dask.graph.kernels.Resampler`.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..entities import DFormat, dtype_range
from ..errors import InvalidArgument
from ..projection import same_crs
from ..storage import check_block_cache, set_block_cache_once
from .grid import GridSpec
from .kernels import Resampler, compiled, corner_footprints, kernel_margin
from .kernels.weights import _FOUR_SAMPLE_MIN_SCALE, _filter_init, _gdal_scale, _is_pixel_translation, _radius
from .mapping import Mapping, cast, valid_mask
from .plan import Source
from .read import (
    READ_ERRORS,
    Prefetched,
    PrefetchedReader,
    clear_download_cache,
    clear_handle_cache,
    forget_source,
    gdal_settings,
    open_source,
    read_error,
    read_window,
)
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
# an aligned read (same CRS and pixel size, whole-pixel offset) is the identity for every method, as
# in GDAL, which takes the source pixel on whole-pixel translations whatever the resampling
DEFAULT_CACHE_BYTES = 256 * 2**20
# GDAL's block cache per process, in MB, unless configured (measured on bench/cube.py: 32 MB reads as
# fast as 128 MB and keeps ~100 MB less resident)
GDAL_CACHEMAX_MB = 32
# methods that weigh the source pixels under an output pixel's footprint (GDAL's GWKAverageOrMode)
AREA_METHODS = frozenset({"average", "mode", "min", "max", "med", "q1", "q3"})
# a source window read for a chunk holds at most this many times the chunk's own pixels (see _strips);
# scales up to √4 = 2 per axis (the usual overview step) read whole windows
STRIP_RATIO = 4.0
STRIP_MIN_PIXELS = 4096  # strips are never thinner than this many output pixels (per-strip set-up costs)
# methods the compiled kernel computes (the others go through the numpy Resampler)
COMPILED_METHODS = frozenset({"bilinear", "cubic", "cubicspline"})


def gdal_cachemax(configured: int | str | None = None) -> int | str:
    """GDAL block cache for a process that computes chunks (megabytes, or a size as
    :func:`~geocube_dask.storage.block_cache_bytes` reads it): ``configured`` (captured from the client's
    ``geocube.gdal-cachemax`` when the graph was built), else this process's ``geocube.gdal-cachemax``,
    else :data:`GDAL_CACHEMAX_MB`. GDAL's own default (5 % of the machine's memory per process) is more
    than a dask worker's memory limit allows, and chunk tasks gain little from a large cache: each reads
    its source window once (a block shared by two chunks is reused only when the same thread computes
    both), while every block read stays resident until the cache is full. The cache is one per process:
    it is set once, by the first chunk task that runs there
    (:func:`~geocube_dask.storage.set_block_cache_once`). Raises InvalidArgument for a value that is no
    size."""
    import dask.config

    value = configured if configured is not None else dask.config.get("geocube.gdal-cachemax", GDAL_CACHEMAX_MB)
    check_block_cache(value, "geocube.gdal-cachemax")
    return int(value) if str(value).strip().isdigit() else value


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
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
    except (ImportError, ValueError, AttributeError):
        limit = None
    if limit:
        return int(limit // 4)
    return DEFAULT_CACHE_BYTES


def configured_settings() -> tuple[int | str | None, int | str | None]:
    """The client's ``geocube.cache-bytes`` and ``geocube.gdal-cachemax`` (None where unset), captured
    into a graph when it is built so that workers use the client's settings, not their own."""
    import dask.config
    from dask.utils import parse_bytes

    cache_bytes = dask.config.get("geocube.cache-bytes", None)
    if isinstance(cache_bytes, str):
        try:
            parse_bytes(cache_bytes)
        except ValueError:
            raise InvalidArgument(
                f"geocube.cache-bytes={cache_bytes!r} is not a size: give bytes or a size with its unit ('512MiB')"
            ) from None
    cachemax = dask.config.get("geocube.gdal-cachemax", None)
    return cache_bytes, check_block_cache(cachemax, "geocube.gdal-cachemax")  # type: ignore[return-value]


@dataclass(frozen=True)
class ChunkContext:
    """What every chunk task of one cube shares."""

    grid: GridSpec
    dformat: DFormat
    nbands: int
    resampling: str
    env: tuple[tuple[str, str], ...]
    on_error: str
    cache_bytes: int | str | None = None  # the client's geocube.cache-bytes (None: the worker's)
    gdal_cachemax: int | str | None = None  # the client's geocube.gdal-cachemax (None: the worker's)


@dataclass(frozen=True)
class SourceRead:
    """One source as a chunk task reads it: the plan's source plus its read geometry."""

    source: Source
    level: LevelGrid
    scale: tuple[float, float]
    align: tuple[int, int] | None
    mapping: Mapping
    window: tuple[int, int, int, int]  # output rows/cols (row0, col0, row1, col1) the source may touch

    @property
    def direct(self) -> bool:
        """Whether the source is read without resampling."""
        return self.align is not None


class _GatherCache:
    """A byte-bounded LRU of per-(chunk, source grid) resampling set-ups, shared by a process's threads."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.items: OrderedDict[tuple[Any, ...], tuple[Any, int]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> Any:
        with self.lock:
            item = self.items.get(key)
            if item is None:
                return None
            self.items.move_to_end(key)
            return item[0]

    def put(self, key: tuple[Any, ...], value: Any, nbytes: int, budget: int | None = None) -> None:
        self.max_bytes = cache_budget() if budget is None else budget
        with self.lock:
            if key in self.items:
                return
            self.items[key] = (value, nbytes)
            self.bytes += nbytes
            while self.bytes > self.max_bytes and len(self.items) > 1:
                _, (_, n) = self.items.popitem(last=False)
                self.bytes -= n


    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.bytes = 0


_cache = _GatherCache(DEFAULT_CACHE_BYTES)


def clear_caches(client: Any = None) -> None:
    """Forget this process's resampling set-ups, close its open datasets (every thread closes its own on
    its next read) and forget what GDAL downloaded from remote storage, so that a remote object rewritten
    under the same name is read anew. With a ``distributed.Client``, do the same in every worker too."""
    _cache.clear()
    clear_handle_cache()
    clear_download_cache()
    if client is not None:
        client.run(clear_caches)


@dataclass(frozen=True)
class _Gather:
    """Nearest-neighbour set-up: source window and flat indices of the chunk's pixels in it."""

    window: tuple[int, int, int, int]  # row0, col0, height, width in the level grid
    index: np.ndarray  # flat index into the window, per output pixel (h*w,)
    inside: np.ndarray | None  # bool (h*w,) where the point falls in the source; None = all


@dataclass(frozen=True)
class _Kernel:
    window: tuple[int, int, int, int]
    resampler: Any  # kernels.Resampler


@dataclass(frozen=True, eq=False)
class _Interp:
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


def _setup(ctx: ChunkContext, sr: SourceRead, row0: int, col0: int, h: int, w: int
           ) -> _Gather | _Kernel | _Interp | _Near | None:
    lg = sr.level
    method = ctx.resampling
    key = (ctx.grid, row0, col0, h, w, lg, method, sr.scale)
    found = _cache.get(key)
    if found is not None:
        return found if found != "empty" else None
    setup: _Gather | _Kernel | _Interp | _Near | None
    if method in COMPILED_METHODS:
        setup = _interp_setup(ctx.grid, row0, col0, h, w, lg, method, sr.scale)
    elif method == "near":
        setup = _near_setup(ctx.grid, row0, col0, h, w, lg)
    else:
        sx, sy = chunk_coords(ctx.grid, row0, col0, h, w, lg, exact_edges=False)
        corners = _corner_coords(ctx.grid, row0, col0, h, w, lg) if method in AREA_METHODS else None
        setup = _kernel_setup(sx, sy, lg, method, sr.scale, corners)
    if setup is None:
        _cache.put(key, "empty", 64, cache_budget(ctx.cache_bytes))
        return None
    if isinstance(setup, _Gather):
        nbytes = setup.index.nbytes + (setup.inside.nbytes if setup.inside is not None else 0)
    elif isinstance(setup, _Interp | _Near):
        nbytes = setup.nbytes
    else:
        nbytes = setup.resampler.nbytes
    _cache.put(key, setup, nbytes, cache_budget(ctx.cache_bytes))
    return setup


def _interp_setup(grid: GridSpec, row0: int, col0: int, h: int, w: int, lg: LevelGrid, method: str,
                  scale: tuple[float, float]) -> _Interp | _Kernel | None:
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
        return _kernel_setup(np.asarray(sx), np.asarray(sy), lg, method, scale)
    gx, gy = _gdal_scale(scale[0]), _gdal_scale(scale[1])
    four = gx >= _FOUR_SAMPLE_MIN_SCALE and gy >= _FOUR_SAMPLE_MIN_SCALE
    if four and method in ("bilinear", "cubic"):
        kind = compiled.BILINEAR4 if method == "bilinear" else compiled.CUBIC4
        return _Interp(window, pos, kind, 0, (2, 2), (gx, gy), (0, 0))
    rx, ry = _radius(method, gx), _radius(method, gy)
    ix, iy = _filter_init(method, rx), _filter_init(method, ry)
    kernel = {"bilinear": compiled.K_BILINEAR, "cubic": compiled.K_CUBIC, "cubicspline": compiled.K_BSPLINE}[method]
    return _Interp(window, pos, compiled.GENERAL, kernel, (rx - ix + 1, ry - iy + 1), (gx, gy), (ix, iy))


@dataclass(frozen=True, eq=False)
class _Near:
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


def _near_setup(grid: GridSpec, row0: int, col0: int, h: int, w: int, lg: LevelGrid) -> _Near | _Gather | None:
    """The compiled nearest set-up; a gather index where the positions have no compact form. Nothing per
    pixel is expanded here: separable positions are bounded axis by axis, lattice positions scanned by
    the compiled kernel, which also finds the points near a source pixel edge (transformed exactly)."""
    pos = chunk_positions(grid, row0, col0, h, w, lg)
    if pos.layout == DENSE:
        return _gather_setup(pos.dense_x, pos.dense_y, lg)
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
    return _Near((r0, c0, r1 - r0, c1 - c0), pos, fix_index, fix_x, fix_y, (lg.width, lg.height))


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


def _gather_setup(sx: np.ndarray, sy: np.ndarray, lg: LevelGrid) -> _Gather | None:
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
    return _Gather((r0, c0, r1 - r0, ww), index.astype(itype).ravel(), None if all_in else inside.ravel())


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


def _kernel_setup(
    sx: np.ndarray, sy: np.ndarray, lg: LevelGrid, method: str, scale: tuple[float, float],
    corners: tuple[np.ndarray, np.ndarray] | None = None,
) -> _Kernel | None:
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
        return _Kernel((r0, c0, r1 - r0, c1 - c0), res)
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
    return _Kernel((r0, c0, r1 - r0, c1 - c0), res)


def task_settings(ctx: ChunkContext) -> contextlib.AbstractContextManager[None]:
    """Around a task's reads: GDAL's block cache sized once in this process, the cube's GDAL settings."""
    env = dict(ctx.env)
    set_block_cache_once(env.pop("GDAL_CACHEMAX", None) or gdal_cachemax(ctx.gdal_cachemax))
    return gdal_settings(env)


# what a chunk task may receive read ahead: per (uri, subdir, level) of a source, its window's pixels
PrefetchedWindows = dict[tuple[str, str, int], Prefetched]


def compute_chunk(
    ctx: ChunkContext, row0: int, col0: int, h: int, w: int, reads: tuple[SourceRead, ...],
    prefetched: PrefetchedWindows | None = None,
    out: np.ndarray | None = None,
    out_filled: bool = False,
    painted: Callable[[SourceRead], None] | None = None,
) -> np.ndarray:
    """The (1, bands, h, w) block of one image at output window (row0, col0, h, w), computed into ``out``
    ((bands, h, w) of the variable's type, e.g. a view of a larger array) when given; ``out_filled``:
    ``out`` already holds the variable's nodata everywhere. ``painted`` is called with each source read
    once it is painted (or skipped, unreadable, with ``on_error="nodata"``), e.g. to close its file.

    ``prefetched``: windows of some sources already read (by a batch read of a multi-image file,
    :mod:`~geocube_dask.graph.batch`), used instead of opening those sources."""
    dtype = np.dtype(ctx.dformat.dtype)
    nodata = ctx.dformat.nodata
    if out is None:
        out = np.full((ctx.nbands, h, w), nodata, dtype=dtype)
    else:
        if out.shape != (ctx.nbands, h, w) or out.dtype != dtype:
            raise ValueError(f"out must be {(ctx.nbands, h, w)} {dtype}, got {out.shape} {out.dtype}")
        if not out_filled:
            out[...] = nodata
    with task_settings(ctx):
        for i, sr in enumerate(reads):
            failure = None
            try:
                _paint_source(ctx, sr, out, row0, col0, h, w, first=i == 0, prefetched=prefetched)
            except READ_ERRORS as exc:  # only I/O: a bug or a MemoryError surfaces as itself
                forget_source(sr.source.uri)
                if ctx.on_error != "nodata":
                    failure = read_error(sr.source.uri, exc)
            if failure is not None:  # raised outside the handler: no chained GDAL error (see read_error)
                raise failure
            if painted is not None:
                painted(sr)
    return out[None]


def zero_nodata(dtype: np.dtype | str, nodata: float) -> bool:
    """Whether ``nodata`` in ``dtype`` is all zero bytes: then a fresh array from ``np.zeros`` is already
    filled with it (see :func:`~geocube_dask.graph.load.load`; a chunk task's own array is filled, since
    memory the allocator reuses from earlier chunks is cheaper to fill than fresh pages are to touch)."""
    return not np.asarray(nodata, dtype=dtype).tobytes().strip(b"\0")


def _copies_as_is(ctx: ChunkContext, sr: SourceRead, first: bool) -> bool:
    """Whether the source can be copied over the chunk without a validity test: it is the first painted
    (the chunk is all nodata), its values are the variable's values, its nodata is the variable's, and
    it holds no NaN other than its nodata (NaN is never data: a float source whose nodata is a number may
    still hold NaN pixels, which must become the variable's nodata)."""
    if not (first and sr.mapping.is_identity):
        return False
    a, b = sr.source.dformat.nodata, ctx.dformat.nodata
    if a is None or b is None:
        return False
    if math.isnan(a) and math.isnan(b):
        return True
    return a == b and np.dtype(sr.source.dformat.dtype).kind != "f"


def _dataset(ctx: ChunkContext, sr: SourceRead, prefetched: PrefetchedWindows | None) -> Any:
    """The source's level as a dataset: its prefetched window if there is one, else the file."""
    src = sr.source

    def opened() -> Any:
        return open_source(src.uri, src.subdir, sr.level.level, ctx.env)

    pre = prefetched.get((src.uri, src.subdir, sr.level.level)) if prefetched else None
    if pre is None:
        return opened()
    return PrefetchedReader(pre, sr.level.height, sr.level.width, opened)


def source_window(ctx: ChunkContext, sr: SourceRead, row0: int, col0: int, h: int, w: int
                  ) -> tuple[int, int, int, int] | None:
    """The window (row0, col0, height, width) of the source's level that painting output window
    (row0, col0, h, w) reads (the union of its strips' windows), clipped to the level; None if none."""
    lg = sr.level
    boxes: list[tuple[int, int, int, int]] = []
    if sr.align is not None:
        dr, dc = sr.align
        boxes.append((row0 + dr, col0 + dc, h, w))
    else:
        wr0, wc0, wr1, wc1 = sr.window
        r0, r1 = max(row0, wr0), min(row0 + h, wr1)
        c0, c1 = max(col0, wc0), min(col0 + w, wc1)
        if r1 <= r0 or c1 <= c0:
            return None
        for s0, s1 in _strips(sr, r0, r1, c1 - c0):
            setup = _setup(ctx, sr, s0, c0, s1 - s0, c1 - c0)
            if setup is not None:
                boxes.append(setup.window)
    if not boxes:
        return None
    r0 = max(0, min(b[0] for b in boxes))
    c0 = max(0, min(b[1] for b in boxes))
    r1 = min(lg.height, max(b[0] + b[2] for b in boxes))
    c1 = min(lg.width, max(b[1] + b[3] for b in boxes))
    if r1 <= r0 or c1 <= c0:
        return None
    return r0, c0, r1 - r0, c1 - c0


def _paint_source(
    ctx: ChunkContext, sr: SourceRead, out: np.ndarray, row0: int, col0: int, h: int, w: int, first: bool = False,
    prefetched: PrefetchedWindows | None = None,
) -> None:
    src = sr.source
    as_is = _copies_as_is(ctx, sr, first)
    ds = _dataset(ctx, sr, prefetched)
    if sr.align is not None:
        dr, dc = sr.align
        got = read_window(ds, src.bands, row0 + dr, col0 + dc, h, w)
        if got is None:
            return
        data, (ro, co) = got
        region = out[:, ro:ro + data.shape[1], co:co + data.shape[2]]
        _paint(region, data, None if as_is else valid_mask(data, src.dformat.nodata), sr.mapping, ctx.dformat)
        return
    # only the output pixels the source may touch: exact coordinates are the costly part
    wr0, wc0, wr1, wc1 = sr.window
    r0, r1 = max(row0, wr0), min(row0 + h, wr1)
    c0, c1 = max(col0, wc0), min(col0 + w, wc1)
    if r1 <= r0 or c1 <= c0:
        return
    for s0, s1 in _strips(sr, r0, r1, c1 - c0):
        _paint_resampled(ctx, sr, ds, out[:, s0 - row0:s1 - row0, c0 - col0:c1 - col0], s0, c0, s1 - s0, c1 - c0,
                         as_is)


def _strips(sr: SourceRead, r0: int, r1: int, width: int) -> list[tuple[int, int]]:
    """Output rows [r0, r1) cut into strips whose source windows each hold at most :data:`STRIP_RATIO`
    times the window's output pixels, so that a task's memory follows its output, not the source scale
    (without a usable overview an output pixel at scale s covers s² source pixels, all read and copied
    to float64 by the kernels). Every output pixel's value depends only on its own source coordinates
    and the source's pinned kernel scale, so strips give exactly the values of one window."""
    sx, sy = (max(1.0, abs(v)) for v in sr.scale)
    if sx * sy <= STRIP_RATIO:
        return [(r0, r1)]
    rows = max(1, int(STRIP_RATIO * (r1 - r0) / (sx * sy)), STRIP_MIN_PIXELS // max(width, 1))
    return [(a, min(a + rows, r1)) for a in range(r0, r1, rows)]


def _paint_resampled(
    ctx: ChunkContext, sr: SourceRead, ds: Any, out: np.ndarray, row0: int, col0: int, h: int, w: int,
    as_is: bool = False,
) -> None:
    """Resample the source onto output window (row0, col0, h, w), painted into ``out`` (its pixels)."""
    src = sr.source
    setup = _setup(ctx, sr, row0, col0, h, w)
    if setup is None:
        return
    r0, c0, hh, ww = setup.window
    got = read_window(ds, src.bands, r0, c0, hh, ww)
    if got is None:
        return
    data, (ro, co) = got
    if data.shape[1:] != (hh, ww):  # cannot happen: windows are clipped to the level grid
        raise RuntimeError(f"short read {data.shape} for window {setup.window} of {src.uri}")
    if isinstance(setup, _Gather):
        nodata, has_nodata = _nodata_arg(data.dtype, src.dformat.nodata)
        inside = setup.inside if setup.inside is not None else _NO_MASK
        direct = sr.mapping.is_identity and data.dtype == out.dtype
        compiled.paint_near(data, setup.index, inside, nodata, has_nodata, out, direct, _mapping_arg(sr.mapping),
                            _cast_arg(ctx.dformat))
        return
    if isinstance(setup, _Near):
        nodata, has_nodata = _nodata_arg(data.dtype, src.dformat.nodata)
        pos = setup.positions
        direct = sr.mapping.is_identity and data.dtype == out.dtype
        compiled.paint_near_positions(
            data, pos.layout, pos.sep_x, pos.sep_y, pos.nodes_x, pos.nodes_y, pos.lattice, setup.fix_index,
            setup.fix_x, setup.fix_y, setup.level_size[0], setup.level_size[1], c0, r0, nodata, has_nodata, out,
            direct, _mapping_arg(sr.mapping), _cast_arg(ctx.dformat))
        return
    if isinstance(setup, _Interp):
        nodata, has_nodata = _nodata_arg(data.dtype, src.dformat.nodata)
        pos = setup.positions
        compiled.paint_interp(
            data, nodata, has_nodata, setup.kind, setup.kernel, setup.taps[0], setup.taps[1],
            setup.gdal_scale[0], setup.gdal_scale[1], setup.init[0], setup.init[1],
            pos.layout, pos.sep_x, pos.sep_y, pos.nodes_x, pos.nodes_y, pos.lattice, pos.dense_x, pos.dense_y,
            float(c0), float(r0), out, _mapping_arg(sr.mapping), _cast_arg(ctx.dformat))
        return
    values, ok = setup.resampler(data, valid_mask(data, src.dformat.nodata))
    _paint(out, values, ok, sr.mapping, ctx.dformat)


_NO_MASK = np.zeros(0, dtype=bool)


def _nodata_arg(dtype: np.dtype, nodata: float | None) -> tuple[Any, bool]:
    """(nodata, whether to test it) as the compiled kernels compare values, the way valid_mask does: in
    the source's type for a float source, in float64 for an integer one; NaN is always tested."""
    if nodata is None or math.isnan(nodata):
        return (dtype.type(0) if dtype.kind == "f" else 0.0), False
    if dtype.kind == "f":
        return dtype.type(nodata), True
    return float(nodata), True


def _mapping_arg(mapping: Mapping) -> tuple[float, float, float, float, float, float]:
    """The mapping as the compiled kernels take it: (identity, min_in, max_in, min_out, max_out, exponent)."""
    return (1.0 if mapping.is_identity else 0.0, float(mapping.min_in), float(mapping.max_in),
            float(mapping.min_out), float(mapping.max_out), float(mapping.exponent))


def _cast_arg(dformat: DFormat) -> tuple[float, float, float]:
    """The cast as the compiled kernels take it: (integer, lowest, highest)."""
    if np.dtype(dformat.dtype).kind == "f":
        return 0.0, 0.0, 0.0
    lo, hi = dtype_range(dformat.dtype)
    return 1.0, float(lo), float(hi)


def _paint(
    out: np.ndarray, values: np.ndarray, valid: np.ndarray | None, mapping: Mapping, dformat: DFormat
) -> None:
    """Map, cast and paint ``values`` over ``out`` where ``valid`` (broadcastable; None = all)."""
    if mapping.is_identity and values.dtype == out.dtype:
        converted = values
    else:
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            converted = cast(mapping.apply(values), dformat.dtype)
    if valid is None:
        out[...] = converted
    else:
        np.copyto(out, converted, where=np.broadcast_to(valid, out.shape))

