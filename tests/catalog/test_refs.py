"""Entity-or-id arguments."""

from __future__ import annotations

import uuid

import pytest

from geocube_dask.catalog.refs import dataset_ids, record_ids, uuid_str, variable_key
from geocube_dask.entities import DFormat, Record, Variable
from geocube_dask.errors import InvalidArgument, NotFound


def test_uuid_ids() -> None:
    u = uuid.uuid4()
    assert uuid_str(u, "record") == str(u) == uuid_str(str(u).upper(), "record")
    with pytest.raises(NotFound, match="no record"):
        uuid_str("nope", "record")
    with pytest.raises(InvalidArgument):
        uuid_str(3, "record")


def test_lists() -> None:
    u = str(uuid.uuid4())
    rec = Record(u, "r", None, {})  # type: ignore[arg-type]
    assert record_ids([rec, u]) == [u]
    with pytest.raises(InvalidArgument):
        record_ids(u)
    assert dataset_ids([3, 1, 3]) == [3, 1]
    for bad in (3, [True], ["1"]):
        with pytest.raises(InvalidArgument):
            dataset_ids(bad)


def test_variable_keys() -> None:
    u = str(uuid.uuid4())
    var = Variable(u, "v", DFormat("uint8", 0.0, 0.0, 1.0), ("",))
    assert variable_key(var) == ("id", u) == variable_key(u)
    assert variable_key("ndvi") == ("name", "ndvi")
    with pytest.raises(InvalidArgument):
        variable_key("")
