"""Computing one output chunk (one image × all bands × one spatial tile): read, resample, map, paint.

Sources are painted in order; a later valid pixel overwrites an earlier one; nodata never
overwrites; pixels no source covers keep the variable's nodata. Per source:

* aligned grids (same CRS and pixel size, integer offset — e.g. a 10 m tile's ×2 overview under a
  20 m output; for ``near`` any offset that puts no pixel centre on a source pixel edge, a whole-pixel
  translation) are read directly, no resampling;
* otherwise the source coordinates of the chunk's pixel centres are set up once per (source grid,
  chunk) in a compact form (one coordinate per column and row in the source's CRS; across CRSs a
  lattice of exact transforms, with the points near a source pixel edge transformed exactly for
  ``near``) and cached for the other dates of the same tile (:mod:`~geocube_dask.graph.setups`); the
  compiled kernels (:mod:`~geocube_dask.graph.kernels.compiled`) expand them pixel by pixel for
  ``near``, ``bilinear``, ``cubic`` and ``cubicspline``; the other methods go through
  :class:`~geocube_dask.graph.kernels.Resampler`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.io import DatasetReader

from ..entities import DFormat, dtype_range
from ..errors import InvalidArgument
from ..gdal_settings import check_block_cache, set_block_cache_once
from .grid import GridSpec
from .kernels import compiled
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
from .setups import Gather, Interp, Kernel, Near, clear_setups, resampling_setup
from .tiffindex import clear_tiff_indexes
from .warp import LevelGrid

# GDAL's block cache per process, in MB, unless configured (measured on bench/cube.py: 32 MB reads as
# fast as 128 MB and keeps ~100 MB less resident)
GDAL_CACHEMAX_MB = 32
# a source window read for a chunk holds at most this many times the chunk's own pixels (see _strips);
# scales up to √4 = 2 per axis (the usual overview step) read whole windows
STRIP_RATIO = 4.0
STRIP_MIN_PIXELS = 4096  # strips are never thinner than this many output pixels (per-strip set-up costs)


def gdal_cachemax(configured: int | str | None = None) -> int | str:
    """GDAL block cache for a process that computes chunks (megabytes, or a size as
    :func:`~geocube_dask.gdal_settings.block_cache_bytes` reads it): ``configured`` (captured from the client's
    ``geocube.gdal-cachemax`` when the graph was built), else this process's ``geocube.gdal-cachemax``,
    else :data:`GDAL_CACHEMAX_MB`. GDAL's own default (5 % of the machine's memory per process) is more
    than a dask worker's memory limit allows, and chunk tasks gain little from a large cache: each reads
    its source window once (a block shared by two chunks is reused only when the same thread computes
    both), while every block read stays resident until the cache is full. The cache is one per process:
    it is set once, by the first chunk task that runs there
    (:func:`~geocube_dask.gdal_settings.set_block_cache_once`). Raises InvalidArgument for a value that is no
    size."""
    import dask.config

    value = configured if configured is not None else dask.config.get("geocube.gdal-cachemax", GDAL_CACHEMAX_MB)
    check_block_cache(value, "geocube.gdal-cachemax")
    return int(value) if str(value).strip().isdigit() else value


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


def clear_caches(client: Any = None) -> None:
    """Forget this process's resampling set-ups and MUCOG tile indexes, close its open datasets (every
    thread closes its own on its next read) and forget what GDAL downloaded from remote storage, so
    that a remote object rewritten under the same name is read anew. With a ``distributed.Client``, do
    the same in every worker too."""
    clear_setups()
    clear_handle_cache()
    clear_download_cache()
    clear_tiff_indexes()
    if client is not None:
        client.run(clear_caches)


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
        # copied as is from a file: read straight into the chunk, with no window of its own
        into = out if as_is and isinstance(ds, DatasetReader) and all(
            np.dtype(ds.dtypes[b - 1]) == out.dtype for b in src.bands) else None
        try:
            got = read_window(ds, src.bands, row0 + dr, col0 + dc, h, w, into)
        except READ_ERRORS:
            if into is not None:  # a read that failed half-way: the chunk was all nodata (as_is)
                out[...] = ctx.dformat.nodata
            raise
        if got is None or into is not None:
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


def _setup(ctx: ChunkContext, sr: SourceRead, row0: int, col0: int, h: int, w: int
           ) -> Gather | Kernel | Interp | Near | None:
    return resampling_setup(ctx.grid, sr.level, ctx.resampling, sr.scale, row0, col0, h, w, ctx.cache_bytes)


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
    if isinstance(setup, Gather | Near):  # their kernels index the window's planes flat
        data = np.ascontiguousarray(data)  # copies only a view into a window prefetched for several reads
    if isinstance(setup, Gather):
        nodata, has_nodata = _nodata_arg(data.dtype, src.dformat.nodata)
        inside = setup.inside if setup.inside is not None else _NO_MASK
        direct = sr.mapping.is_identity and data.dtype == out.dtype
        compiled.paint_near(data, setup.index, inside, nodata, has_nodata, out, direct, _mapping_arg(sr.mapping),
                            _cast_arg(ctx.dformat))
        return
    if isinstance(setup, Near):
        nodata, has_nodata = _nodata_arg(data.dtype, src.dformat.nodata)
        pos = setup.positions
        direct = sr.mapping.is_identity and data.dtype == out.dtype
        compiled.paint_near_positions(
            data, pos.layout, pos.sep_x, pos.sep_y, pos.nodes_x, pos.nodes_y, pos.lattice, setup.fix_index,
            setup.fix_x, setup.fix_y, setup.level_size[0], setup.level_size[1], c0, r0, nodata, has_nodata, out,
            direct, _mapping_arg(sr.mapping), _cast_arg(ctx.dformat))
        return
    if isinstance(setup, Interp):
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

