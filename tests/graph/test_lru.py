"""The byte-bounded LRU shared by the set-ups' and the tile indexes' caches."""

from __future__ import annotations

from geocube_dask.graph.lru import ByteLRU


def test_a_stored_none_is_told_from_a_missing_key() -> None:
    cache = ByteLRU(100)
    missing = object()
    cache.put(("none",), None, 0)
    assert cache.get(("none",), missing) is None and cache.get(("other",), missing) is missing


def test_the_budget_given_with_a_value_applies_from_then_on() -> None:
    cache = ByteLRU(100)
    cache.put(("a",), "A", 60)
    cache.put(("b",), "B", 30)
    cache.put(("c",), "C", 30, budget=50)  # 120 > 50: a then b go, c stays
    assert list(cache.items) == [("c",)] and cache.bytes == 30 and cache.max_bytes == 50
    cache.put(("d",), "D", 30)  # the budget given last still holds: 60 > 50
    assert list(cache.items) == [("d",)]
