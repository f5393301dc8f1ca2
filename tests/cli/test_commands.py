"""The ``geocube`` command line, run for real (click.s CliRunner on the typer app) on SQLite and PostGIS catalogues.

Small COGs with their acquisition date in their names are indexed through the CLI; cubes written by
``geocube cube`` are reopened and compared with ``Geocube.get_cube`` computed directly.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import typer
import xarray as xr
from click.testing import CliRunner
from pyproj import Transformer
from rasters import Scene, write_scene
from shapely.geometry import box, shape

import geocube_dask as gd
from geocube_dask.cli import app

T31 = Scene("EPSG:32631", 700000.0, 5000000.0, 10.0, 96, 80)
BOUNDS = (700000.0, 4999200.0, 700960.0, 5000000.0)  # the T31 tile, in EPSG:32631
CUBE_ARGS = ["--crs", "EPSG:32631", "--resolution", "20", "--bounds", ",".join(map(str, BOUNDS))]
POINT = (5.550668, 45.120395)  # lon/lat inside T31 and T32, away from their nodata swaths


def _t32() -> Scene:
    """A tile in EPSG:32632 over the middle of T31."""
    x, y = Transformer.from_crs("EPSG:32631", "EPSG:32632", always_xy=True).transform(700300.0, 4999700.0)
    return Scene("EPSG:32632", round(x, -1), round(y, -1), 10.0, 64, 64)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four dated scenes (two on 2024-01-10, in two CRSs) and one without a date in its name."""
    root = tmp_path_factory.mktemp("cli-files")
    specs = {
        "a": ("S2_20240105T103000_T31.tif", T31, 1),
        "b": ("S2_20240110T103000_T31.tif", T31, 2),
        "c": ("S2_20240110T103500_T32.tif", _t32(), 3),
        "d": ("S2_20240115T103000_T31.tif", T31, 4),
        "nodate": ("scene_T31.tif", T31, 5),
    }
    return {key: write_scene(root / name, scene, seed=seed, nodata_fraction=0.1)
            for key, (name, scene, seed) in specs.items()}


runner = CliRunner(env={"COLUMNS": "250"})  # wide tables: human output is checked by substring
COMMAND = typer.main.get_command(app)  # built once: typer would rebuild it on every invoke



def run(url: str | None, *args: Any, env: dict[str, str] | None = None) -> Any:
    argv = (["--db", url] if url else []) + [str(a) for a in args]
    return runner.invoke(COMMAND, argv, env=env)


def ok(result: Any) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def as_json(result: Any) -> Any:
    """The command succeeded and printed exactly one JSON document on stdout (and nothing on stderr)."""
    text = ok(result)
    assert result.stderr == ""
    return json.loads(text)


def error(result: Any) -> str:
    """The command failed with exit code 1, one ``error:`` line on stderr, nothing on stdout."""
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def make_variable(url: str) -> None:
    ok(run(url, "variable", "create", "refl", "--dtype", "uint16", "--nodata", "0", "--min", "0", "--max", "10000",
           "--bands", "B2,B3,B4", "--unit", "reflectance x 10000"))
    ok(run(url, "instance", "create", "refl", "master", "--meta", "source=test"))


def indexed(url: str, files: dict[str, Path], *extra: str) -> dict[str, Any]:
    make_variable(url)
    return as_json(run(url, "index", files["a"], files["b"], files["c"], files["d"], "--instance", "refl/master",
                       "--tag", "constellation=sentinel-2", "--json", *extra))


# --- global behaviour ------------------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    text = ok(runner.invoke(COMMAND, ["--help"]))
    for command in ("demo", "init", "variable", "instance", "record", "index", "dataset", "aoi", "tidy", "cube",
                    "timeseries", "layout", "consolidate", "job", "cluster", "submit"):
        assert command in text


def test_init_creates_then_reports(catalog_url: str) -> None:
    first = as_json(run(None, "init", catalog_url, "--json"))
    assert first["variables"] == 0 and first["schema_revision"]
    assert first["backend"] in ("sqlite", "postgresql")
    assert first["created"] is (True if catalog_url.startswith("sqlite") else None)
    text = ok(run(catalog_url, "init"))
    assert "schema" in text and ("existing" in text or "ready" in text)
    if catalog_url.startswith("sqlite"):
        assert as_json(run(catalog_url, "init", "--json"))["created"] is False


def test_default_catalogue_is_geocube_db_in_cwd_or_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GEOCUBE_DB", raising=False)
    ok(run(None, "init"))
    assert (tmp_path / "geocube.db").exists()
    other = tmp_path / "other.db"
    info = as_json(run(None, "init", "--json", env={"GEOCUBE_DB": str(other)}))
    assert other.exists() and info["url"].endswith("other.db")


def test_unreachable_catalogue_is_one_line_without_password() -> None:
    line = error(run("postgresql+psycopg2://someone:s3cret@127.0.0.1:9/nowhere", "variable", "list"))
    assert "cannot open the catalogue" in line and "s3cret" not in line


def test_usage_errors_exit_2() -> None:
    assert runner.invoke(COMMAND, ["cube", "--no-such-option"]).exit_code == 2


# --- variables and instances --------------------------------------------------------------------------


def test_variables_and_instances(catalog_url: str) -> None:
    made = as_json(run(catalog_url, "variable", "create", "ndvi", "--dtype", "float32", "--min", "-1", "--max", "1",
                       "--description", "vegetation", "--resampling", "bilinear", "--json"))
    assert made["dformat"] == {"dtype": "float32", "nodata": "nan", "min": -1.0, "max": 1.0}
    make_variable(catalog_url)
    listed = as_json(run(catalog_url, "variable", "list", "--json"))
    assert [v["name"] for v in listed] == ["ndvi", "refl"]
    refl = listed[1]
    assert refl["bands"] == ["B2", "B3", "B4"] and refl["instances"] == ["master"] and refl["unit"]
    assert [v["name"] for v in as_json(run(catalog_url, "variable", "list", "--name", "N*", "-i", "--json"))] == [
        "ndvi"]
    assert as_json(run(catalog_url, "variable", "list", "--name", "N*", "--json")) == []
    assert "uint16 nodata=0 [0, 10000]" in ok(run(catalog_url, "variable", "list"))

    inst = as_json(run(catalog_url, "instance", "create", "ndvi", "v2", "--meta", "a=1", "--meta", "b=", "--json"))
    assert inst["variable"] == "ndvi" and inst["metadata"] == {"a": "1", "b": ""}
    all_instances = as_json(run(catalog_url, "instance", "list", "--json"))
    assert sorted(f"{i['variable']}/{i['name']}" for i in all_instances) == ["ndvi/v2", "refl/master"]
    assert [i["name"] for i in as_json(run(catalog_url, "instance", "list", "ndvi", "--json"))] == ["v2"]
    assert "refl/master" in ok(run(catalog_url, "instance", "list"))


def test_variable_and_instance_errors(catalog_url: str) -> None:
    make_variable(catalog_url)
    assert "already exists" in error(run(catalog_url, "variable", "create", "refl", "--dtype", "uint8", "--nodata",
                                         "0", "--min", "0", "--max", "1"))
    assert "--nodata is required" in error(run(catalog_url, "variable", "create", "x", "--dtype", "uint8", "--min",
                                               "0", "--max", "1"))
    assert "min" in error(run(catalog_url, "variable", "create", "x", "--dtype", "uint8", "--nodata", "0", "--min",
                              "5", "--max", "1"))
    assert error(run(catalog_url, "instance", "create", "foo", "master")) == (
        "error: unknown variable 'foo': create it with 'geocube variable create' (see 'geocube variable list')")
    assert "already has an instance" in error(run(catalog_url, "instance", "create", "refl", "master"))
    assert "KEY=VALUE" in error(run(catalog_url, "instance", "create", "refl", "v3", "--meta", "novalue"))


# --- indexing, records, datasets --------------------------------------------------------------------------


def test_index_files_one_record_per_file(catalog_url: str, files: dict[str, Path]) -> None:
    result = indexed(catalog_url, files)
    assert result["instance"] == "refl/master" and result["records"] == 4
    datasets = result["datasets"]
    assert [d["record"] for d in datasets] == [Path(files[k]).stem for k in "abcd"]
    assert [d["crs"] for d in datasets] == ["EPSG:32631"] * 2 + ["EPSG:32632", "EPSG:32631"]
    assert all(d["status"] == "ACTIVE" and d["bands"] == [1, 2, 3] for d in datasets)
    # indexing again changes nothing
    again = as_json(run(catalog_url, "index", files["a"], files["b"], files["c"], files["d"], "--variable", "refl",
                        "--instance", "master", "--tag", "constellation=sentinel-2", "--json"))
    assert [d["id"] for d in again["datasets"]] == [d["id"] for d in datasets]
    assert len(as_json(run(catalog_url, "dataset", "list", "--json"))) == 4
    text = ok(run(catalog_url, "index", files["a"], "--instance", "refl/master", "--tag",
                  "constellation=sentinel-2"))
    assert "S2_20240105T103000_T31" in text and "indexed 1 dataset(s)" in text


def test_record_list_filters(catalog_url: str, files: dict[str, Path]) -> None:
    indexed(catalog_url, files)

    def names(*args: str) -> list[str]:
        return [r["name"] for r in as_json(run(catalog_url, "record", "list", "--json", *args))]

    everything = names()
    assert everything == [Path(files[k]).stem for k in "abcd"]
    records = as_json(run(catalog_url, "record", "list", "--json"))
    assert records[0]["datetime"] == "2024-01-05T10:30:00Z"
    assert records[0]["tags"] == {"constellation": "sentinel-2"}
    assert names("--tag", "constellation=sentinel-2") == everything
    assert names("--tag", "constellation=sentinel*") == everything
    assert names("--tag", "constellation") == everything
    assert names("--tag", "constellation=landsat") == []
    assert names("--tag", "cloud") == []
    assert names("--name", "*T32") == ["S2_20240110T103500_T32"]
    assert names("--name", "s2_*_t32", "-i") == ["S2_20240110T103500_T32"]
    assert names("--time", "2024-01-10") == ["S2_20240110T103000_T31", "S2_20240110T103500_T32"]
    assert names("--time", "2024-01-10T10:31:00Z,") == ["S2_20240110T103500_T32", "S2_20240115T103000_T31"]
    assert names("--time", ",2024-01-06") == ["S2_20240105T103000_T31"]
    assert names("--aoi", f"{POINT[0] - 1e-3},{POINT[1] - 1e-3},{POINT[0] + 1e-3},{POINT[1] + 1e-3}") == everything
    assert names("--aoi", "POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))") == []
    assert names("--limit", "3") == everything[:3]
    assert names("--limit", "3", "--page", "1") == everything[3:]
    text = ok(run(catalog_url, "record", "list", "--limit", "2"))
    assert "next page: --page 1" in text and "constellation=sentinel-2" in text
    assert "START,END" in error(run(catalog_url, "record", "list", "--time", "yesterday"))
    assert "WKT" in error(run(catalog_url, "record", "list", "--aoi", "POLYGON((nonsense"))
    assert "page" in error(run(catalog_url, "record", "list", "--page", "2"))


def test_dataset_list_filters(catalog_url: str, files: dict[str, Path]) -> None:
    indexed(catalog_url, files)
    every = as_json(run(catalog_url, "dataset", "list", "--json"))
    assert len(every) == 4 and all(d["instance"] == "refl/master" for d in every)
    assert every[0]["lonlat_bounds"][0] < POINT[0] < every[0]["lonlat_bounds"][2]
    by_name = as_json(run(catalog_url, "dataset", "list", "--record", "*_T32", "--json"))
    assert [d["record"] for d in by_name] == ["S2_20240110T103500_T32"]
    by_id = as_json(run(catalog_url, "dataset", "list", "--record", every[0]["record_id"], "--json"))
    assert [d["id"] for d in by_id] == [every[0]["id"]]
    assert len(as_json(run(catalog_url, "dataset", "list", "--instance", "refl/master", "--status", "ACTIVE",
                           "--json"))) == 4
    assert as_json(run(catalog_url, "dataset", "list", "--status", "INACTIVE", "--json")) == []
    page = as_json(run(catalog_url, "dataset", "list", "--limit", "3", "--page", "1", "--json"))
    assert [d["id"] for d in page] == [every[3]["id"]]
    assert "EPSG:32632" in ok(run(catalog_url, "dataset", "list"))
    assert "unknown dataset status" in error(run(catalog_url, "dataset", "list", "--status", "GONE"))
    assert "no record has this id or name" in error(run(catalog_url, "dataset", "list", "--record", "nope"))
    assert "has no instance 'x'" in error(run(catalog_url, "dataset", "list", "--instance", "refl/x"))


def test_aoi_list_and_delete(catalog_url: str, files: dict[str, Path]) -> None:
    indexed(catalog_url, files)  # the T31 scenes share their footprint: 2 AOIs for 4 records
    with gd.connect(catalog_url) as gc:
        orphan = gc.create_aoi(box(10, 10, 11, 11))
    every = as_json(run(catalog_url, "aoi", "list", "--json"))
    assert len(every) == 3 and every[-1]["id"] == orphan and every[-1]["geometry"]["type"] == "MultiPolygon"
    assert shape(every[-1]["geometry"]).equals(box(10, 10, 11, 11))
    assert [a["id"] for a in as_json(run(catalog_url, "aoi", "list", "--aoi", "10.5,10.5,12,12", "--json"))] == [
        orphan]
    assert [a["id"] for a in as_json(run(catalog_url, "aoi", "list", "--limit", "2", "--page", "1", "--json"))] == [
        orphan]
    assert "10.0000,10.0000 → 11.0000,11.0000" in ok(run(catalog_url, "aoi", "list"))
    assert "delete those records first" in error(run(catalog_url, "aoi", "delete", str(every[0]["id"])))
    assert "no AOI with id 999999" in error(run(catalog_url, "aoi", "delete", "999999"))
    assert as_json(run(catalog_url, "aoi", "delete", str(orphan), "--json")) == {"deleted": orphan}
    assert len(as_json(run(catalog_url, "aoi", "list", "--json"))) == 2


def test_tidy_dry_run_then_for_real(catalog_url: str, files: dict[str, Path]) -> None:
    indexed(catalog_url, files)
    with gd.connect(catalog_url) as gc:
        bare = gc.create_record("bare", "2024-03-01", aoi=box(20, 20, 21, 21))
        spare = gc.instantiate("refl", "spare")
    dry = as_json(run(catalog_url, "tidy", "--dry-run", "--instances", "--json"))
    assert dry["dry_run"] is True and dry["records"] == [bare.id] and dry["aois"] == [bare.aoi_id]
    assert dry["instances"] == [spare.id] and dry["counts"]["records"] == 1 and dry["containers"] == []
    assert len(as_json(run(catalog_url, "record", "list", "--json"))) == 5  # nothing changed
    assert "would delete 3 row(s); nothing was changed" in ok(run(catalog_url, "tidy", "--dry-run", "--instances"))
    text = ok(run(catalog_url, "tidy", "--no-aois"))
    assert "deleted 1 row(s)" in text
    assert len(as_json(run(catalog_url, "record", "list", "--json"))) == 4
    assert len(as_json(run(catalog_url, "aoi", "list", "--json"))) == 3  # --no-aois kept the freed one
    assert as_json(run(catalog_url, "tidy", "--json"))["aois"] == [bare.aoi_id]
    assert len(as_json(run(catalog_url, "instance", "list", "--json"))) == 2  # instances are opt-in


def test_index_shared_record_and_datetime(catalog_url: str, files: dict[str, Path]) -> None:
    make_variable(catalog_url)
    result = as_json(run(catalog_url, "index", files["nodate"], files["c"], "--instance", "refl/master",
                         "--record-name", "mosaic", "--datetime", "2024-02-01T10:00:00Z", "--json"))
    assert result["records"] == 1 and len(result["datasets"]) == 2
    records = as_json(run(catalog_url, "record", "list", "--json"))
    assert [(r["name"], r["datetime"]) for r in records] == [("mosaic", "2024-02-01T10:00:00Z")]


def test_index_errors_leave_the_catalogue_unchanged(catalog_url: str, files: dict[str, Path], tmp_path: Path) -> None:
    make_variable(catalog_url)
    line = error(run(catalog_url, "index", files["nodate"], "--instance", "refl/master"))
    assert "no date in the file name 'scene_T31.tif'" in line and "--datetime" in line
    missing = tmp_path / "S2_20240101_missing.tif"
    assert "does not exist" in error(run(catalog_url, "index", files["a"], missing, "--instance", "refl/master"))
    assert "give exactly 3 band" in error(run(catalog_url, "index", files["a"], "--instance", "refl/master",
                                              "--bands", "1,2"))
    assert "unknown variable 'nope'" in error(run(catalog_url, "index", files["a"], "--instance", "nope/master"))
    assert "--stac" in error(run(catalog_url, "index", files["a"], "--instance", "refl/master", "--asset", "x"))
    assert as_json(run(catalog_url, "record", "list", "--json")) == []
    assert as_json(run(catalog_url, "dataset", "list", "--json")) == []


def test_index_directory_and_dformat(catalog_url: str, files: dict[str, Path], tmp_path: Path) -> None:
    make_variable(catalog_url)
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(files["a"], folder / files["a"].name)
    shutil.copy(files["d"], folder / files["d"].name)
    (folder / "notes.txt").write_text("not a raster")
    result = as_json(run(catalog_url, "index", folder, "--instance", "refl/master", "--dformat", "uint16,0,0,5000",
                         "--real-min", "0", "--real-max", "10000", "--json"))
    assert len(result["datasets"]) == 2
    assert result["datasets"][0]["dformat"] == {"dtype": "uint16", "nodata": 0.0, "min": 0.0, "max": 5000.0}


def test_index_stac_items(catalog_url: str, files: dict[str, Path], tmp_path: Path) -> None:
    make_variable(catalog_url)
    shutil.copy(files["a"], tmp_path / "scene.tif")
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": "S2A_20240105.SAFE", "collection": "s2-l2a",
        "geometry": None, "bbox": None, "links": [],
        "properties": {"datetime": "2024-01-05T10:30:00Z", "eo:cloud_cover": 12, "platform": "sentinel-2a"},
        "assets": {"visual": {"href": "scene.tif", "type": "image/tiff; application=geotiff"}},
    }
    (tmp_path / "item.json").write_text(json.dumps(item))
    result = as_json(run(catalog_url, "index", tmp_path / "item.json", "--stac", "--asset", "visual",
                         "--instance", "refl/master", "--tag", "project=test", "--json"))
    assert [d["uri"] for d in result["datasets"]] == [str(tmp_path / "scene.tif")]
    (record,) = as_json(run(catalog_url, "record", "list", "--json"))
    assert record["name"] == "S2A_20240105_SAFE" and record["datetime"] == "2024-01-05T10:30:00Z"
    assert record["tags"] == {"collection": "s2-l2a", "eo:cloud_cover": "12", "platform": "sentinel-2a",
                              "project": "test"}
    assert "--asset" in error(run(catalog_url, "index", tmp_path / "item.json", "--stac", "--instance",
                                  "refl/master"))
    assert "has no asset 'data'" in error(run(catalog_url, "index", tmp_path / "item.json", "--stac", "--asset",
                                              "data", "--instance", "refl/master"))


def test_index_http_and_file_uris(catalog_url: str, files: dict[str, Path], http_server: Any) -> None:
    make_variable(catalog_url)
    folder = uuid.uuid4().hex  # GDAL caches what it learnt about a URL: fresh names per test
    url = http_server.put(files["a"], f"{folder}/{files['a'].name}")
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": "remote-item", "geometry": None, "links": [],
        "properties": {"datetime": "2024-01-10T10:30:00Z"}, "assets": {"data": {"href": files["b"].name}},
    }
    http_server.put(files["b"], f"{folder}/{files['b'].name}")
    local_item = Path(http_server.directory) / folder / "item.json"
    local_item.write_text(json.dumps(item))
    result = as_json(run(catalog_url, "index", url, files["d"].as_uri(), "--instance", "refl/master", "--json"))
    assert [d["uri"] for d in result["datasets"]] == [url, str(files["d"])]
    assert [d["record"] for d in result["datasets"]] == [files["a"].stem, files["d"].stem]
    stac = as_json(run(catalog_url, "index", http_server.url(f"{folder}/item.json"), "--stac", "--asset", "data",
                       "--instance", "refl/master", "--json"))
    assert [d["uri"] for d in stac["datasets"]] == [http_server.url(f"{folder}/{files['b'].name}")]
    series = as_json(run(catalog_url, "timeseries", "--instance", "refl/master", "--point", f"{POINT[0]},{POINT[1]}",
                         "--json"))["series"]
    assert [s["record_names"] for s in series] == [[files["a"].stem], ["remote-item"], [files["d"].stem]]
    assert all(v is not None for s in series for v in s["values"].values())


# --- cubes ------------------------------------------------------------------------------------------------


def direct_cube(url: str, **kwargs: Any) -> xr.DataArray:
    gc = gd.connect(url)
    try:
        inst = gc.get_instance(gc.get_variable("refl"), "master")
        return gc.get_cube(inst, crs="EPSG:32631", resolution=20, bounds=BOUNDS, **kwargs).compute()
    finally:
        gc.close()


def test_cube_to_zarr_matches_get_cube(catalog_url: str, files: dict[str, Path], tmp_path: Path) -> None:
    indexed(catalog_url, files)
    out = tmp_path / "cube.zarr"
    result = as_json(run(catalog_url, "cube", "--instance", "refl/master", *CUBE_ARGS, "--group-by", "day",
                         "--chunks", "16", "--out", out, "--json"))
    info = result["out"]
    assert info["format"] == "zarr" and info["zarr_format"] == 2 and info["shape"] == [3, 3, 40, 48]
    assert info["record_names"][1] == ["S2_20240110T103000_T31", "S2_20240110T103500_T32"]
    expected = direct_cube(catalog_url, group_by="day")
    raw = xr.open_zarr(out, mask_and_scale=False)["refl"]
    assert raw.dtype == np.uint16 and raw.attrs["_FillValue"] == 0
    np.testing.assert_array_equal(raw.values, expected.values)
    assert raw.encoding["chunks"] == (1, 3, 16, 16)
    decoded = xr.open_zarr(out, decode_coords="all")
    assert decoded["refl"].rio.crs.to_epsg() == 32631
    assert list(decoded.record_names.values) == list(expected.record_names.values)
    np.testing.assert_array_equal(decoded.time.values, expected.time.values)
    masked = decoded["refl"].values
    assert np.isnan(masked).any() and np.array_equal(np.isnan(masked), expected.values == 0)

    assert "already exists" in error(run(catalog_url, "cube", "--instance", "refl/master", *CUBE_ARGS, "--out", out))
    text = ok(run(catalog_url, "cube", "--instance", "refl/master", *CUBE_ARGS, "--out", out, "--overwrite"))
    assert "4 image(s)" in text and "zarr" in text
    assert xr.open_zarr(out).sizes["time"] == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_cube_zarr_format_3(catalog_url: str, files: dict[str, Path], tmp_path: Path) -> None:
    indexed(catalog_url, files)
    out = tmp_path / "cube3.zarr"
    assert as_json(run(catalog_url, "cube", "--instance", "refl/master", *CUBE_ARGS, "--zarr-format", "3",
                       "--out", out, "--json"))["out"]["zarr_format"] == 3
    expected = direct_cube(catalog_url)
    reopened = xr.open_zarr(out, mask_and_scale=False, consolidated=False)
    np.testing.assert_array_equal(reopened["refl"].values, expected.values)
    assert [str(n) for n in reopened.record_names.values] == list(expected.record_names.values)


def test_cube_to_geotiff_matches_get_cube(catalog_url: str, files: dict[str, Path], tmp_path: Path) -> None:
    indexed(catalog_url, files)
    out = tmp_path / "cube.tif"
    ok(run(catalog_url, "cube", "--instance", "refl/master", *CUBE_ARGS, "--chunks", "32", "--out", out))
    expected = direct_cube(catalog_url)
    with rasterio.open(out) as src:
        data = src.read()
        assert src.count == 12 and src.crs.to_epsg() == 32631 and src.nodata == 0
        assert src.profile["tiled"] and src.block_shapes[0] == (32, 32)
        assert src.descriptions[:4] == ("2024-01-05T10:30:00Z/B2", "2024-01-05T10:30:00Z/B3",
                                        "2024-01-05T10:30:00Z/B4", "2024-01-10T10:30:00Z/B2")
        assert tuple(src.bounds) == BOUNDS
    np.testing.assert_array_equal(data.reshape(expected.shape), expected.values)


def test_plan_round_trip_needs_no_catalogue(catalog_url: str, files: dict[str, Path], tmp_path: Path) -> None:
    indexed(catalog_url, files)
    plan = tmp_path / "plan.json"
    result = as_json(run(catalog_url, "cube", "--instance", "refl/master", *CUBE_ARGS, "--tag",
                         "constellation=sentinel-2", "--time", "2024-01-06,", "--plan", plan, "--json"))
    assert result["out"] is None and result["plan"]["images"] == 3 and result["plan"]["sources"] == 3
    assert json.loads(plan.read_text())["grid"]["crs"] == "EPSG:32631"
    out = tmp_path / "from-plan.zarr"
    # a catalogue that cannot be opened: --from-plan must not need one
    ok(run("postgresql+psycopg2://x:y@127.0.0.1:9/none", "cube", "--from-plan", plan, "--out", out))
    expected = direct_cube(catalog_url, tags={"constellation": "sentinel-2"}, time=("2024-01-06", None))
    np.testing.assert_array_equal(xr.open_zarr(out, mask_and_scale=False)["refl"].values, expected.values)
    tif = tmp_path / "from-plan.tif"
    ok(run(None, "cube", "--from-plan", plan, "--chunks", "24", "--out", tif))
    with rasterio.open(tif) as src:
        np.testing.assert_array_equal(src.read().reshape(expected.shape), expected.values)
    assert "drop --instance" in error(run(None, "cube", "--from-plan", plan, "--instance", "refl/master", "--out",
                                          tmp_path / "x.zarr"))
    (tmp_path / "bad.json").write_text("{}")
    assert "plan" in error(run(None, "cube", "--from-plan", tmp_path / "bad.json", "--out", tmp_path / "y.zarr"))
    assert "no plan file" in error(run(None, "cube", "--from-plan", tmp_path / "none.json", "--out",
                                       tmp_path / "z.zarr"))


def test_cube_errors(catalog_url: str, files: dict[str, Path], tmp_path: Path) -> None:
    indexed(catalog_url, files)
    base = ["cube", "--instance", "refl/master", *CUBE_ARGS]
    assert "--out" in error(run(catalog_url, *base))
    assert ".zarr" in error(run(catalog_url, *base, "--out", tmp_path / "cube.nc"))
    assert "--resolution" in error(run(catalog_url, "cube", "--instance", "refl/master", "--crs", "EPSG:32631",
                                       "--bounds", "0,0,1,1", "--out", tmp_path / "a.zarr"))
    assert "xmin,ymin,xmax,ymax" in error(run(catalog_url, "cube", "--instance", "refl/master", "--crs",
                                              "EPSG:32631", "--resolution", "20", "--bounds", "1,2,3",
                                              "--out", tmp_path / "a.zarr"))
    assert "unknown CRS" in error(run(catalog_url, "cube", "--instance", "refl/master", "--crs", "EPSG:0",
                                      "--resolution", "20", "--bounds", "0,0,1,1", "--out", tmp_path / "a.zarr"))
    assert "only 'day'" in error(run(catalog_url, *base, "--group-by", "month", "--out", tmp_path / "a.zarr"))
    far = ["cube", "--instance", "refl/master", "--crs", "EPSG:32631", "--resolution", "20", "--bounds",
           "300000,4000000,301000,4001000"]
    assert "no image matches" in error(run(catalog_url, *far, "--out", tmp_path / "far.zarr"))
    assert not (tmp_path / "far.zarr").exists()
    assert "directory" in error(run(catalog_url, *base, "--out", tmp_path / "missing" / "a.zarr"))
    assert "has no instance 'v9'" in error(run(catalog_url, "cube", "--instance", "refl/v9", *CUBE_ARGS, "--out",
                                               tmp_path / "a.zarr"))


def test_cube_from_lonlat_aoi(catalog_url: str, files: dict[str, Path], tmp_path: Path) -> None:
    indexed(catalog_url, files)
    lon, lat = POINT
    result = as_json(run(catalog_url, "cube", "--instance", "refl/master", "--crs", "EPSG:32631", "--resolution",
                         "20", "--aoi", f"{lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}", "--plan",
                         tmp_path / "p.json", "--json"))
    grid = result["plan"]["grid"]
    assert grid["crs"] == "EPSG:32631" and 5 <= grid["width"] <= 12 and result["plan"]["images"] == 4


# --- timeseries ---------------------------------------------------------------------------------------------


def test_timeseries_table_csv_json(catalog_url: str, files: dict[str, Path]) -> None:
    indexed(catalog_url, files)
    point = f"{POINT[0]},{POINT[1]}"
    data = as_json(run(catalog_url, "timeseries", "--instance", "refl/master", "--point", point, "--json"))
    assert data["bands"] == ["B2", "B3", "B4"]
    series = data["series"]
    assert [s["record_names"] for s in series] == [[Path(files[k]).stem] for k in "abcd"]
    gc = gd.connect(catalog_url)
    try:
        inst = gc.get_instance(gc.get_variable("refl"), "master")
        expected = gc.get_timeseries(inst, point=POINT).compute()
    finally:
        gc.close()
    values = np.array([[s["values"][b] for b in data["bands"]] for s in series], dtype="float64")
    np.testing.assert_array_equal(values, expected.values.astype("float64"))
    assert all(isinstance(v, int) for s in series for v in s["values"].values())

    rows = list(csv.reader(io.StringIO(ok(run(catalog_url, "timeseries", "--instance", "refl/master", "--point",
                                              point, "--csv")))))
    assert rows[0] == ["time", "records", "B2", "B3", "B4"]
    assert [int(v) for v in rows[1][2:]] == [series[0]["values"][b] for b in ("B2", "B3", "B4")]
    assert len(rows) == 5

    daily = as_json(run(catalog_url, "timeseries", "--instance", "refl/master", "--point", point, "--group-by",
                        "day", "--time", "2024-01-06,2024-01-12", "--tag", "constellation", "--json"))["series"]
    assert len(daily) == 1 and len(daily[0]["record_names"]) == 2
    text = ok(run(catalog_url, "timeseries", "--instance", "refl/master", "--point", point))
    assert "S2_20240115T103000_T31" in text and "4 image(s)" in text
    assert "LON,LAT" in error(run(catalog_url, "timeseries", "--instance", "refl/master", "--point", "5.5"))
    assert "not both" in error(run(catalog_url, "timeseries", "--instance", "refl/master", "--point", point,
                                   "--csv", "--json"))
