"""GDAL's virtual file API (VSI) through ctypes: byte ranges of any file GDAL can open, in-memory files.

Reading bytes through GDAL's own ``VSIFReadMultiRangeL`` — rather than with an HTTP or S3 client of
our own — keeps every GDAL setting that applies to the task (credentials, endpoints, headers, retries,
``GDAL_HTTP_MULTIRANGE``…) exactly as for the windowed reads, whatever the file system (local,
/vsicurl/, /vsis3/, /vsigs/, /vsiaz/…). For /vsicurl/ and the object stores built on it GDAL fetches
the ranges of one call in parallel (``GDAL_HTTP_MULTIRANGE=PARALLEL``, its default), one request each.

Python's GDAL bindings are not a dependency: the functions are looked up in the GDAL library that
rasterio loaded into this process (a rasterio wheel bundles its own), so they share its state
(configuration options, the /vsimem/ files it opens).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading
from collections.abc import Iterator, Sequence

import numpy as np

SEEK_END = 2
_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False


def gdal_library() -> ctypes.CDLL | None:
    """The GDAL library rasterio loaded (None where it cannot be found), with the signatures used here."""
    global _lib, _tried
    with _lock:
        if not _tried:
            _tried = True
            _lib = _load()
    return _lib


def _load() -> ctypes.CDLL | None:
    import rasterio  # noqa: F401 - loads its GDAL library first, so that /proc/self/maps names it

    paths: list[str] = []
    with contextlib.suppress(OSError), open("/proc/self/maps") as maps:
        paths = sorted({line.split()[-1] for line in maps if "libgdal" in line and line.split()[-1].startswith("/")})
    found = paths[0] if paths else ctypes.util.find_library("gdal")
    if not found:
        return None
    try:
        lib = ctypes.CDLL(found)
        vp, u64, sz = ctypes.c_void_p, ctypes.c_uint64, ctypes.c_size_t
        lib.VSIFOpenL.restype, lib.VSIFOpenL.argtypes = vp, [ctypes.c_char_p, ctypes.c_char_p]
        lib.VSIFCloseL.restype, lib.VSIFCloseL.argtypes = ctypes.c_int, [vp]
        lib.VSIFSeekL.restype, lib.VSIFSeekL.argtypes = ctypes.c_int, [vp, u64, ctypes.c_int]
        lib.VSIFTellL.restype, lib.VSIFTellL.argtypes = u64, [vp]
        lib.VSIFReadMultiRangeL.restype = ctypes.c_int
        lib.VSIFReadMultiRangeL.argtypes = [ctypes.c_int, ctypes.POINTER(vp), ctypes.POINTER(u64),
                                            ctypes.POINTER(sz), vp]
        lib.VSIFileFromMemBuffer.restype = vp
        lib.VSIFileFromMemBuffer.argtypes = [ctypes.c_char_p, vp, u64, ctypes.c_int]
        lib.VSIUnlink.restype, lib.VSIUnlink.argtypes = ctypes.c_int, [ctypes.c_char_p]
        lib.CPLGetLastErrorMsg.restype = ctypes.c_char_p
        lib.CPLErrorReset.restype = None
        getattr(lib, "VSICurlClearCache")  # noqa: B009 - a missing symbol raises AttributeError
    except (OSError, AttributeError):
        return None
    return lib


def _required() -> ctypes.CDLL:
    lib = gdal_library()
    if lib is None:
        raise OSError("GDAL's library could not be found in this process")
    return lib


def _failure(lib: ctypes.CDLL, what: str) -> OSError:
    msg = (lib.CPLGetLastErrorMsg() or b"").decode(errors="replace")
    lib.CPLErrorReset()  # not left for rasterio's next call to report
    return OSError(f"{what}: {msg}" if msg else what)


class RemoteFile:
    """A file opened with GDAL's ``VSIFOpenL`` (any path GDAL reads): its size and byte ranges."""

    def __init__(self, path: str) -> None:
        self.lib = _required()
        self.path = path
        self.handle = self.lib.VSIFOpenL(path.encode(), b"rb")
        if not self.handle:
            raise _failure(self.lib, f"cannot open {path}")
        self._size: int | None = None

    @property
    def size(self) -> int:
        if self._size is None:
            if self.lib.VSIFSeekL(self.handle, 0, SEEK_END) != 0:
                raise _failure(self.lib, f"cannot seek to the end of {self.path}")
            self._size = int(self.lib.VSIFTellL(self.handle))
        return self._size

    def read_ranges(self, ranges: Sequence[tuple[int, int]], out: np.ndarray | None = None) -> list[np.ndarray]:
        """The bytes of every (offset, length), as uint8 arrays (views of ``out`` when given, which must
        hold their total length), in one ``VSIFReadMultiRangeL`` call."""
        total = sum(n for _, n in ranges)
        if out is None:
            out = np.empty(total, np.uint8)
        if out.dtype != np.uint8 or not out.flags.c_contiguous or out.size < total:
            raise ValueError("out must be a contiguous uint8 array holding every range")
        views, at = [], 0
        for _, n in ranges:
            views.append(out[at:at + n])
            at += n
        if not ranges:
            return views
        count = len(ranges)
        base = out.ctypes.data
        starts = np.cumsum([0] + [n for _, n in ranges[:-1]])
        pointers = (ctypes.c_void_p * count)(*(base + int(s) for s in starts))
        offsets = (ctypes.c_uint64 * count)(*(int(o) for o, _ in ranges))
        sizes = (ctypes.c_size_t * count)(*(int(n) for _, n in ranges))
        if self.lib.VSIFReadMultiRangeL(count, pointers, offsets, sizes, self.handle) != 0:
            raise _failure(self.lib, f"cannot read {count} byte range(s) of {self.path}")
        return views

    def close(self) -> None:
        if self.handle:
            self.lib.VSIFCloseL(self.handle)
            self.handle = None

    def __enter__(self) -> RemoteFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def memory_file(name: str, data: np.ndarray) -> Iterator[str]:
    """``data`` (a contiguous uint8 array, not copied) as the GDAL file ``name`` (under /vsimem/) for
    the duration of the block; the array must not change meanwhile."""
    lib = _required()
    if not name.startswith("/vsimem/"):
        raise ValueError(f"an in-memory file name starts with /vsimem/, not {name!r}")
    if data.dtype != np.uint8 or not data.flags.c_contiguous:
        raise ValueError("data must be a contiguous uint8 array")
    handle = lib.VSIFileFromMemBuffer(name.encode(), data.ctypes.data, data.size, 0)
    if not handle:
        raise _failure(lib, f"cannot create {name}")
    lib.VSIFCloseL(handle)
    try:
        yield name
    finally:
        lib.VSIUnlink(name.encode())
