"""Name and tag patterns (literal SQL wildcards, case-insensitivity), time ranges and paging."""

from __future__ import annotations

import pytest

import geocube_dask as gd
from geocube_dask.catalog.db.filters import check_paging, check_time_range, like_pattern


def test_like_pattern_escapes_sql_wildcards() -> None:
    assert like_pattern("a*b?c") == "a%b_c"
    assert like_pattern("100%_x!") == "100!%!_x!!"
    assert like_pattern("back\\slash") == "back\\slash"


NAMES = ["plain", "with%percent", "with_underscore", "withXunderscore", "back\\slash", "bang!", "ÉCOLE-été"]


@pytest.fixture
def named(gc):
    for i, name in enumerate(NAMES):
        tags = {"k": name.replace("-", " ") if "É" in name else name}
        gc.create_record(f"r{i}", "2024-01-01", tags=tags)
    return gc


PATTERNS = [
    ("with%percent", ["with%percent"]),
    ("with%*", ["with%percent"]),
    ("with_*", ["with_underscore"]),
    ("with?underscore", ["with_underscore", "withXunderscore"]),
    ("back\\slash", ["back\\slash"]),
    ("back\\*", ["back\\slash"]),
    ("bang!", ["bang!"]),
    ("*!", ["bang!"]),
    ("%", []),
    ("_lain", []),
    ("*", NAMES),
]


def test_tag_value_patterns_match_literally(named) -> None:
    for pattern, expected in PATTERNS:
        found = sorted(r.tags["k"] for r in named.list_records(tags={"k": pattern}))
        assert found == sorted(e.replace("-", " ") if "É" in e else e for e in expected), pattern


def test_case_insensitive_names(gc) -> None:
    gc.create_record("S2A_X", "2024-01-01")
    gc.create_record("s2a_x", "2024-01-02")
    assert len(gc.list_records(name="s2a_x")) == 1
    assert len(gc.list_records(name="s2a_x", case_insensitive=True)) == 2
    assert len(gc.list_records(name="S2?_*", case_insensitive=True)) == 2


def test_case_insensitive_tag_values_with_non_ascii(gc) -> None:
    gc.create_record("a", "2024-01-01", tags={"site": "ÉCOLE Été"})
    gc.create_record("b", "2024-01-01", tags={"site": "école été"})
    assert len(gc.list_records(tags={"site": "école été"})) == 1
    assert len(gc.list_records(tags={"site": "école été"}, case_insensitive=True)) == 2
    assert len(gc.list_records(tags={"site": "ÉC*"}, case_insensitive=True)) == 2
    assert len(gc.list_records(tags={"SITE": None}, case_insensitive=True)) == 0  # keys match exactly


def test_several_tag_keys_are_anded_and_none_means_exists(gc) -> None:
    gc.create_record("a", "2024-01-01", tags={"x": "1", "y": "2"})
    gc.create_record("b", "2024-01-01", tags={"x": "1"})
    gc.create_record("c", "2024-01-01", tags={"y": "2"})
    assert [r.name for r in gc.list_records(tags={"x": "1", "y": None})] == ["a"]
    assert sorted(r.name for r in gc.list_records(tags={"y": None})) == ["a", "c"]
    assert gc.list_records(tags={"z": None}) == []


def test_absurd_limits_and_pages(gc) -> None:
    for limit in (0, -1, 1.5, "10", True, 10**12):
        with pytest.raises(gd.InvalidArgument, match="limit"):
            gc.list_records(limit=limit)
    for page in (-1, 1.0, "2", None, False):
        with pytest.raises(gd.InvalidArgument, match="page"):
            gc.list_records(limit=10, page=page)


def test_paging_rules() -> None:
    assert check_paging(None, 0) == (None, 0)
    assert check_paging(10, 3) == (10, 30)
    with pytest.raises(gd.InvalidArgument, match="needs a limit"):
        check_paging(None, 2)
    with pytest.raises(gd.InvalidArgument, match="beyond"):
        check_paging(1_000_000, 10**12)


def test_time_ranges() -> None:
    start, end = check_time_range(("2024-01-01", None))
    assert start.tzinfo is not None and end is None
    for bad in ("2024-01-01", ("2024-02-01", "2024-01-01"), ("2024-01-01", "2024-01-01"), ("x", None), (1, 2, 3)):
        with pytest.raises(gd.InvalidArgument):
            check_time_range(bad)


def test_bad_tag_filters(gc) -> None:
    for tags in (["a"], {"": "x"}, {1: "x"}, {"k": 3}):
        with pytest.raises(gd.InvalidArgument):
            gc.list_records(tags=tags)
