"""Where the tiles of every image of a multi-image TIFF (a MUCOG) are, read once from the file's header.

A MUCOG keeps all its IFDs, tag values and tile offset arrays before the tile data (see
``geocube_dask.consolidate.mucog``), so its whole header is one prefix of the file: it is fetched
through GDAL's VSI in a few growing reads (256 KiB, then four times more each time something lies
beyond) and parsed with tifffile. The result — the header bytes and, per image and level, the
position of its TileOffsets array and its tiles' offsets and byte counts — lets a task fetch the tiles
many images need in a few large ranges and hand GDAL a compact copy of the file to decode them
(:mod:`geocube_dask.graph.batch`).

A process keeps the indexes it read (up to :data:`INDEX_CACHE_BYTES`, least recently used first out):
every tile of a map and every compute over a MUCOG would otherwise fetch and parse its whole header
again (a tenth of a second for a year of dates). As the open datasets are, a local file is checked
against its inode, size and modification time; a remote object is taken as immutable until
:func:`~geocube_dask.graph.chunk.clear_caches`.

Files whose header is not one prefix (IFDs after tile data), that carry GDAL's "ghost" structural
metadata (tile leaders and trailers, which a compact copy would not keep) or whose tile offsets are
16-bit are not indexed (:func:`read_tiff_index` returns None) and are read image by image as before.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import tifffile

from .lru import ByteLRU
from .read import file_signature
from .vsi import RemoteFile

FIRST_READ = 256 * 1024  # the header of a MUCOG of a few hundred records: one request
GROWTH = 4
TILE_OFFSETS, TILE_BYTE_COUNTS = 324, 325
GHOST = b"GDAL_STRUCTURAL_METADATA_SIZE="
# TIFF types of TileOffsets: LONG and LONG8 (SHORT offsets cannot point past a compact copy's end)
OFFSET_TYPES = {4: "u4", 16: "u8"}
PARSE_ERRORS = (tifffile.TiffFileError, ValueError, struct.error, KeyError, IndexError, TypeError)
INDEX_CACHE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class IfdTiles:
    """One image level (IFD): its tiles and where its TileOffsets values are in the file."""

    ifd: int  # position of the IFD
    shape: tuple[int, int]  # (height, width)
    tile: tuple[int, int]  # (height, width)
    planes: int  # tile planes: the bands when stored separately, else 1
    offsets_at: int  # position of the TileOffsets values (in the IFD entry when they fit there)
    offsets_dtype: str  # their numpy type, with the file's byte order
    offsets: np.ndarray  # int64 (planes × tiles), plane after plane
    counts: np.ndarray  # int64, byte counts; 0 = empty tile

    @property
    def tiles_across(self) -> int:
        return -(-self.shape[1] // self.tile[1])

    @property
    def tiles_per_plane(self) -> int:
        return self.tiles_across * -(-self.shape[0] // self.tile[0])


@dataclass(frozen=True)
class TiffIndex:
    """The header of a multi-image TIFF and the tiles of its images.

    ``metadata``: the file's first bytes, holding every IFD and tag value; ``images``: per IFD of the
    main chain (GDAL's ``GTIFF_DIR:n`` is ``images[n - 1]``) its levels, full resolution first, then
    its SubIFDs (overviews) in file order.
    """

    metadata: np.ndarray
    images: tuple[tuple[IfdTiles, ...], ...]

    def level(self, number: int, shape: tuple[int, int]) -> IfdTiles | None:
        """Level of image ``GTIFF_DIR:number`` whose (height, width) is ``shape``, or None."""
        if not 1 <= number <= len(self.images):
            return None
        return next((lv for lv in self.images[number - 1] if lv.shape == shape), None)

    @property
    def nbytes(self) -> int:
        return self.metadata.nbytes + sum(lv.offsets.nbytes + lv.counts.nbytes for im in self.images for lv in im)


class _HeaderReader(io.RawIOBase):
    """A read-only file over a VSI file that fetches what is read: a growing prefix, or small pieces
    far beyond it."""

    def __init__(self, remote: RemoteFile) -> None:
        super().__init__()
        self.remote = remote
        self.size = remote.size
        self.pos = 0
        self.prefix = np.empty(0, np.uint8)
        self.pieces: list[tuple[int, np.ndarray]] = []
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.get(self.pos, len(buffer))
        n = len(data)
        memoryview(buffer).cast("B")[:n] = data.tobytes()
        self.pos += n
        return n

    def get(self, offset: int, n: int) -> np.ndarray:
        """Bytes [offset, offset + n) (fewer at the end of the file), fetched if needed."""
        n = max(0, min(n, self.size - offset))
        end = offset + n
        if end <= self.prefix.size:
            return self.prefix[offset:end]
        for start, piece in self.pieces:
            if start <= offset and end <= start + piece.size:
                return piece[offset - start:end - start]
        if offset <= GROWTH * max(self.prefix.size, FIRST_READ):
            self.extend_prefix(max(end, GROWTH * self.prefix.size, FIRST_READ))
            return self.prefix[offset:end]
        length = min(max(n, FIRST_READ), self.size - offset)
        (piece,) = self.remote.read_ranges([(offset, length)])
        self.requests += 1
        self.pieces.append((offset, piece))
        return piece[:n]

    def extend_prefix(self, end: int) -> None:
        """Make the prefix hold the file's first ``end`` bytes."""
        end = min(end, self.size)
        have = self.prefix.size
        if end <= have:
            return
        grown = np.empty(end, np.uint8)
        grown[:have] = self.prefix
        self.remote.read_ranges([(have, end - have)], out=grown[have:])
        self.requests += 1
        self.prefix = grown


def read_tiff_index(path: str) -> TiffIndex | None:
    """The tile index of the TIFF GDAL opens as ``path`` (any VSI path), or None if its images cannot be
    read in batches (see the module's docstring). Raises OSError when the file cannot be read."""
    with RemoteFile(path) as remote:
        reader = _HeaderReader(remote)
        start = reader.get(0, 64).tobytes()
        if GHOST in start:
            return None
        try:
            with tifffile.TiffFile(reader) as tif:
                return _index(tif, reader)
        except PARSE_ERRORS:
            return None


def _index(tif: tifffile.TiffFile, reader: _HeaderReader) -> TiffIndex | None:
    order = tif.byteorder
    images, meta_end = [], 0
    for page in tif.pages:
        levels = []
        for ifd in [page, *(page.pages or [])]:
            if not isinstance(ifd, tifffile.TiffPage) or not ifd.is_tiled or TILE_OFFSETS not in ifd.tags:
                return None
            tag = ifd.tags[TILE_OFFSETS]
            kind = OFFSET_TYPES.get(int(tag.dtype))
            if kind is None:
                return None
            planes = ifd.samplesperpixel if int(ifd.planarconfig) == 2 else 1
            offsets = np.asarray(ifd.dataoffsets, dtype=np.int64)
            counts = np.asarray(ifd.databytecounts, dtype=np.int64)
            level = IfdTiles(ifd.offset, (ifd.imagelength, ifd.imagewidth), (ifd.tilelength, ifd.tilewidth),
                             planes, tag.valueoffset, order + kind, offsets, counts)
            if offsets.size != planes * level.tiles_per_plane or counts.size != offsets.size:
                return None
            levels.append(level)
            entry_end = max(t.offset for t in ifd.tags) + tif.tiff.tagsize + tif.tiff.offsetsize
            meta_end = max(meta_end, entry_end, *(t.valueoffset + t.valuebytecount for t in ifd.tags))
        images.append(tuple(levels))
    if not images:
        return None
    used = [lv.offsets[lv.counts > 0] for image in images for lv in image]
    data_start = min((int(o.min()) for o in used if o.size), default=meta_end)
    if meta_end > data_start:  # IFDs or values among the tiles: not one header prefix
        return None
    reader.extend_prefix(data_start)
    return TiffIndex(reader.prefix[:data_start].copy(), tuple(images))


_indexes = ByteLRU(INDEX_CACHE_BYTES)
_MISSING = object()


def cached_tiff_index(path: str, uri: str, env: tuple[tuple[str, str], ...] = ()) -> TiffIndex | None:
    """:func:`read_tiff_index` of ``path`` (the GDAL path of ``uri``), read once per process while ``uri``
    is unchanged (see the module's docstring); ``env``, the GDAL settings it is read with, is part of the
    key. A failed read is not kept."""
    key = (uri, env, file_signature(uri))
    index = _indexes.get(key, _MISSING)
    if index is _MISSING:
        index = read_tiff_index(path)
        _indexes.put(key, index, 0 if index is None else index.nbytes, INDEX_CACHE_BYTES)
    return index


def clear_tiff_indexes() -> None:
    """Forget the indexes this process read."""
    _indexes.clear()
