"""The resampling set-ups' cache and budget (the set-ups themselves are checked through the chunks they
paint, in test_chunk.py and test_compiled.py)."""

from __future__ import annotations

import dask
import pytest

from geocube_dask.graph.setups import DEFAULT_CACHE_BYTES, SetupCache, cache_budget


def test_gather_cache_evicts_least_recently_used_beyond_the_byte_budget() -> None:
    cache = SetupCache(10**9)
    with dask.config.set({"geocube.cache-bytes": 100}):
        cache.put(("a",), "A", 40)
        cache.put(("b",), "B", 40)
        assert cache.get(("a",)) == "A"  # a becomes the most recently used
        cache.put(("c",), "C", 40)  # 120 > 100: b, the least recently used, goes
        assert list(cache.items) == [("a",), ("c",)] and cache.bytes == 80
        assert cache.max_bytes == 100
        assert cache.get(("b",)) is None
        cache.put(("a",), "other", 40)  # already there: kept as it was
        assert cache.get(("a",)) == "A" and cache.bytes == 80
        cache.put(("d",), "D", 500)  # larger than the budget: everything older goes, the newest stays
        assert list(cache.items) == [("d",)] and cache.bytes == 500
    cache.clear()
    assert cache.items == {} and cache.bytes == 0 and cache.get(("d",)) is None


@pytest.mark.parametrize(("configured", "budget"), [(12345, 12345), ("2 MiB", 2 * 2**20), ("1kB", 1000),
                                                    (None, DEFAULT_CACHE_BYTES)])
def test_cache_budget_comes_from_dask_config(configured: int | str | None, budget: int) -> None:
    with dask.config.set({"geocube.cache-bytes": configured}):
        assert cache_budget() == budget
    assert DEFAULT_CACHE_BYTES == 256 * 2**20


def test_on_a_distributed_worker_the_budget_is_a_quarter_of_its_memory_limit() -> None:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, memory_limit="1 GiB",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        assert client.submit(cache_budget, pure=False).result() == 2**30 // 4
        assert client.submit(cache_budget, "3 MiB", pure=False).result() == 3 * 2**20  # the client's setting first
    assert cache_budget() == DEFAULT_CACHE_BYTES  # not on a worker
