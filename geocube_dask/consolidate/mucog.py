"""MUCOG assembly: several single-record COGs become one (Big)TIFF, their tiles copied byte for byte.

A MUCOG holds one image per record, all on the same grid, so that a time series is one contiguous
read. The file is laid out as::

    header | record IFDs | overview IFDs, level by level | tag values | tile offsets/byte counts | tiles

- The records' IFDs form the main IFD chain, in the order given: GDAL opens record *i* (1-based) as
  ``GTIFF_DIR:i:path``.
- Each record's overviews are *SubIFDs* of its IFD (TIFF tag 330, NewSubfileType 1), as in the
  reference implementation: GDAL sees them as that record's overviews (``ds.overviews(1)``) and they do
  not take a GTIFF_DIR number. (Overviews chained after the records would be numbered as directories
  and would not be tied to their record.)
- Tile data comes last, in the order of an interlacing pattern
  (:mod:`geocube_dask.consolidate.interlacing`). Empty tiles (byte count 0 in the source) stay empty.
- Classic TIFF when everything fits in 4 GiB, BigTIFF otherwise (or when asked).

Every tag of a source IFD is copied as it is (georeferencing, nodata, GDAL metadata, compression,
predictor, LERC parameters…) except the ones that hold file positions, which are rewritten (tile
offsets and byte counts, SubIFDs) or dropped (EXIF/GPS directory pointers). No tile is decoded or
re-encoded, and no GDAL "ghost" structural metadata is written, so GDAL reads tiles without block
leaders or trailers.

Sources must be local tiled TIFFs with one full-resolution IFD followed by its reduced-resolution
IFDs (what GDAL's COG driver writes), without internal masks (use a nodata value), sharing the grid,
the data type, the band count and interleaving, the tile size and the overview levels.
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

import tifffile

from ..errors import InvalidArgument, UnreadableFile
from .interlacing import block_order, parse_pattern

# TIFF tag codes
NEW_SUBFILE_TYPE = 254
STRIP_OFFSETS, STRIP_BYTE_COUNTS = 273, 279
TILE_OFFSETS, TILE_BYTE_COUNTS = 324, 325
SUB_IFDS = 330
GEO_TAGS = (33550, 33922, 34264, 34735, 34736, 34737)  # pixel scale, tie points, transformation, GeoKeys
POINTER_TAGS = (34665, 34853, 40965)  # EXIF, GPS and interoperability IFDs: positions we cannot keep

# TIFF field types and their sizes
SHORT, LONG, IFD, LONG8, IFD8 = 3, 4, 13, 16, 18
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
REDUCED_IMAGE = 1
CLASSIC_LIMIT = 2**32 - 1
OPEN_FILES = 256  # source files kept open at once while copying tiles


@dataclass(frozen=True)
class MucogInfo:
    """The structure of a MUCOG file.

    ``levels``: (height, width) of each level, 0 = full resolution; ``tiles``: tiles per level and
    plane; ``planes``: ``bands`` when bands are stored separately (PlanarConfiguration 2), else 1;
    ``order``: every non-empty tile as (record, plane, level, tile) in the order of its bytes in the
    file (records 0-based; tiles numbered row by row).
    """

    path: str
    records: int
    bands: int
    planes: int
    levels: tuple[tuple[int, int], ...]
    tile_shape: tuple[int, int]
    tiles: tuple[int, ...]
    bigtiff: bool
    size: int
    order: tuple[tuple[int, int, int, int], ...]

    def subdataset(self, record: int) -> str:
        """GDAL's name of record ``record`` (0-based): ``GTIFF_DIR:<record + 1>:<path>``."""
        if not 0 <= record < self.records:
            raise InvalidArgument(f"record index {record} is outside [0, {self.records}) for {self.path}")
        return f"GTIFF_DIR:{record + 1}:{self.path}"


@dataclass(frozen=True)
class _Tag:
    code: int
    type: int
    count: int
    value: bytes  # raw bytes in the file's byte order


@dataclass(frozen=True)
class _SourceIfd:
    tags: tuple[_Tag, ...]  # copied tags (no positions)
    shape: tuple[int, int]
    offsets: tuple[int, ...]
    bytecounts: tuple[int, ...]


@dataclass(frozen=True)
class _Source:
    path: str
    byteorder: str
    ifds: tuple[_SourceIfd, ...]  # full resolution, then overviews
    structure: tuple  # what must match between sources (see _read_source)
    grid: tuple[bytes, ...]  # raw georeferencing tags


def _read_source(path: str) -> _Source:
    """A source COG's IFDs (tags, tile positions), checked to be a tiled single image with overviews."""
    try:
        tif = tifffile.TiffFile(path)
    except (OSError, tifffile.TiffFileError, ValueError) as exc:
        raise UnreadableFile(f"cannot read {path} as a TIFF ({exc}): give the COGs written for each record") from None
    with tif:
        pages = list(tif.pages)
        if not pages:
            raise UnreadableFile(f"{path} holds no image")
        ifds = []
        for n, page in enumerate(pages):
            kind = "full-resolution image" if n == 0 else "overview"
            expected = 0 if n == 0 else REDUCED_IMAGE
            if page.subfiletype != expected:
                raise InvalidArgument(
                    f"{path}: IFD {n} has NewSubfileType {page.subfiletype} where a {kind} ({expected}) is expected; "
                    "only a full-resolution image followed by its overviews can be assembled (no internal masks: "
                    "use a nodata value)"
                )
            if not page.is_tiled:
                raise InvalidArgument(f"{path}: IFD {n} is not tiled; write the records as COGs")
            if SUB_IFDS in page.tags:
                raise InvalidArgument(f"{path}: IFD {n} has SubIFDs; give single-record COGs, not MUCOGs")
            tags = []
            for tag in page.tags:
                if tag.code in (NEW_SUBFILE_TYPE, TILE_OFFSETS, TILE_BYTE_COUNTS, *POINTER_TAGS):
                    continue
                if tag.code in (STRIP_OFFSETS, STRIP_BYTE_COUNTS) or int(tag.dtype) in (IFD, IFD8):
                    raise InvalidArgument(f"{path}: tag {tag.code} holds file positions and cannot be copied")
                if int(tag.dtype) not in TYPE_SIZES:
                    raise InvalidArgument(f"{path}: tag {tag.code} has an unknown TIFF type {int(tag.dtype)}")
                tif.filehandle.seek(tag.valueoffset)
                raw = tif.filehandle.read(tag.valuebytecount)
                tags.append(_Tag(tag.code, int(tag.dtype), tag.count, raw))
            ifds.append(_SourceIfd(
                tuple(tags), (page.imagelength, page.imagewidth),
                tuple(int(v) for v in page.dataoffsets), tuple(int(v) for v in page.databytecounts),
            ))
        first = pages[0]
        structure = (
            tuple(i.shape for i in ifds), (first.tilelength, first.tilewidth), first.samplesperpixel,
            int(first.planarconfig), first.bitspersample, int(first.sampleformat),
        )
        grid = tuple(_raw(ifds[0], c) for c in GEO_TAGS)
        return _Source(path, tif.byteorder, tuple(ifds), structure, grid)


def _raw(ifd: _SourceIfd, code: int) -> bytes:
    return next((t.value for t in ifd.tags if t.code == code), b"")


_STRUCTURE_NAMES = ("level sizes", "tile size", "band count", "band interleaving", "bits per sample", "sample format")


def _check_compatible(sources: Sequence[_Source]) -> None:
    first = sources[0]
    for src in sources[1:]:
        if src.byteorder != first.byteorder:
            raise InvalidArgument(f"{src.path} and {first.path} have different byte orders; write them alike")
        for name, a, b in zip(_STRUCTURE_NAMES, first.structure, src.structure, strict=True):
            if a != b:
                raise InvalidArgument(
                    f"{src.path} does not match {first.path}: {name} {b} vs {a}; the records of a MUCOG share the "
                    "grid, data type, bands, tile size and overview levels"
                )
        if src.grid != first.grid:
            raise InvalidArgument(f"{src.path} and {first.path} are not on the same grid (georeferencing differs)")


class _Writer:
    """Byte layout of the output: header, IFD entries and out-of-line values, in one order of the file."""

    def __init__(self, byteorder: str, bigtiff: bool) -> None:
        self.bo = byteorder
        self.big = bigtiff
        self.inline = 8 if bigtiff else 4
        self.entry = 20 if bigtiff else 12
        self.header = 16 if bigtiff else 8
        self.offset_type = LONG8 if bigtiff else LONG

    def ifd_size(self, ntags: int) -> int:
        return (8 + 20 * ntags + 8) if self.big else (2 + 12 * ntags + 4)

    def pack_header(self, first_ifd: int) -> bytes:
        magic = b"II" if self.bo == "<" else b"MM"
        if self.big:
            return magic + struct.pack(self.bo + "HHHQ", 43, 8, 0, first_ifd)
        return magic + struct.pack(self.bo + "HI", 42, first_ifd)

    def pack_ints(self, values: Sequence[int], type_: int) -> bytes:
        fmt = {SHORT: "H", LONG: "I", IFD: "I", LONG8: "Q", IFD8: "Q"}[type_]
        return struct.pack(f"{self.bo}{len(values)}{fmt}", *values)

    def pack_ifd(self, entries: Sequence[tuple[int, int, int, bytes]], next_ifd: int) -> bytes:
        """An IFD; ``entries`` are (code, type, count, inline value or packed offset), sorted by code."""
        count_fmt, head = ("Q", "Q") if self.big else ("I", "H")
        out = [struct.pack(self.bo + head, len(entries))]
        for code, type_, count, field in entries:
            out.append(struct.pack(f"{self.bo}HH{count_fmt}", code, type_, count) + field.ljust(self.inline, b"\0"))
        out.append(struct.pack(self.bo + ("Q" if self.big else "I"), next_ifd))
        return b"".join(out)

    def pack_offset(self, offset: int) -> bytes:
        return struct.pack(self.bo + ("Q" if self.big else "I"), offset)


def _align(n: int, to: int) -> int:
    return -(-n // to) * to


@dataclass
class _Plan:
    """Where everything goes in the output file."""

    bigtiff: bool
    metadata: bytes  # header + IFDs + tag values + tile arrays
    copies: list[tuple[int, int, int]]  # (record, source offset, byte count) in file order
    order: list[tuple[int, int, int, int]]
    size: int


def _plan(sources: Sequence[_Source], segments: tuple, bigtiff: bool) -> _Plan:
    """Lay the file out: positions of IFDs, values and tiles, and the packed metadata part."""
    w = _Writer(sources[0].byteorder, bigtiff)
    nrec, nlev = len(sources), len(sources[0].ifds)
    tiles = _tiles_per_level(sources[0])
    planes = _planes(sources[0])
    ifd_keys = [(r, 0) for r in range(nrec)] + [(r, z) for z in range(1, nlev) for r in range(nrec)]

    # 1. IFD positions (tag counts are known: copied tags + NewSubfileType for overviews + 2 tile arrays
    #    + SubIFDs for records that have overviews)
    def ntags(r: int, z: int) -> int:
        return len(sources[r].ifds[z].tags) + 2 + (1 if z else 0) + (1 if z == 0 and nlev > 1 else 0)

    pos = w.header
    ifd_pos = {}
    for key in ifd_keys:
        ifd_pos[key] = pos
        pos += w.ifd_size(ntags(*key))

    # 2. out-of-line tag values, then 3. tile arrays: assign positions
    value_pos: dict[tuple[int, int, int], int] = {}  # (r, z, code) -> position
    for r, z in ifd_keys:
        for tag in sources[r].ifds[z].tags:
            if len(tag.value) > w.inline:
                pos = _align(pos, w.inline)
                value_pos[(r, z, tag.code)] = pos
                pos += len(tag.value)
        if z == 0 and nlev > 1 and (nlev - 1) * w.inline > w.inline:
            pos = _align(pos, w.inline)
            value_pos[(r, z, SUB_IFDS)] = pos
            pos += (nlev - 1) * w.inline
    array_bytes = {z: tiles[z] * planes * w.inline for z in range(nlev)}
    for r, z in ifd_keys:
        if array_bytes[z] > w.inline:
            for code in (TILE_OFFSETS, TILE_BYTE_COUNTS):
                pos = _align(pos, w.inline)
                value_pos[(r, z, code)] = pos
                pos += array_bytes[z]

    # 4. tiles in pattern order
    new_offsets = {key: [0] * (tiles[key[1]] * planes) for key in ifd_keys}
    copies, order = [], []
    for r, b, z, t in block_order(segments, nrec, planes, tiles):
        src = sources[r].ifds[z]
        i = b * tiles[z] + t
        count = src.bytecounts[i]
        if count:
            new_offsets[(r, z)][i] = pos
            copies.append((r, src.offsets[i], count))
            order.append((r, b, z, t))
            pos += count
    size = pos
    if not bigtiff and size > CLASSIC_LIMIT:
        return _plan(sources, segments, True)

    # 5. pack the metadata part
    chunks: list[tuple[int, bytes]] = [(0, w.pack_header(ifd_pos[(0, 0)]))]
    for r, z in ifd_keys:
        src = sources[r].ifds[z]
        values = [(t.code, t.type, t.count, t.value) for t in src.tags]
        if z:
            values.append((NEW_SUBFILE_TYPE, LONG, 1, w.pack_ints([REDUCED_IMAGE], LONG)))
        elif nlev > 1:
            sub = [ifd_pos[(r, level)] for level in range(1, nlev)]
            values.append((SUB_IFDS, IFD8 if bigtiff else IFD, len(sub), w.pack_ints(sub, IFD8 if bigtiff else IFD)))
        n_arr = tiles[z] * planes
        values.append((TILE_OFFSETS, w.offset_type, n_arr, w.pack_ints(new_offsets[(r, z)], w.offset_type)))
        values.append((TILE_BYTE_COUNTS, w.offset_type, n_arr, w.pack_ints(src.bytecounts, w.offset_type)))
        fields = []
        for code, type_, count, value in sorted(values, key=lambda v: v[0]):
            if len(value) > w.inline:  # out of line: the entry holds the value's position
                chunks.append((value_pos[(r, z, code)], value))
                value = w.pack_offset(value_pos[(r, z, code)])
            fields.append((code, type_, count, value))
        # records form the main chain; overviews are reached through their record's SubIFDs only
        next_ifd = ifd_pos[(r + 1, 0)] if z == 0 and r + 1 < nrec else 0
        chunks.append((ifd_pos[(r, z)], w.pack_ifd(fields, next_ifd)))
    data_start = size - sum(c for _, _, c in copies)
    meta = bytearray(data_start)
    for at, blob in chunks:
        meta[at:at + len(blob)] = blob
    return _Plan(bigtiff, bytes(meta), copies, order, size)


def _tiles_per_level(src: _Source) -> tuple[int, ...]:
    th, tw = src.structure[1]
    return tuple(-(-h // th) * -(-w // tw) for h, w in (i.shape for i in src.ifds))


def _planes(src: _Source) -> int:
    return src.structure[2] if src.structure[3] == 2 else 1


class _Handles:
    """Source files opened on demand, the least recently used closed beyond ``OPEN_FILES``."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = paths
        self.open: OrderedDict[int, BinaryIO] = OrderedDict()

    def get(self, r: int) -> BinaryIO:
        fh = self.open.get(r)
        if fh is None:
            if len(self.open) >= OPEN_FILES:
                self.open.popitem(last=False)[1].close()
            fh = self.open[r] = open(self.paths[r], "rb")  # noqa: SIM115 - closed by close()
        else:
            self.open.move_to_end(r)
        return fh

    def close(self) -> None:
        for fh in self.open.values():
            fh.close()
        self.open.clear()


def _copy_tiles(plan: _Plan, paths: Sequence[str], out: BinaryIO) -> None:
    """Copy every non-empty tile's bytes from its source, in the planned order."""
    handles = _Handles(paths)
    try:
        for r, offset, count in plan.copies:
            fh = handles.get(r)
            fh.seek(offset)
            data = fh.read(count)
            if len(data) != count:
                raise UnreadableFile(f"{paths[r]} is truncated: a tile at byte {offset} is missing")
            out.write(data)
    finally:
        handles.close()


def assemble_mucog(
    cog_paths: Sequence[str], out_path: str, pattern: str = "mucog", *, bigtiff: bool | None = None
) -> MucogInfo:
    """Assemble single-record COGs (in record order) into the MUCOG ``out_path``; return its structure.

    ``pattern``: interlacing pattern or preset name; ``bigtiff``: None = only when the file would not
    fit in 4 GiB, True/False to force. Raises InvalidArgument (bad pattern, incompatible sources) before
    writing anything, UnreadableFile for a missing or corrupt source. The output is written in place:
    write to a temporary name and rename if readers may look at ``out_path`` meanwhile.
    """
    segments = parse_pattern(pattern)
    if isinstance(cog_paths, str | bytes) or not isinstance(cog_paths, Sequence) or not cog_paths:
        raise InvalidArgument("cog_paths must be a non-empty list of COG paths, one per record")
    paths = [os.fspath(p) for p in cog_paths]
    out_path = os.fspath(out_path)
    if any(os.path.abspath(p) == os.path.abspath(out_path) for p in paths):
        raise InvalidArgument(f"the output {out_path} is also one of the sources: write it elsewhere")
    if bigtiff not in (None, True, False):
        raise InvalidArgument(f"bigtiff must be None (automatic), True or False, not {bigtiff!r}")
    sources = [_read_source(p) for p in paths]
    _check_compatible(sources)
    plan = _plan(sources, segments, bool(bigtiff))
    if bigtiff is False and plan.bigtiff:
        raise InvalidArgument(f"{out_path} would be {plan.size} bytes, over the 4 GiB of a classic TIFF: allow BigTIFF")
    with open(out_path, "wb") as out:
        out.write(plan.metadata)
        _copy_tiles(plan, paths, out)
    first = sources[0]
    return MucogInfo(
        path=out_path, records=len(sources), bands=first.structure[2], planes=_planes(first),
        levels=first.structure[0], tile_shape=first.structure[1], tiles=_tiles_per_level(first),
        bigtiff=plan.bigtiff, size=plan.size, order=tuple(plan.order),
    )


def read_mucog_layout(path: str) -> MucogInfo:
    """The structure of a MUCOG (or any tiled TIFF whose overviews are SubIFDs) read back from the file.

    Independent of :func:`assemble_mucog` (reads the file with tifffile), so tests can check the
    interlacing of what was written. Raises UnreadableFile if ``path`` is not a readable TIFF.
    """
    path = os.fspath(path)
    try:
        tif = tifffile.TiffFile(path)
    except (OSError, tifffile.TiffFileError, ValueError) as exc:
        raise UnreadableFile(f"cannot read {path} as a TIFF ({exc})") from None
    with tif:
        records = list(tif.pages)
        first = records[0]
        planes = first.samplesperpixel if int(first.planarconfig) == 2 else 1
        levels_of = [[page, *(page.pages or [])] for page in records]
        level_pages = levels_of[0]
        blocks = []
        for r, pages in enumerate(levels_of):
            if [(p.imagelength, p.imagewidth) for p in pages] != [(p.imagelength, p.imagewidth) for p in level_pages]:
                raise InvalidArgument(f"{path}: record {r} does not have the levels of record 0; not a MUCOG")
            for z, page in enumerate(pages):
                ntiles = len(page.dataoffsets) // planes
                for i, (offset, count) in enumerate(zip(page.dataoffsets, page.databytecounts, strict=True)):
                    if count:
                        blocks.append((int(offset), (r, i // ntiles, z, i % ntiles)))
        blocks.sort()
        return MucogInfo(
            path=path, records=len(records), bands=first.samplesperpixel, planes=planes,
            levels=tuple((p.imagelength, p.imagewidth) for p in level_pages),
            tile_shape=(first.tilelength, first.tilewidth),
            tiles=tuple(len(p.dataoffsets) // planes for p in level_pages),
            bigtiff=tif.is_bigtiff, size=os.path.getsize(path), order=tuple(b for _, b in blocks),
        )
