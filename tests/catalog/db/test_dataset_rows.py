"""Row → entity conversion: cached data formats and JSON lists."""

from __future__ import annotations

import math

import pytest

import geocube_dask as gd
from geocube_dask.catalog.db.dataset_rows import _json_tuple, cached_dformat, check_status
from geocube_dask.entities import DatasetStatus

from ..helpers import prepared


def test_cached_dformats() -> None:
    a = cached_dformat("float32", "nan", 0.0, 1.0)
    assert a is cached_dformat("float32", "nan", 0.0, 1.0) and math.isnan(a.nodata)
    assert cached_dformat("int16", "-10000.0", 0.0, 1.0).nodata == -10000.0
    assert cached_dformat("uint8", None, 0.0, 1.0).nodata is None


def test_json_lists_become_tuples() -> None:
    assert _json_tuple("[[50,50],[25,25]]") == ((50, 50), (25, 25))
    assert _json_tuple("[0.1,2.0]") == (0.1, 2.0)


def test_status() -> None:
    assert check_status("TODELETE") is DatasetStatus.TODELETE
    with pytest.raises(gd.InvalidArgument, match="ACTIVE"):
        check_status("active")


def test_reads_match_what_was_added(gc, record, instance) -> None:
    added = gc.add_datasets([(record, instance, prepared("/a.tif"))])[0]
    assert gc.list_datasets() == [added] == [gc.get_dataset(added.id)]
