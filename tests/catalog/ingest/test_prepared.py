"""PreparedDataset validation: the fast path accepts normal rows, the detailed one names what is wrong."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from geocube_dask.catalog.ingest.prepared import check_all_prepared, check_prepared
from geocube_dask.errors import InvalidArgument

from ..helpers import prepared


def test_normal_rows_pass() -> None:
    check_all_prepared([prepared(), replace(prepared(), transform=(10, 0, 300000, 0, -10, 5000000))])
    check_prepared(replace(prepared(), real_min=0, real_max=1, exponent=2), "row")  # ints are numbers too
    check_all_prepared([replace(prepared(), real_min=1.0, real_max=0.0)])  # a decreasing mapping


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"exponent": 0.0}, "exponent"),
        ({"exponent": math.nan}, "exponent"),
        ({"real_min": 1.0, "real_max": 1.0}, "real_min"),
        ({"real_max": True}, "real_max"),
        ({"bands": (1, 1)}, "distinct"),
        ({"bands": (1.0,)}, "band index"),
        ({"width": -3}, "width"),
        ({"height": 2.5}, "height"),
        ({"transform": (1.0, 0.0, math.inf, 0.0, -1.0, 0.0)}, "transform"),
        ({"overviews": ((10,),)}, "overviews"),
        ({"overviews": ((10, 0),)}, "overview height"),
        ({"crs": ""}, "crs"),
        ({"subdir": None}, "subdir"),
        ({"footprint_wkt": None}, "footprint_wkt"),
    ],
)
def test_bad_rows_are_named(change: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=f"dataset #1: .*{message}|{message}"):
        check_all_prepared([prepared(), replace(prepared(), **change)])
