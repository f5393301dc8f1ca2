"""The demo collection (``geocube_dask.demo``) and ``geocube demo``, at small sizes, on both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
import typer
from click.testing import CliRunner

import geocube_dask as gd
from geocube_dask import demo
from geocube_dask.cli import app
from geocube_dask.errors import AlreadyExists, InvalidArgument

SIZE = 64
runner = CliRunner(env={"COLUMNS": "250"})  # wide tables: human output is checked by substring
COMMAND = typer.main.get_command(app)  # built once: typer would rebuild it on every invoke



def run_demo(url: str | None, *args: Any) -> Any:
    argv = (["--db", url] if url else []) + ["demo", "--size", str(SIZE), *map(str, args)]
    return runner.invoke(COMMAND, argv)


def as_json(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert result.stderr == ""
    return json.loads(result.stdout)


def test_demo_twice_second_run_is_harmless(catalog_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    first = as_json(run_demo(catalog_url, "--dir", directory, "--json"))
    assert first["files"] == {"total": 10, "written": 10, "kept": 0}
    assert first["indexed"] == {"datasets": 10, "new": 10, "already_indexed": 0}
    assert first["instance"] == "reflectance/demo"
    assert first["variable"]["bands"] == list(demo.BANDS)
    assert {d["crs"] for d in first["datasets"]} == {"EPSG:32631", "EPSG:32632", "EPSG:2154"}
    assert len({r["datetime"][:10] for r in first["records"]}) == 3
    cube = first["cube"]
    assert cube["crs"] == "EPSG:32631" and cube["resolution"] == [20.0, 20.0] and cube["group_by"] == "day"
    assert cube["shape"][:2] == [3, 4] and len(cube["valid_share"]) == 3
    assert all(0 < s <= 1 for s in cube["valid_share"])
    ql = Path(first["quicklook"]["path"])
    assert ql == (directory / "quicklook.png").resolve() and first["quicklook"]["written"]
    assert first["quicklook"]["bands"] == ["B4", "B3", "B2"]
    series = first["timeseries"]["series"]
    assert len(series) == 3 and all(v is not None and 0 <= v <= 1 for s in series for v in s["values"].values())
    mtimes = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
    assert len(mtimes) == 11  # 10 COGs and the quicklook, nothing else

    second = as_json(run_demo(catalog_url, "--dir", directory, "--json"))
    assert second["files"] == {"total": 10, "written": 0, "kept": 10}
    assert second["indexed"] == {"datasets": 10, "new": 0, "already_indexed": 10}
    assert not second["quicklook"]["written"]
    assert {p.name: p.stat().st_mtime_ns for p in directory.iterdir()} == mtimes
    assert second["cube"]["valid_share"] == cube["valid_share"]
    assert second["timeseries"] == first["timeseries"]
    gc = gd.connect(catalog_url)
    try:
        assert len(gc.list_datasets()) == 10 and len(gc.list_records()) == 10
    finally:
        gc.close()

    text = run_demo(catalog_url, "--dir", directory)
    assert text.exit_code == 0, text.stderr
    for phrase in ("were already there: kept", "already indexed: nothing indexed twice", "already there, kept",
                   "Records per date", "Timeseries at lon", "SPOT_L93_1", "EPSG:2154", "geocube cube --instance"):
        assert phrase in text.stdout


def test_demo_defaults_write_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GEOCUBE_DB", raising=False)
    result = runner.invoke(COMMAND, ["demo", "--size", "32"])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert (tmp_path / "geocube.db").exists()
    assert (tmp_path / "geocube-demo" / "quicklook.png").exists()
    assert len(list((tmp_path / "geocube-demo").glob("*.tif"))) == 10
    assert "indexed 10 datasets" in result.stdout


def test_demo_refuses_a_directory_of_another_size(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    as_json(run_demo(url, "--dir", tmp_path / "d", "--json"))
    result = runner.invoke(COMMAND, ["--db", url, "demo", "--size", "96", "--dir", str(tmp_path / "d")])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "another size" in line
    bad = runner.invoke(COMMAND, ["--db", url, "demo", "--size", "8", "--dir", str(tmp_path / "e")])
    assert bad.exit_code == 1 and "at least 32" in bad.stderr


def test_demo_refuses_a_foreign_reflectance_variable(catalog_url: str, tmp_path: Path) -> None:
    gc = gd.connect(catalog_url)
    try:
        gc.create_variable("reflectance", dformat=("uint8", 0, 0, 255), bands=["r", "g", "b"])
        with pytest.raises(AlreadyExists, match="not the demo's"):
            demo.ensure_variable(gc)
    finally:
        gc.close()
    result = run_demo(catalog_url, "--dir", tmp_path / "d")
    assert result.exit_code == 1 and "not the demo's" in result.stderr


# --- geocube_dask.demo --------------------------------------------------------------------------------


def test_scenes_and_sample_point() -> None:
    scenes = demo.scenes(SIZE)
    assert len(scenes) == 10 and len({s.name for s in scenes}) == 10
    assert {s.crs for s in scenes} == {"EPSG:32631", "EPSG:32632", "EPSG:2154"}
    assert sorted({s.day for s in scenes}) == [0, 5, 10]
    lon, lat = demo.sample_point(SIZE)
    first = scenes[0]
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", first.crs, always_xy=True).transform(lon, lat)
    col, row = ~first.transform @ (x, y)
    assert 0.5 * SIZE < col < 0.9 * SIZE and 0.5 * SIZE < row < 0.7 * SIZE
    with pytest.raises(InvalidArgument, match="at least"):
        demo.check_size(16)


def test_write_collection_is_idempotent(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    files = demo.write_collection(tmp_path, 32, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (10, 10) and len(files) == 10
    sc, path = files[0]
    with rasterio.open(path) as src:
        assert (src.width, src.count, src.dtypes[0], src.nodata) == (32, 4, "uint16", 0)
        assert src.crs.to_epsg() == 32631 and src.overviews(1) == [2, 4]
        data = src.read()
        assert (data == 0).any() and data.max() > 1000  # clouds may exceed 10000 (saturated)
    before = path.stat().st_mtime_ns
    demo.write_collection(tmp_path, 32)
    assert path.stat().st_mtime_ns == before
    assert not list(tmp_path.glob("*.tmp.tif"))


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_collection_bounds_valid_shares_and_quicklook(tmp_path: Path) -> None:
    class Footprint:
        def __init__(self, wkt: str) -> None:
            self.footprint_4326_wkt = wkt

    fp = shapely.box(5.5, 45.0, 5.6, 45.1).wkt
    xmin, ymin, xmax, ymax = demo.collection_bounds([Footprint(fp)])
    assert 600000 < xmin < xmax < 800000 and 4980000 < ymin < ymax < 5000000
    with pytest.raises(InvalidArgument):
        demo.collection_bounds([])

    values = np.full((2, 4, 10, 10), np.nan, dtype="float32")
    values[0, :, :5, :] = 0.5
    values[1, :3, :, :] = 0.2  # one band missing everywhere: no complete pixel
    assert demo.valid_shares(values) == [0.5, 0.0]

    image = np.random.default_rng(0).uniform(0, 1, size=(4, 12, 16)).astype("float32")
    image[:, :2, :] = np.nan
    path = demo.quicklook(image, tmp_path / "q.png")
    with rasterio.open(path) as src:
        assert (src.count, src.width, src.height, src.dtypes[0]) == (4, 16, 12, "uint8")
        alpha = src.read(4)
        assert (alpha[:2] == 0).all() and (alpha[2:] == 255).all()
