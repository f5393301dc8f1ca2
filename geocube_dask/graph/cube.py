"""CubePlan → dask graph → lazy ``xarray.DataArray`` (time, band, y, x).

One task per output chunk (one image × all bands × one spatial tile). Sources are matched to the
chunks their footprint touches when the graph is built, so the graph has O(images × chunks) tasks
whatever the number of files, and a chunk that no source touches reads nothing (all such chunks of
one shape share a single nodata block). Task keys derive from the plan: the same request gives the
same keys.

A chunk task closes the files that no other chunk of the cube reads once it has painted them: an open
dataset that has been read keeps its tile buffers (about a megabyte for a compressed pixel-interleaved
file) and its decoded tiles in GDAL's cache, and a worker's threads keep up to
:data:`~geocube_dask.graph.read.MAX_OPEN_PER_THREAD` files open each. Files that several chunks read
stay open for the next one. Services that read the same files request after request (tiles,
timeseries) build their cubes with ``keep_files=True``.
"""

from __future__ import annotations

import collections
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from dask.highlevelgraph import HighLevelGraph

from .batch import BatchPlanner, batch_settings
from .chunk import ChunkContext, PrefetchedWindows, SourceRead, compute_chunk, configured_settings
from .mapping import mapping_for
from .plan import CubePlan, Source
from .read import forget_source
from .warp import LevelGrid, alignment, choose_level, output_window


@dataclass(frozen=True)
class ChunkJob:
    """The argument of one chunk task (an opaque object, so dask does not walk into it)."""

    ctx: ChunkContext
    row0: int
    col0: int
    height: int
    width: int
    reads: tuple[SourceRead, ...]
    closes: frozenset[str] = frozenset()  # files (uris) no other chunk of the cube reads


def run_chunk_job(job: ChunkJob, *batches: PrefetchedWindows) -> np.ndarray:
    """Compute one chunk; ``batches`` are the results of the batch reads it depends on."""
    prefetched: PrefetchedWindows = {}
    for windows in batches:
        prefetched.update(windows)
    with FileCloser(job.reads, job.closes) as closer:
        return compute_chunk(job.ctx, job.row0, job.col0, job.height, job.width, job.reads, prefetched,
                             painted=closer)


class FileCloser:
    """A ``painted`` callback for :func:`~geocube_dask.graph.chunk.compute_chunk`: closes this thread's
    handles of each file of ``files`` (None: every file) once the last of ``reads`` reading it is painted.
    As a context manager, it also closes on exit those whose reads were not all painted (after a failure)."""

    def __init__(self, reads: Iterable[SourceRead], files: Collection[str] | None = None) -> None:
        self.left = collections.Counter(sr.source.uri for sr in reads if files is None or sr.source.uri in files)

    def __call__(self, sr: SourceRead) -> None:
        uri = sr.source.uri
        if self.left[uri]:
            self.left[uri] -= 1
            if not self.left[uri]:
                forget_source(uri)

    def __enter__(self) -> FileCloser:
        return self

    def __exit__(self, *exc: object) -> None:
        for uri in +self.left:
            forget_source(uri)
        self.left.clear()


def nodata_block(shape: tuple[int, ...], dtype: str, nodata: float) -> np.ndarray:
    return np.full(shape, nodata, dtype=dtype)


@dataclass(frozen=True)
class _Geometry:
    level: LevelGrid
    scale: tuple[float, float]
    align: tuple[int, int] | None
    window: tuple[int, int, int, int] | None  # output rows/cols the source may touch


def _chunk_bounds(total: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(size, total - start)) for start in range(0, total, size)]


def cube_from_plan(plan: CubePlan, *, chunks: int | tuple[int, int] | None = None, keep_files: bool = False
                   ) -> xr.DataArray:
    """Build the lazy cube of a plan (no database needed; nothing is read until compute).

    ``keep_files``: leave every file open once read, for later requests over the same files (see the
    module's notes); by default a chunk closes the files no other chunk reads."""
    if chunks is not None:
        plan = plan.with_chunks(chunks)
    grid = plan.grid
    cy, cx = plan.chunks
    rows = _chunk_bounds(grid.height, cy)
    cols = _chunk_bounds(grid.width, cx)
    nb = len(plan.bands)
    dtype = plan.dformat.dtype
    nodata = plan.dformat.nodata
    if not (nodata is not None):
        raise RuntimeError("internal error: expected nodata is not None")
    cache_bytes, cachemax = configured_settings()
    ctx = ChunkContext(
        grid=grid,
        dformat=plan.dformat,
        nbands=nb,
        resampling=plan.resampling,
        env=tuple(sorted(plan.gdal_env.items())),
        on_error=plan.on_error,
        cache_bytes=cache_bytes,
        gdal_cachemax=cachemax,
    )
    name = f"geocube-cube-{plan.token}"
    dsk: dict[Any, Any] = {}
    empty_keys: dict[tuple[int, int], tuple[Any, ...]] = {}
    geometry: dict[tuple[Any, ...], _Geometry] = {}

    def geometry_of(src: Source) -> _Geometry:
        key = src.grid_key
        geo = geometry.get(key)
        if geo is None:
            window = output_window(src, grid)
            level, scale = choose_level(src, grid)
            geo = geometry[key] = _Geometry(level, scale, alignment(level, grid, plan.resampling == "near"),
                                            window)
        return geo

    batches = BatchPlanner(name, ctx, *batch_settings())
    per_image: list[dict[tuple[int, int], list[SourceRead]]] = []
    for image in plan.images:
        per_chunk: dict[tuple[int, int], list[SourceRead]] = {}
        for src in image.sources:
            geo = geometry_of(src)
            if geo.window is None:
                continue
            r0, c0, r1, c1 = geo.window
            sr = SourceRead(src, geo.level, geo.scale, geo.align,
                            mapping_for(src.dformat, src.real_min, src.real_max, src.exponent), geo.window)
            for ci in range(r0 // cy, (r1 - 1) // cy + 1):
                for cj in range(c0 // cx, (c1 - 1) // cx + 1):
                    per_chunk.setdefault((ci, cj), []).append(sr)
                    batches.add(ci, cj, sr)
        per_image.append(per_chunk)
    batches.build(dsk, (rows, cols))
    readers = collections.Counter(uri for per_chunk in per_image for reads in per_chunk.values()
                                  for uri in {sr.source.uri for sr in reads})
    for i, per_chunk in enumerate(per_image):
        for ci, (row0, h) in enumerate(rows):
            for cj, (col0, w) in enumerate(cols):
                key = (name, i, 0, ci, cj)
                reads = per_chunk.get((ci, cj))
                if reads:
                    deps = batches.dependencies(ci, cj, reads)
                    closes = frozenset() if keep_files else frozenset(
                        sr.source.uri for sr in reads if readers[sr.source.uri] == 1)
                    dsk[key] = (run_chunk_job, ChunkJob(ctx, row0, col0, h, w, tuple(reads), closes), *deps)
                else:
                    ekey = empty_keys.get((h, w))
                    if ekey is None:
                        ekey = empty_keys[(h, w)] = (f"{name}-nodata", h, w)
                        dsk[ekey] = (nodata_block, (1, nb, h, w), dtype, nodata)
                    dsk[key] = ekey
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    chunks_spec = (
        (1,) * len(plan.images) if plan.images else (0,),
        (nb,),
        tuple(h for _, h in rows),
        tuple(w for _, w in cols),
    )
    if plan.images:
        data = da.Array(graph, name, chunks_spec, dtype=dtype, meta=np.empty((0, 0, 0, 0), dtype=dtype))
    else:
        data = da.full((0, nb, grid.height, grid.width), nodata, dtype=dtype, chunks=(1, nb, cy, cx))
    return _to_xarray(plan, data)


def _to_xarray(plan: CubePlan, data: da.Array) -> xr.DataArray:
    grid = plan.grid
    times = pd.DatetimeIndex([im.time.replace(tzinfo=None) for im in plan.images], name="time")
    coords = {
        "time": times.values.astype("datetime64[ns]"),
        "band": list(plan.bands),
        "y": grid.ys(),
        "x": grid.xs(),
        "record_ids": ("time", np.array([",".join(im.record_ids) for im in plan.images], dtype=str)),
        "record_names": ("time", np.array([",".join(im.record_names) for im in plan.images], dtype=str)),
    }
    cube = xr.DataArray(
        data,
        dims=("time", "band", "y", "x"),
        coords=coords,
        name=plan.variable,
        attrs={
            "variable": plan.variable,
            "instance": ",".join(plan.instances),
            "resampling": plan.resampling,
            "dformat": str(plan.dformat.to_json()),
        },
    )
    cube = cube.rio.write_crs(grid.crs)
    cube = cube.rio.write_transform(grid.affine)
    cube = cube.rio.write_nodata(plan.dformat.nodata, encoded=False)
    return cube
