"""MUCOG interlacing patterns: the order in which a consolidated file's tile data is written.

Four levels: ``R`` (record), ``B`` (band), ``Z`` (overview level, 0 = full resolution) and ``T``
(tile). A *segment* lists all four, each once, outermost first, separated by ``>``. The ``Z`` of a
segment may be restricted to a range of overview levels:

- ``Z=a`` : level ``a`` only;
- ``Z=a:`` : levels ``a`` and above;
- ``Z=a:b``: levels ``a`` to ``b - 1`` (half-open, like a Python slice); ``Z=:b`` = ``Z=0:b``;
- ``Z``   : every level.

``T`` must come after ``Z`` (tiles are counted per overview level). A pattern is one or more segments
separated by ``;``; their ranges must not overlap and together must cover every level from 0 up. The
file's tile data is laid out segment after segment, in the order they are written; inside a segment
each level is walked in increasing order (records, bands and overview levels by index, tiles row by
row), the last level varying fastest. Levels a file does not have are skipped; ``B`` has a single value
in pixel-interleaved files.

Example (the default, ``mucog``): ``Z=0>T>R>B;Z=1:>R>T>B`` — at full resolution, tile by tile, the
blocks of every record side by side; then the overviews, level by level, record by record.
Presets: ``mucog`` and ``cog`` (``R>Z>T>B``: each record contiguous, like a file per record).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..errors import InvalidArgument

LEVELS = frozenset("RBZT")
PRESETS = {
    "mucog": "Z=0>T>R>B;Z=1:>R>T>B",
    "cog": "R>Z>T>B",
}
_Z_RANGE = re.compile(r"^Z(?:=(\d*)(:?)(\d*))?$")


@dataclass(frozen=True)
class Segment:
    """One ``;``-separated part: level order (outermost first) for overview levels [z_start, z_stop)."""

    order: tuple[str, ...]
    z_start: int
    z_stop: int | None  # None: no upper bound

    def covers(self, z: int) -> bool:
        """True if overview level ``z`` is laid out by this segment."""
        return self.z_start <= z and (self.z_stop is None or z < self.z_stop)


def _bad(pattern: str, why: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid interlacing pattern {pattern!r}: {why}. Example: 'Z=0>T>R>B;Z=1:>R>T>B' (levels R, B, Z, T "
        "each once per segment, outermost first; 'Z=a', 'Z=a:', 'Z=a:b' restrict overview levels), or "
        f"one of the presets {', '.join(PRESETS)}"
    )


def _segment(pattern: str, text: str) -> Segment:
    if not text:
        raise _bad(pattern, "a segment is empty (a stray ';'?)")
    parts = [p.strip() for p in text.split(">")]
    order = []
    z_start, z_stop = 0, None
    for part in parts:
        if part.startswith("Z"):
            m = _Z_RANGE.match(part)
            if not m:
                raise _bad(pattern, f"cannot read the level range {part!r}")
            start, colon, stop = m.groups()
            if start is None:  # plain "Z"
                pass
            elif colon:
                z_start = int(start) if start else 0
                z_stop = int(stop) if stop else None
            else:
                if not start or stop:
                    raise _bad(pattern, f"cannot read the level range {part!r}")
                z_start, z_stop = int(start), int(start) + 1
            order.append("Z")
        elif part in LEVELS:
            order.append(part)
        else:
            raise _bad(pattern, f"unknown level {part!r} in segment {text!r}")
    if sorted(order) != sorted(LEVELS):
        raise _bad(pattern, f"segment {text!r} must name each of R, B, Z, T exactly once")
    if order.index("T") < order.index("Z"):
        raise _bad(pattern, f"segment {text!r} puts T before Z, but tiles are counted per overview level")
    if z_stop is not None and z_stop <= z_start:
        raise _bad(pattern, f"segment {text!r} has an empty overview level range")
    return Segment(tuple(order), z_start, z_stop)


def parse_pattern(pattern: str) -> tuple[Segment, ...]:
    """Parse and validate a pattern (or preset name) into its segments, in the order they are written."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise InvalidArgument(f"an interlacing pattern is a non-empty string, not {pattern!r}")
    text = PRESETS.get(pattern.strip().lower(), pattern).replace(" ", "")
    segments = tuple(_segment(pattern, s) for s in text.split(";"))
    by_level = sorted(segments, key=lambda s: s.z_start)
    expected = 0
    for seg in by_level:
        if seg.z_start < expected:
            raise _bad(pattern, f"overview level {seg.z_start} is covered by two segments")
        if seg.z_start > expected:
            raise _bad(pattern, f"overview level {expected} is covered by no segment")
        if seg.z_stop is None:
            if seg is not by_level[-1]:
                raise _bad(pattern, f"overview levels from {seg.z_start} are covered by two segments")
            return segments
        expected = seg.z_stop
    raise _bad(pattern, f"overview levels from {expected} are covered by no segment (end with e.g. 'Z={expected}:')")


def normalize_pattern(pattern: str) -> str:
    """The pattern as stored: presets expanded, spaces removed (validated)."""
    parse_pattern(pattern)
    return PRESETS.get(pattern.strip().lower(), pattern).replace(" ", "")


def block_order(
    pattern: str | Sequence[Segment], records: int, bands: int, tiles: Sequence[int]
) -> Iterator[tuple[int, int, int, int]]:
    """Every block of a file as ``(record, band, level, tile)``, in the order the pattern lays them out.

    ``tiles[z]`` is the number of tiles of overview level ``z`` (0 = full resolution), so the file has
    ``len(tiles)`` levels; ``bands`` is 1 for pixel-interleaved files; tiles are numbered row by row.
    """
    segments = parse_pattern(pattern) if isinstance(pattern, str) else tuple(pattern)
    levels = len(tiles)
    for seg in segments:
        stop = levels if seg.z_stop is None else min(seg.z_stop, levels)
        ranges = {"R": range(records), "B": range(bands), "Z": range(seg.z_start, stop)}
        yield from _walk(seg.order, ranges, tiles, {})


def _walk(
    order: tuple[str, ...], ranges: dict[str, range], tiles: Sequence[int], index: dict[str, int]
) -> Iterator[tuple[int, int, int, int]]:
    if not order:
        yield index["R"], index["B"], index["Z"], index["T"]
        return
    level, rest = order[0], order[1:]
    values = range(tiles[index["Z"]]) if level == "T" else ranges[level]
    for v in values:
        index[level] = v
        yield from _walk(rest, ranges, tiles, index)
