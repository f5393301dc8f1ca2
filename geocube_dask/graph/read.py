"""Reading source windows: GDAL settings per task, a per-thread cache of open datasets, clipped reads.

The GDAL settings captured when the graph was built travel with every task and are applied around
its reads, so a worker on another machine reads exactly as the client would. Open datasets are
kept per thread (a rasterio dataset must not be shared between threads) in a small LRU; a local file
rewritten since it was opened is reopened, and :func:`clear_handle_cache` reaches every thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from ..errors import SourceReadError
from ..gdal_settings import gdal_env_context
from ..storage import is_remote, to_gdal_path
from .vsi import gdal_library

MAX_OPEN_PER_THREAD = 64
# What a failed open or read raises: rasterio's I/O errors, GDAL's own (a corrupt block, a refused
# request) and the operating system's. Anything else (a bug, a MemoryError) is not a read failure.
READ_ERRORS: tuple[type[BaseException], ...] = (RasterioIOError, CPLE_BaseError, OSError)

_local = threading.local()
# clear_handle_cache() bumps the generation: every thread's cache, on its next use, sees that it is
# older and closes its own handles (a rasterio dataset must not be closed under another thread's read)
_generation = 0


class _ThreadHandles:
    """One thread's open datasets, each with the file signature it was opened with."""

    def __init__(self) -> None:
        self.items: OrderedDict[tuple[object, ...], tuple[DatasetReader, tuple[int, ...] | None]] = OrderedDict()
        self.generation = _generation

    def close_all(self) -> None:
        while self.items:
            _, (ds, _sig) = self.items.popitem()
            with contextlib.suppress(Exception):
                ds.close()


def _handles() -> _ThreadHandles:
    cache = getattr(_local, "handles", None)
    if cache is None:
        cache = _local.handles = _ThreadHandles()
    if cache.generation != _generation:
        cache.close_all()
        cache.generation = _generation
    return cache


def clear_handle_cache() -> None:
    """Close every dataset this thread keeps open, and make every other thread of the process close its
    own on its next read (each thread closes only its own handles: they may be in use)."""
    global _generation
    _generation += 1
    _handles()


def clear_download_cache() -> bool:
    """Forget what GDAL downloaded in this process through /vsicurl/ and the object-storage file systems
    built on it (file sizes, headers, blocks): after a remote object was rewritten under the same name,
    the next read fetches it anew. GDAL has no Python entry for it, so ``VSICurlClearCache`` is called in
    the GDAL library this process loaded; returns False where it cannot be found."""
    lib = gdal_library()
    if lib is None:
        return False
    lib.VSICurlClearCache()
    return True


def file_signature(uri: str) -> tuple[int, ...] | None:
    """What identifies a local file's content cheaply — (inode, size, modification time in ns) — or None
    for remote objects, which are taken as immutable (consolidation writes new files under new names)."""
    if is_remote(uri):
        return None
    try:
        st = os.stat(to_gdal_path(uri))
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def gdal_settings(env: Mapping[str, str]) -> contextlib.AbstractContextManager[None]:
    """Apply captured GDAL configuration options for the duration of a task."""
    return gdal_env_context(env)


def open_source(uri: str, subdir: str, overview_level: int, env_key: tuple[object, ...]) -> DatasetReader:
    """Open (or reuse this thread's open) dataset; ``overview_level`` -1 is full resolution.

    A local file rewritten since its handle was opened (another inode, size or modification time) is
    opened again: a handle never serves stale pixels."""
    key = (uri, subdir, overview_level, env_key)
    cache = _handles()
    signature = file_signature(uri)
    found = cache.items.get(key)
    if found is not None:
        ds, opened_as = found
        if not ds.closed and opened_as == signature:
            cache.items.move_to_end(key)
            return ds
        cache.items.pop(key)
        with contextlib.suppress(Exception):
            ds.close()
    path = to_gdal_path(uri, subdir) if subdir else to_gdal_path(uri)
    kwargs = {} if overview_level < 0 else {"overview_level": overview_level}
    ds = rasterio.open(path, **kwargs)
    cache.items[key] = (ds, signature)
    cache.items.move_to_end(key)  # a reopened handle is the most recently used, not the oldest
    while len(cache.items) > MAX_OPEN_PER_THREAD:
        _, (old, _sig) = cache.items.popitem(last=False)
        with contextlib.suppress(Exception):
            old.close()
    return ds


def forget_source(uri: str) -> None:
    """Drop this thread's cached handles of ``uri`` (after a read failure, reopen next time)."""
    cache = _handles()
    for key in [k for k in cache.items if k[0] == uri]:
        ds, _sig = cache.items.pop(key)
        with contextlib.suppress(Exception):
            ds.close()


def read_window(
    ds: DatasetReader, bands: tuple[int, ...], row0: int, col0: int, height: int, width: int,
    into: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[int, int]] | None:
    """Read ``bands`` over a window clipped to the dataset.

    Returns the array (bands, h, w) of the clipped window and its (row, col) offset relative to the
    requested window's origin, or ``None`` when the window misses the dataset entirely. ``into``
    (len(bands), height, width) of the dataset's type, any strides, e.g. a view of a cube: the window is
    read straight into its part of it (no array of its own), and the array returned is that part.
    """
    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row0 + height, ds.height), min(col0 + width, ds.width)
    if r1 <= r0 or c1 <= c0:
        return None
    window = Window(c0, r0, c1 - c0, r1 - r0)
    if into is None:
        data = ds.read(indexes=list(bands), window=window)
    else:
        data = ds.read(indexes=list(bands), window=window,
                       out=into[:, r0 - row0:r1 - row0, c0 - col0:c1 - col0])
    return data, (r0 - row0, c0 - col0)


@dataclass(frozen=True)
class Prefetched:
    """Pixels of one source (file, subdir, level) read ahead for a chunk: ``data`` (len(bands), h, w) is
    the level's window ``window`` = (row0, col0, height, width), as GDAL reads it."""

    window: tuple[int, int, int, int]
    bands: tuple[int, ...]
    data: np.ndarray


class PrefetchedReader:
    """What :func:`read_window` needs of a dataset, served from a :class:`Prefetched` window; a read
    reaching outside it goes to the dataset ``fallback()`` opens (never expected: a safety net)."""

    def __init__(self, pre: Prefetched, height: int, width: int, fallback: Callable[[], DatasetReader]) -> None:
        self.pre = pre
        self.height = height
        self.width = width
        self.fallback = fallback

    def read(self, indexes: list[int], window: Window) -> np.ndarray:
        r0, c0 = int(window.row_off), int(window.col_off)
        h, w = int(window.height), int(window.width)
        pr, pc, ph, pw = self.pre.window
        if pr <= r0 and pc <= c0 and r0 + h <= pr + ph and c0 + w <= pc + pw and set(indexes) <= set(self.pre.bands):
            planes = [self.pre.bands.index(b) for b in indexes]
            rows, cols = slice(r0 - pr, r0 - pr + h), slice(c0 - pc, c0 - pc + w)
            if planes == list(range(len(self.pre.bands))):
                return self.pre.data[:, rows, cols]  # a view: readers of windows never write into them
            return self.pre.data[planes, rows, cols]
        return self.fallback().read(indexes=indexes, window=window)


def read_error(uri: str, exc: BaseException) -> SourceReadError:
    """The error raised when a source cannot be read at compute time (names the uri).

    GDAL's reasons along the exception chain (e.g. "TIFFReadEncodedTile() failed") go into the message
    and the chain is not kept: rasterio's GDAL errors cannot be unpickled, so a chained error would
    reach a distributed client as a bare ``Exception`` instead of a SourceReadError."""
    reasons: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(reasons) < 5:
        text = str(seen).strip().rstrip(".")
        if text and text not in reasons and not text.startswith("Read failed. See previous exception"):
            reasons.append(text)
        seen = seen.__cause__ or seen.__context__
    why = "; ".join(reasons) or type(exc).__name__
    return SourceReadError(
        f"cannot read source {uri!r}: {why}. Check that the file exists and is readable from this "
        "worker (credentials, network), or compute with on_error='nodata' to leave it out"
    )
