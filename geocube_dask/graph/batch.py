"""Reading the images of one multi-image TIFF (a MUCOG) together, in a few large byte ranges.

Each record of a MUCOG is a GDAL dataset of its own (``GTIFF_DIR:n``). Read image by image, GDAL
makes at least one request per record and tile — it does not know that the MUCOG keeps the records of
a tile side by side — and every open walks the IFD chain from the first record. Over the network
that is a request (tens of milliseconds) per record. Instead, for the sources of a cube that are
images of one file on one grid:

1. once per file and graph, a task reads the file's header and tile index
   (:func:`~geocube_dask.graph.tiffindex.read_tiff_index`: a few requests; once per process while the
   file is unchanged);
2. per output chunk and batch of images, a task takes the window of the source level the image tasks
   will read (the same for all the images of the file: they share the grid), collects the tiles it
   covers in every image, merges the ones lying side by side into runs, and fetches every run with
   one ``VSIFReadMultiRangeL`` call through GDAL (one request per run, in parallel; every GDAL
   setting of the cube applies);
3. it lays the header and the runs out as a compact in-memory TIFF, whose tile offsets for those
   images and that level point into the runs — every other non-empty tile of theirs beyond the end,
   so that reading a tile that was not fetched fails instead of reading other bytes — and reads each
   image's window from it with GDAL itself (``GTIFF_DIR:off:<ifd position>``, no walk along the
   chain): the pixels are exactly GDAL's;
4. the image tasks paint from those windows instead of opening the sources
   (:class:`~geocube_dask.graph.read.PrefetchedReader`).

Everything a task needs comes from its own arguments and dependencies (no cache shared between
tasks), so it runs alike on threads and on a distributed cluster. When a file is not indexed
(another kind of TIFF) or a batch cannot be read or decoded, the batch returns nothing and the image
tasks read their sources themselves, with their usual error handling (``on_error``); a batch that
failed is logged as a warning (slower reads, same pixels).

Settings, captured from the client's dask config when the graph is built:
``geocube.mucog-reads`` — which files: ``"remote"`` (default: files reached over the network, where
requests cost), ``"always"`` or ``"never"``; ``geocube.mucog-batch-bytes`` — the decoded pixels one
batch task holds at most (default 32 MiB; a batch holds at least one image).
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..storage import is_remote, to_gdal_path
from .chunk import STRIP_RATIO, ChunkContext, PrefetchedWindows, SourceRead, source_window, task_settings
from .read import READ_ERRORS, Prefetched
from .tiffindex import IfdTiles, TiffIndex, cached_tiff_index
from .vsi import RemoteFile, memory_file

log = logging.getLogger(__name__)

MODES = ("remote", "always", "never")
DEFAULT_BATCH_BYTES = 32 * 2**20
# tiles closer than this are fetched as one run, the bytes between them with them (a request costs
# more than tens of kilobytes)
MERGE_GAP = 64 * 1024
_DIR = re.compile(r"^GTIFF_DIR:(\d+)$", re.IGNORECASE)


def dir_number(subdir: str) -> int | None:
    """n of a ``GTIFF_DIR:n`` subdir, else None."""
    m = _DIR.match(subdir)
    return int(m.group(1)) if m else None


def batch_settings() -> tuple[str, int]:
    """(``geocube.mucog-reads``, ``geocube.mucog-batch-bytes``) of this process's dask config."""
    import dask.config
    from dask.utils import parse_bytes

    from ..errors import InvalidArgument

    mode = str(dask.config.get("geocube.mucog-reads", "remote"))
    if mode not in MODES:
        raise InvalidArgument(f"geocube.mucog-reads must be one of {', '.join(MODES)}, not {mode!r}")
    budget = dask.config.get("geocube.mucog-batch-bytes", DEFAULT_BATCH_BYTES)
    return mode, int(parse_bytes(budget) if isinstance(budget, str) else budget)


def batched(sr: SourceRead, mode: str) -> bool:
    """Whether ``sr`` may be read in a batch: an image ``GTIFF_DIR:n`` of a file ``mode`` selects, read
    in one window per chunk (aligned, or resampled at a scale the cube reads in one strip)."""
    if mode == "never" or dir_number(sr.source.subdir) is None:
        return False
    if mode == "remote" and not is_remote(sr.source.uri):
        return False
    sx, sy = (max(1.0, abs(v)) for v in sr.scale)
    return sr.align is not None or sx * sy <= STRIP_RATIO


@dataclass(frozen=True)
class BatchJob:
    """The argument of one batch task: the images ``subdirs`` of one file, for one output chunk."""

    ctx: ChunkContext
    row0: int
    col0: int
    height: int
    width: int
    template: SourceRead  # one of the images: their geometry (grid, level, scale) is shared
    subdirs: tuple[str, ...]


def index_task(uri: str, env: tuple[tuple[str, str], ...]) -> TiffIndex | None:
    """The tile index of ``uri`` (None when it cannot be read or is not a file read in batches)."""
    from ..gdal_settings import gdal_env_context

    with gdal_env_context(dict(env)):
        try:
            return cached_tiff_index(to_gdal_path(uri), uri, env)
        except READ_ERRORS as exc:
            log.debug("no batch reads of %s: %s", uri, exc)
            return None


def batch_task(job: BatchJob, index: TiffIndex | None) -> PrefetchedWindows:
    """The windows of every image of the batch (empty: the image tasks read them themselves)."""
    if index is None:
        return {}
    with task_settings(job.ctx):
        try:
            return read_batch(job, index)
        except (*READ_ERRORS, ValueError) as exc:  # the images' own reads say whether the file is unreadable
            log.warning("reading %d images of %s in one batch failed (%s): they are read one by one instead, "
                        "with a request per image and tile", len(job.subdirs), job.template.source.uri, exc)
            return {}


def tile_numbers(level: IfdTiles, window: tuple[int, int, int, int], bands: tuple[int, ...]) -> np.ndarray:
    """Indexes into the level's tile arrays of the tiles covering ``window`` in the planes of ``bands``."""
    r0, c0, h, w = window
    th, tw = level.tile
    rows = np.arange(r0 // th, (r0 + h - 1) // th + 1)
    cols = np.arange(c0 // tw, (c0 + w - 1) // tw + 1)
    tiles = (rows[:, None] * level.tiles_across + cols[None, :]).ravel()
    planes = [0] if level.planes == 1 else [b - 1 for b in bands]
    return np.concatenate([p * level.tiles_per_plane + tiles for p in planes])


def merge_runs(pieces: Iterable[tuple[int, int]], gap: int = MERGE_GAP) -> list[tuple[int, int]]:
    """(offset, length) pieces → sorted runs (offset, length) covering them, merged when closer than ``gap``."""
    runs: list[list[int]] = []
    for offset, length in sorted(pieces):
        if runs and offset - (runs[-1][0] + runs[-1][1]) <= gap:
            runs[-1][1] = max(runs[-1][1], offset + length - runs[-1][0])
        else:
            runs.append([offset, length])
    return [(o, n) for o, n in runs]


@dataclass
class _Compact:
    """A compact copy of the file: its header, then the fetched runs."""

    runs: list[tuple[int, int]]
    header: int
    data: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.data = np.empty(self.header + sum(n for _, n in self.runs), np.uint8)
        starts = [o for o, _ in self.runs]
        self._starts = np.asarray(starts, dtype=np.int64)
        self._bases = self.header + np.concatenate([[0], np.cumsum([n for _, n in self.runs])[:-1]]).astype(np.int64)

    def new_offsets(self, offsets: np.ndarray) -> np.ndarray:
        """Positions in the copy of bytes at ``offsets`` of the file (each inside a run)."""
        run = np.searchsorted(self._starts, offsets, side="right") - 1
        return self._bases[run] + (offsets - self._starts[run])

    def point(self, level: IfdTiles, wanted: np.ndarray) -> None:
        """Rewrite the level's TileOffsets in the copy: the ``wanted`` tiles into the runs, every other
        non-empty tile past the end of the copy (an error if read), empty tiles as they are."""
        offsets = np.where(level.counts > 0, self.data.size + 1, level.offsets)
        keep = wanted[level.counts[wanted] > 0]
        offsets[keep] = self.new_offsets(level.offsets[keep])
        dtype = np.dtype(level.offsets_dtype)
        if offsets.max(initial=0) > np.iinfo(dtype).max:
            raise ValueError("the compact copy is too large for the file's tile offsets")
        at = level.offsets_at
        self.data[at:at + offsets.size * dtype.itemsize].view(dtype)[:] = offsets


def read_batch(job: BatchJob, index: TiffIndex) -> PrefetchedWindows:
    """Fetch the tiles of the batch's window in every image in one multi-range read, and read each
    image's window from a compact in-memory copy with GDAL (see the module's docstring)."""
    import rasterio
    from rasterio.windows import Window

    sr = job.template
    src, lg = sr.source, sr.level
    window = source_window(job.ctx, sr, job.row0, job.col0, job.height, job.width)
    if window is None:
        return {}
    numbers = [dir_number(s) or 0 for s in job.subdirs]
    levels = [index.level(n, (lg.height, lg.width)) for n in numbers]
    if any(level is None for level in levels):
        raise ValueError(f"{src.uri}: an image or level of the batch is not in the file's tile index")
    wanted = [tile_numbers(level, window, src.bands) for level in levels]
    pieces = [(int(o), int(c)) for level, want in zip(levels, wanted, strict=True)
              for o, c in zip(level.offsets[want], level.counts[want], strict=True) if c > 0]
    compact = _Compact(merge_runs(pieces), index.metadata.size)
    if compact.runs:
        with RemoteFile(to_gdal_path(src.uri)) as remote:
            remote.read_ranges(compact.runs, out=compact.data[compact.header:])
    compact.data[:compact.header] = index.metadata
    for level, want in zip(levels, wanted, strict=True):
        compact.point(level, want)
    r0, c0, h, w = window
    out: PrefetchedWindows = {}
    overview: dict[str, Any] = {} if lg.level < 0 else {"overview_level": lg.level}
    with memory_file(f"/vsimem/geocube-batch/{uuid.uuid4().hex}.tif", compact.data) as name:
        for subdir, number in zip(job.subdirs, numbers, strict=True):
            with rasterio.open(f"GTIFF_DIR:off:{index.images[number - 1][0].ifd}:{name}", **overview) as ds:
                if (ds.height, ds.width) != (lg.height, lg.width):
                    raise ValueError(f"{src.uri} {subdir}: GDAL's level {lg.level} is not the one fetched")
                data = ds.read(indexes=list(src.bands), window=Window(c0, r0, w, h))
            out[(src.uri, subdir, lg.level)] = Prefetched(window, src.bands, data)
    return out


def batch_sizes(count: int, per_image: int, budget: int) -> list[int]:
    """``count`` images cut into the fewest batches of at most ``budget`` bytes (at least one image
    each), as even as possible."""
    batches = max(1, min(count, math.ceil(count * per_image / max(budget, 1))))
    size, extra = divmod(count, batches)
    return [size + (1 if i < extra else 0) for i in range(batches)]


class BatchPlanner:
    """Groups a cube's batched sources per (chunk, file, grid, bands) while the graph is built, then adds
    the index and batch tasks and tells every image task which batches it depends on."""

    def __init__(self, name: str, ctx: ChunkContext, mode: str, budget: int) -> None:
        self.name = name
        self.ctx = ctx
        self.mode = mode
        self.budget = budget
        self.groups: dict[tuple[Any, ...], dict[str, SourceRead]] = {}
        self.batch_of: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    @staticmethod
    def _group(ci: int, cj: int, sr: SourceRead) -> tuple[Any, ...]:
        return (ci, cj, sr.source.uri, sr.source.grid_key, sr.source.bands, sr.level.level)

    def add(self, ci: int, cj: int, sr: SourceRead) -> None:
        if batched(sr, self.mode):
            self.groups.setdefault(self._group(ci, cj, sr), {}).setdefault(sr.source.subdir, sr)

    def build(self, dsk: dict[Any, Any], bounds: tuple[list[tuple[int, int]], list[tuple[int, int]]]) -> None:
        """Add the tasks of every group of at least two images to ``dsk``."""
        rows, cols = bounds
        index_keys: dict[str, tuple[Any, ...]] = {}
        for g, (key, members) in enumerate(self.groups.items()):
            if len(members) < 2:
                continue
            ci, cj, uri = key[0], key[1], key[2]
            ikey = index_keys.get(uri)
            if ikey is None:
                ikey = index_keys[uri] = (f"{self.name}-tiffindex", len(index_keys))
                dsk[ikey] = (index_task, uri, self.ctx.env)
            (row0, h), (col0, w) = rows[ci], cols[cj]
            subdirs = sorted(members, key=lambda s: dir_number(s) or 0)
            template = members[subdirs[0]]
            pixels = h * w * max(1.0, abs(template.scale[0])) * max(1.0, abs(template.scale[1]))
            per_image = int(pixels * len(template.source.bands) * np.dtype(template.source.dformat.dtype).itemsize)
            start = 0
            for b, size in enumerate(batch_sizes(len(subdirs), per_image, self.budget)):
                part = tuple(subdirs[start:start + size])
                start += size
                bkey = (f"{self.name}-batch", g, b)
                dsk[bkey] = (batch_task, BatchJob(self.ctx, row0, col0, h, w, template, part), ikey)
                for subdir in part:
                    self.batch_of[(*key, subdir)] = bkey

    def dependencies(self, ci: int, cj: int, reads: Iterable[SourceRead]) -> tuple[tuple[Any, ...], ...]:
        """The batch tasks holding windows of ``reads`` for chunk (ci, cj)."""
        keys = (self.batch_of.get((*self._group(ci, cj, sr), sr.source.subdir)) for sr in reads)
        return tuple(dict.fromkeys(k for k in keys if k is not None))
