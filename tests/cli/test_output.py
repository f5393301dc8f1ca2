"""CLI output helpers (geocube_dask.cli.output): JSON values, formatting, timeseries rows, dask progress."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import dask.array as da
import numpy as np
import pytest
import typer
import xarray as xr
from rich.progress import Progress

from geocube_dask.cli import output as co
from geocube_dask.entities import Dataset, DatasetStatus, DFormat, Record


def test_jsonable() -> None:
    value = {"a": float("nan"), "b": np.float32(1.5), "c": (np.int64(2), math.inf), "d": np.arange(2),
             "e": datetime(2024, 1, 5, 11, 30, tzinfo=timezone(timedelta(hours=1)))}
    assert co.jsonable(value) == {"a": None, "b": 1.5, "c": [2, None], "d": [0, 1], "e": "2024-01-05T10:30:00Z"}
    json.dumps(co.jsonable(value), allow_nan=False)


def test_formatting() -> None:
    assert co.fmt_num(10000.0) == "10000" and co.fmt_num(0.25) == "0.25" and co.fmt_num(float("nan")) == "nan"
    assert co.fmt_num(None) == "none"
    assert co.fmt_dformat(DFormat("uint16", 0, 0, 10000)) == "uint16 nodata=0 [0, 10000]"
    assert co.fmt_time(np.datetime64("2024-01-05T10:30:00")) == "2024-01-05T10:30:00Z"
    assert co.fmt_time(datetime(2024, 1, 5)) == "2024-01-05T00:00:00Z"
    assert co.fmt_bytes(999) == "999 B" and co.fmt_bytes(34_700_000) == "34.7 MB"
    assert co.fmt_resolution((10, 0, 0, 0, -10, 0)) == "10" and co.fmt_resolution((10, 0, 0, 0, -20, 0)) == "10×20"
    assert co.fmt_value(None) == "" and co.fmt_value(0.123456789) == "0.123457"
    assert co.fmt_tags({"a": "1", "b": "x"}) == "a=1 b=x"
    assert co.fmt_catalogue("sqlite+pysqlite:////tmp/x/geocube.db") == "SQLite file /tmp/x/geocube.db"
    assert co.fmt_catalogue("postgresql+psycopg2://u:***@h/db") == "postgresql+psycopg2://u:***@h/db"


def test_entity_dicts() -> None:
    rec = Record("r1", "scene", datetime(2024, 1, 5, 10, 30, tzinfo=UTC), {"k": "v"}, 3)
    assert co.record_dict(rec) == {"id": "r1", "name": "scene", "datetime": "2024-01-05T10:30:00Z",
                                   "tags": {"k": "v"}, "aoi_id": 3}
    ds = Dataset(7, "r1", "i1", "/x.tif", "", (1, 2), DFormat("uint16", None, 0, 65535), 0.0, 1.0, 1.0,
                 DatasetStatus.ACTIVE, "EPSG:32631", (10, 0, 0, 0, -10, 0), 4, 3,
                 footprint_4326_wkt="POLYGON ((1 2, 3 2, 3 4, 1 4, 1 2))")
    d = co.dataset_dict(ds)
    assert d["status"] == "ACTIVE" and d["lonlat_bounds"] == (1.0, 2.0, 3.0, 4.0)
    assert d["dformat"]["nodata"] is None
    json.dumps(co.jsonable(d), allow_nan=False)


def _series(values: np.ndarray, fill: float) -> xr.DataArray:
    return xr.DataArray(
        values, dims=("time", "band"),
        coords={"time": np.array(["2024-01-05T10:30", "2024-01-06T10:30"], dtype="datetime64[ns]"),
                "band": ["B2", ""], "record_ids": ("time", ["a,b", "c"]), "record_names": ("time", ["n1,n2", "n3"])},
        attrs={"_FillValue": fill},
    )


def test_series_rows() -> None:
    rows = co.series_rows(_series(np.array([[0.1, np.nan], [0.30000001, 0.5]], dtype="float32"), np.nan))
    assert rows[0] == {"time": "2024-01-05T10:30:00Z", "record_ids": ["a", "b"], "record_names": ["n1", "n2"],
                       "values": {"B2": 0.1, "value": None}}
    assert rows[1]["values"] == {"B2": 0.3, "value": 0.5}
    ints = co.series_rows(_series(np.array([[0, 7], [3, 0]], dtype="uint16"), 0))
    assert [r["values"] for r in ints] == [{"B2": None, "value": 7}, {"B2": 3, "value": None}]
    table = co.series_table(rows, ["B2", "value"])
    assert [c.header for c in table.columns] == ["time", "records", "B2", "value"]


def test_output_json_mode_prints_only_json(capsys: pytest.CaptureFixture[str]) -> None:
    out = co.Output(as_json=True)
    out.show("people only")
    out.note("dim")
    out.emit({"x": float("nan")})
    assert json.loads(capsys.readouterr().out) == {"x": None}
    human = co.Output()
    human.emit({"x": 1})
    human.show("hello")
    assert capsys.readouterr().out == "hello\n"


def test_fail_prints_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    exc = co.fail("something\nwent   wrong")
    assert isinstance(exc, typer.Exit) and exc.exit_code == 1
    assert capsys.readouterr().err == "error: something went wrong\n"


def test_progress_and_dask_progress() -> None:
    out = co.Output()
    with out.progress("x", 3) as update:
        update(1, 3)
    with out.computing("sum"):
        assert int(da.ones(10, chunks=2).sum().compute()) == 10
    bar = Progress(disable=True)
    task = bar.add_task("t", total=None)
    with co.DaskProgress(bar, task):
        da.ones(8, chunks=2).sum().compute()
    done = bar.tasks[0]
    assert done.total is not None and done.completed == done.total > 0
