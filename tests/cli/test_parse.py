"""Parsing of command-line values (geocube_dask.cli.parse)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import geocube_dask as gd
from geocube_dask.cli import parse as parse
from geocube_dask.errors import InvalidArgument, InvalidGeometry, NotFound


def test_pairs_and_tag_filters() -> None:
    assert parse.pairs(["a=1", "b=", "c=x=y"], "--meta") == {"a": "1", "b": "", "c": "x=y"}
    assert parse.pairs(None, "--meta") == {}
    with pytest.raises(InvalidArgument, match="--meta 'a': use KEY=VALUE"):
        parse.pairs(["a"], "--meta")
    with pytest.raises(InvalidArgument):
        parse.pairs(["=v"], "--tag")
    assert parse.tag_filters(["a=1", "b=x*", "c"]) == {"a": "1", "b": "x*", "c": None}
    with pytest.raises(InvalidArgument):
        parse.tag_filters(["=x"])


def test_numbers_bounds_point_resolution() -> None:
    assert parse.bounds("1,2,3,4") == (1.0, 2.0, 3.0, 4.0)
    for bad in ("1,2,3", "1,2,3,x", "3,2,1,4", "1,2,3,nan"):
        with pytest.raises(InvalidArgument, match="--bounds"):
            parse.bounds(bad)
    assert parse.point(" 5.5, 45 ") == (5.5, 45.0)
    with pytest.raises(InvalidArgument, match="LON,LAT"):
        parse.point("5.5")
    assert parse.resolution("20") == 20.0
    assert parse.resolution("10,20") == (10.0, 20.0)
    for bad in ("0", "-1", "a", "1,2,3"):
        with pytest.raises(InvalidArgument, match="--resolution"):
            parse.resolution(bad)


def test_area_is_a_bbox_or_wkt() -> None:
    assert parse.area("1,2,3,4").bounds == (1.0, 2.0, 3.0, 4.0)
    assert parse.area("POINT (1 2)").geom_type == "Point"
    with pytest.raises(InvalidGeometry, match="WKT"):
        parse.area("POLYGON((1 2")
    with pytest.raises(InvalidGeometry, match="empty"):
        parse.area("POLYGON EMPTY")


def test_time_range() -> None:
    assert parse.time_range(None) is None
    assert parse.time_range("2024-01-01,2024-02-01") == ("2024-01-01", "2024-02-01")
    assert parse.time_range("2024-01-01,") == ("2024-01-01", None)
    assert parse.time_range(",2024-02-01") == (None, "2024-02-01")
    assert parse.time_range("2024-02-29") == ("2024-02-29", "2024-03-01")
    for bad in ("yesterday", "a,b,c"):
        with pytest.raises(InvalidArgument, match="--time"):
            parse.time_range(bad)


def test_bands_and_dformat() -> None:
    assert parse.band_indexes("1,2,3") == (1, 2, 3)
    assert parse.band_indexes(None) is None
    with pytest.raises(InvalidArgument, match="--bands"):
        parse.band_indexes("1,b")
    assert parse.band_names("B2, B3") == ["B2", "B3"]
    assert parse.band_names("") == [""]
    assert parse.dformat("uint16,0,0,10000") == ("uint16", "0", "0", "10000")
    assert parse.dformat("float32,none,0,1") == ("float32", None, "0", "1")
    with pytest.raises(InvalidArgument, match="DTYPE,NODATA,MIN,MAX"):
        parse.dformat("uint16,0,0")


def test_record_names_and_dates_from_file_names() -> None:
    assert parse.record_name_for("/data/S2A_MSIL2A_20240105T103331.tif") == "S2A_MSIL2A_20240105T103331"
    assert parse.record_name_for("s3://bucket/a b/scene.v2.TIFF") == "scene_v2"
    assert parse.record_name_for("https://h/x/LC08%20scene.jp2?sig=1") == "LC08_scene"
    with pytest.raises(InvalidArgument, match="--record-name"):
        parse.record_name_for("/data/....tif")
    dt = parse.datetime_in_name
    assert dt("S2A_MSIL2A_20240105T103331_N0510.tif") == datetime(2024, 1, 5, 10, 33, 31, tzinfo=UTC)
    assert dt("LC08_L2SP_199029_20240105_20240112_02_T1.tif") == datetime(2024, 1, 5, tzinfo=UTC)
    assert dt("img_2024-01-05T10:30:00.tif") == datetime(2024, 1, 5, 10, 30, tzinfo=UTC)
    assert dt("img_2024-01-05.tif") == datetime(2024, 1, 5, tzinfo=UTC)
    assert dt("tile_12345678_20240230_20240301.tif") == datetime(2024, 3, 1, tzinfo=UTC)  # invalid dates skipped
    assert dt("scene_T31.tif") is None
    assert dt("s3://b/20240105/scene.tif") is None  # only the file name counts


def test_expand_paths(tmp_path) -> None:
    (tmp_path / "b.tif").write_bytes(b"")
    (tmp_path / "a.TIF").write_bytes(b"")
    (tmp_path / "c.txt").write_text("")
    assert parse.expand_paths([str(tmp_path), "s3://b/k.tif", str(tmp_path / "b.tif")]) == [
        str(tmp_path / "a.TIF"), str(tmp_path / "b.tif"), "s3://b/k.tif"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidArgument, match="no raster file"):
        parse.expand_paths([str(empty)])


def test_resolve_instance(gc: gd.Geocube) -> None:
    var = gc.create_variable("a/b", dformat=("uint8", 0, 0, 255), bands=["x"])
    inst = gc.instantiate(var, "master")
    assert parse.resolve_instance(gc, "a/b/master") == (inst, var)
    assert parse.resolve_instance(gc, inst.id) == (inst, var)
    assert parse.resolve_instance(gc, "master", "a/b") == (inst, var)
    with pytest.raises(NotFound, match="unknown variable 'a'"):
        parse.resolve_instance(gc, "a/master")
    with pytest.raises(NotFound, match="geocube instance create a/b v2"):
        parse.resolve_instance(gc, "a/b/v2")
    with pytest.raises(NotFound, match="VARIABLE/INSTANCE"):
        parse.resolve_instance(gc, "master")
    with pytest.raises(InvalidArgument, match="instance name alone"):
        parse.resolve_instance(gc, "a/b/master", "a/b")
