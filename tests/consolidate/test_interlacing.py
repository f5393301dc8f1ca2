"""MUCOG interlacing patterns: syntax, ranges, coverage and presets."""

from __future__ import annotations

import pytest

from geocube_dask.consolidate.interlacing import PRESETS, Segment, block_order, normalize_pattern, parse_pattern
from geocube_dask.errors import InvalidArgument


def test_default_pattern() -> None:
    segments = parse_pattern("Z=0>T>R>B;Z=1:>R>T>B")
    assert segments == (Segment(("Z", "T", "R", "B"), 0, 1), Segment(("Z", "R", "T", "B"), 1, None))
    assert segments[0].covers(0) and not segments[0].covers(1) and segments[1].covers(7)


@pytest.mark.parametrize(
    "pattern",
    ["R>B>Z>T", "Z>T>R>B", "R>Z=1:>T>B;R>Z=0>T>B", "Z=0:2>T>R>B;Z=2:>R>T>B", "Z=:1>T>R>B;Z=1:>R>T>B",
     "Z=0>T>R>B;Z=1>R>T>B;Z=2:>B>R>T", " Z=0 > T > R > B ; Z=1: > R > T > B ", "mucog", "COG"],
)
def test_valid_patterns(pattern: str) -> None:
    assert parse_pattern(pattern)
    assert " " not in normalize_pattern(pattern)


def test_segments_keep_the_written_order() -> None:
    segments = parse_pattern("R>Z=1:>T>B;R>Z=0>T>B")
    assert [(s.z_start, s.z_stop) for s in segments] == [(1, None), (0, 1)]


def test_presets_expand() -> None:
    assert normalize_pattern("mucog") == PRESETS["mucog"] == "Z=0>T>R>B;Z=1:>R>T>B"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("R>B>T", "exactly once"),
        ("R>B>Z>T>R", "exactly once"),
        ("R>B>Z>X", "unknown level"),
        ("Z=0>T>R>B", "no segment"),  # levels 1.. uncovered
        ("Z=1:>T>R>B", "level 0"),
        ("Z=0:>T>R>B;Z=1:>R>T>B", "two segments"),
        ("Z=0:3>T>R>B;Z=2:>R>T>B", "two segments"),
        ("Z=2:1>T>R>B", "empty"),
        ("Z=a>T>R>B", "cannot read"),
        ("Z=1:2:3>T>R>B", "cannot read"),
        ("", "non-empty"),
        ("R>B>Z>T;", "empty"),
        ("T>Z>R>B", "T before Z"),
        ("Z=0>R>B>T;T>R>B>Z=1:", "T before Z"),
    ],
)
def test_invalid_patterns(pattern: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_pattern(pattern)


# the block orders below are written out by hand with plain nested loops, as the pattern reads

TILES = (6, 2, 1)  # tiles per level: full resolution, overview 1, overview 2


def test_block_order_mucog() -> None:
    records, bands = 3, 1
    expected = [(r, 0, 0, t) for t in range(TILES[0]) for r in range(records)]
    expected += [(r, 0, z, t) for z in (1, 2) for r in range(records) for t in range(TILES[z])]
    assert list(block_order("mucog", records, bands, TILES)) == expected


def test_block_order_cog() -> None:
    records, bands = 3, 2
    expected = [
        (r, b, z, t) for r in range(records) for z in range(3) for t in range(TILES[z]) for b in range(bands)
    ]
    assert list(block_order("cog", records, bands, TILES)) == expected


def test_block_order_segments_in_written_order() -> None:
    records, bands = 2, 2
    expected = [(r, b, z, t) for z in (2,) for b in range(bands) for r in range(records) for t in range(TILES[z])]
    expected += [(r, b, z, t) for b in range(bands) for z in (0, 1) for t in range(TILES[z]) for r in range(records)]
    assert list(block_order("Z=2:>B>R>T;B>Z=:2>T>R", records, bands, TILES)) == expected


def test_block_order_skips_levels_the_file_lacks() -> None:
    assert list(block_order("Z=0>T>R>B;Z=1:3>R>T>B;Z=3:>R>T>B", 1, 1, (2,))) == [(0, 0, 0, 0), (0, 0, 0, 1)]
