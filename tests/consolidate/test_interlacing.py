"""MUCOG interlacing patterns: syntax, ranges, coverage and presets."""

from __future__ import annotations

import pytest

from geocube_dask.consolidate.interlacing import PRESETS, Segment, normalize_pattern, parse_pattern
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
    ],
)
def test_invalid_patterns(pattern: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_pattern(pattern)
