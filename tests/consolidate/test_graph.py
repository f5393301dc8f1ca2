"""The consolidation graph without a catalogue: record images → COGs → MUCOG → upload, checked against the
plain reference read with GDAL; the stored-format cast; failures naming the file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasters import Scene, write_scene
from reference import RefGrid, RefSource, reference_image
from scenes import source_for

from geocube_dask.consolidate.files import FileSettings, record_subdir
from geocube_dask.consolidate.graph import Settings, consolidation_graph
from geocube_dask.consolidate.images import ImageSettings, to_stored
from geocube_dask.consolidate.plan import CellSpec, FilePlan
from geocube_dask.entities import DFormat
from geocube_dask.errors import SourceReadError
from geocube_dask.graph.grid import GridSpec
from geocube_dask.graph.plan import PlanRecord

CRS = "EPSG:32631"
VAR = DFormat("uint16", 0, 0, 10000)
CELL = CellSpec("c0", GridSpec(CRS, (20.0, 0.0, 360000.0, 0.0, -20.0, 4830000.0), 128, 128))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("graph-inputs")
    return {
        "a": write_scene(root / "a.tif", Scene(CRS, 359800.0, 4830200.0, 20.0, 100, 90), seed=1),
        "b": write_scene(root / "b.tif", Scene(CRS, 360900.0, 4829100.0, 10.0, 180, 150), seed=2),
        "c": write_scene(root / "c.tif", Scene("EPSG:32630", 844000.0, 4838000.0, 30.0, 80, 80), seed=3),
    }


@pytest.fixture(autouse=True)
def private_staging(tmp_path: Path):
    """Each test stages its files in its own folder: the graphs here share job token and file keys, and
    tests run in parallel processes."""
    with dask.config.set({"geocube.staging-dir": str(tmp_path / "staging")}):
        yield


def settings(stored: DFormat = VAR, exponent: float = 1.0, options=None) -> Settings:
    images = ImageSettings("refl", ("master",), ("B2", "B3", "B4"), VAR, "near", stored, exponent, chunks=64)
    files = FileSettings(options or {"COMPRESS": "ZSTD", "BLOCKSIZE": "64", "OVERVIEW_RESAMPLING": "NEAREST"},
                         overview_min_size=32, overview_resampling="NEAREST", pattern="mucog", nodata=stored.nodata)
    return Settings(images, files)


def record(i: int) -> PlanRecord:
    return PlanRecord(f"00000000-0000-0000-0000-{i:012d}", f"r{i}", datetime(2024, 1, 1 + i, tzinfo=UTC))


def file_plan(inputs, names: list[list[str]], uri: Path) -> FilePlan:
    records = tuple((record(i), tuple(source_for(str(inputs[n]), bands=(1, 2, 3), dataset_id=10 * i + k)
                                      for k, n in enumerate(group)))
                    for i, group in enumerate(names))
    return FilePlan("c0#0", str(uri), CELL, records)


def run(plans, s: Settings, token: str = "t0") -> dict:
    graph = consolidation_graph(plans, s, token)
    with dask.config.set(scheduler="threads", num_workers=2):
        return dict(zip(graph, dask.compute(*graph.values()), strict=True))


def grid() -> RefGrid:
    g = CELL.grid
    return RefGrid(g.crs, Affine(*g.transform), g.width, g.height)


def ref(inputs, names: list[str]) -> np.ndarray:
    return reference_image([RefSource(str(inputs[n]), (1, 2, 3), 0, 10000, 0, 10000) for n in names], grid(),
                           "uint16", 0, "near", 3)


def test_a_mucog_holds_each_records_cube_image(inputs, tmp_path: Path) -> None:
    uri = tmp_path / "out" / "c0" / "file.tif"
    groups = [["a"], ["b", "c"], ["c"]]  # record 1 paints c over b
    result = run([file_plan(inputs, groups, uri)], settings())["c0#0"]
    assert result["uri"] == str(uri) and [r["subdir"] for r in result["records"]] == [record_subdir(i)
                                                                                       for i in range(3)]
    for i, (names, described) in enumerate(zip(groups, result["records"], strict=True)):
        assert (described["width"], described["height"], described["crs"]) == (128, 128, CRS)
        assert described["transform"] == list(CELL.grid.transform) and described["overviews"] == [[64, 64], [32, 32]]
        with rasterio.open(f"GTIFF_DIR:{i + 1}:{uri}") as src:
            assert np.array_equal(src.read(), ref(inputs, names)), names
    assert not any((tmp_path / "out").rglob("record-*"))  # staging cleaned


def test_one_record_is_a_plain_cog(inputs, tmp_path: Path) -> None:
    uri = tmp_path / "single.tif"
    result = run([file_plan(inputs, [["b"]], uri)], settings())["c0#0"]
    assert [r["subdir"] for r in result["records"]] == [""]
    with rasterio.open(uri) as src:
        assert np.array_equal(src.read(), ref(inputs, ["b"])) and src.overviews(1) == [2, 4]


def test_stored_format_is_the_inverse_of_the_readers_mapping(inputs, tmp_path: Path) -> None:
    stored = DFormat("uint8", 255, 0, 250)
    uri = tmp_path / "q.tif"
    run([file_plan(inputs, [["a"]], uri)], settings(stored, exponent=2.0))
    want = ref(inputs, ["a"]).astype("float64")
    valid = want != 0
    # written plainly: vi = 250 * (ve / 10000) ** (1 / 2), rounded half up, saturated below the nodata 255
    expected = np.where(valid, np.minimum(np.floor(250 * np.sqrt(want / 10000) + 0.5), 254), 255).astype("uint8")
    with rasterio.open(uri) as src:
        assert np.array_equal(src.read(), expected)
    block = np.array([[0, 1, 2500, 10000, 10500]], dtype="uint16")
    assert to_stored(block, VAR, stored, 2.0).tolist() == [[255, 3, 125, 250, 254]]  # 256 is not nodata
    # with a lossy error bound of 1.5, valid values keep two steps away from nodata (either side)
    assert to_stored(block, VAR, stored, 2.0, 1.5).tolist() == [[255, 3, 125, 250, 253]]
    low = DFormat("int16", 0, -100, 100)
    values = np.array([[-10001, -10000, -200, -100, 0, 100, 200, 300, 10000]], dtype="int16")  # vi = ve / 100
    got = to_stored(values, DFormat("int16", -10001, -10000, 10000), low, 1.0, 1.5)
    assert got.tolist() == [[0, -100, -2, -2, 2, 2, 2, 3, 100]]  # -1, 0, 1 are within 1.5 of the nodata 0


def test_an_unreadable_source_fails_its_file_with_the_source_named(inputs, tmp_path: Path) -> None:
    missing = tmp_path / "gone.tif"
    missing.write_bytes(inputs["a"].read_bytes())
    plan = file_plan({"a": missing}, [["a"]], tmp_path / "x.tif")
    missing.unlink()
    with pytest.raises(SourceReadError, match=str(missing)):
        run([plan], settings(), token="t1")
    assert not (tmp_path / "x.tif").exists()
