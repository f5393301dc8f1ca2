"""read_file_info on real generated rasters (local, over HTTP and over S3)."""

from __future__ import annotations

import math
import os
import uuid
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.control import GroundControlPoint
from rasters import SCENES, Scene, plain_tiff, write_scene
from shapely.geometry import Point, box

from geocube_dask.catalog.ingest.fileinfo import read_file_info
from geocube_dask.errors import UnreadableFile

# --- read_file_info: headers ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENES))
def test_header_of_each_crs(name: str, scene_files: dict[str, Path]) -> None:
    scene = SCENES[name]
    info = read_file_info(str(scene_files[name]))
    assert info.uri == str(scene_files[name]) and info.subdir == ""
    assert info.crs == scene.crs
    assert info.transform == tuple(scene.transform)[:6]
    assert (info.width, info.height, info.count) == (scene.width, scene.height, 3)
    assert info.dtypes == ("uint16",) * 3 and info.nodatas == (0.0,) * 3
    # sizes of the overview levels, as GDAL opens them (ceil of size / factor for GDAL-built overviews)
    assert info.overviews == tuple(
        (math.ceil(scene.width / f), math.ceil(scene.height / f)) for f in (2, 4)
    )
    for level, size in enumerate(info.overviews):
        with rasterio.open(scene_files[name], overview_level=level) as ovr:
            assert (ovr.width, ovr.height) == size
    left, bottom, right, top = scene.bounds
    native = shapely.from_wkt(info.footprint_wkt)
    assert native.equals(box(left, bottom, right, top))


def test_nodata_variants(tmp_path: Path) -> None:
    none = read_file_info(str(write_scene(tmp_path / "none.tif", "utm31", nodata=None)))
    assert none.nodatas == (None, None, None)
    nan = read_file_info(str(write_scene(tmp_path / "nan.tif", "l93", dtype="float32", nodata=float("nan"))))
    assert nan.dtypes == ("float32",) * 3 and all(math.isnan(v) for v in nan.nodatas)
    neg = read_file_info(str(write_scene(tmp_path / "neg.tif", "utm32", bands=1, dtype="int16", nodata=-10001)))
    assert neg.nodatas == (-10001.0,) and neg.count == 1


def test_overviews_absent_and_multiband(tmp_path: Path) -> None:
    info = read_file_info(str(write_scene(tmp_path / "flat.tif", "wgs84", overviews=(), bands=6)))
    assert info.overviews == () and info.count == 6 and info.crs == "EPSG:4326"
    deep = read_file_info(str(write_scene(tmp_path / "deep.tif", "utm32", overviews=(2, 4, 8), cog=False)))
    assert [w for w, _ in deep.overviews] == [129, 65, 33]


def test_uri_forms(tmp_path: Path, scene_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    path = scene_files["utm31"]
    via_file_uri = read_file_info(path.as_uri())
    assert via_file_uri.uri == str(path)
    monkeypatch.chdir(path.parent)
    assert read_file_info(path.name) == via_file_uri


def test_custom_crs_is_kept_as_wkt(tmp_path: Path) -> None:
    wkt = (
        'PROJCS["custom sinusoidal",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
        'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Sinusoidal"],'
        'PARAMETER["longitude_of_center",10],PARAMETER["false_easting",0],PARAMETER["false_northing",0],'
        'UNIT["metre",1]]'
    )
    scene = Scene(wkt, -50000.0, 5000000.0, 100.0, 120, 80)
    info = read_file_info(str(write_scene(tmp_path / "sinu.tif", scene)))
    assert not info.crs.startswith("EPSG:") and "Sinusoidal" in info.crs
    lon, lat = Transformer.from_crs(wkt, "EPSG:4326", always_xy=True).transform(-50000.0, 5000000.0)
    assert shapely.from_wkt(info.footprint_4326_wkt).exterior.distance(Point(lon, lat)) < 1e-9


# --- read_file_info: sub-images ------------------------------------------------------------------------


def test_subdir_of_a_multi_image_tiff(tmp_path: Path) -> None:
    first = write_scene(tmp_path / "a.tif", "utm32", cog=False, overviews=())
    second = write_scene(tmp_path / "b.tif", "utm32", cog=False, overviews=(), bands=2, dtype="int16", nodata=-1)
    multi = tmp_path / "multi.tif"
    with rasterio.open(first) as src:
        rasterio.shutil.copy(src, multi, driver="GTiff", TILED=True)
    with rasterio.open(second) as src:
        rasterio.shutil.copy(src, multi, driver="GTiff", TILED=True, APPEND_SUBDATASET=True)
    one = read_file_info(str(multi), "GTIFF_DIR:1")
    two = read_file_info(str(multi), "GTIFF_DIR:2")
    assert (one.subdir, one.count, one.dtypes) == ("GTIFF_DIR:1", 3, ("uint16",) * 3)
    assert (two.subdir, two.count, two.dtypes, two.nodatas) == ("GTIFF_DIR:2", 2, ("int16",) * 2, (-1.0, -1.0))
    assert two.uri == str(multi) and two.footprint_4326_wkt == one.footprint_4326_wkt
    with pytest.raises(UnreadableFile, match="GTIFF_DIR:7"):
        read_file_info(str(multi), "GTIFF_DIR:7")


# --- read_file_info: refusals ---------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match=r"nope\.tif.*does not exist"):
        read_file_info(str(tmp_path / "nope.tif"))


def test_not_a_raster(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a raster\n")
    with pytest.raises(UnreadableFile, match=r"notes\.txt.*not a raster"):
        read_file_info(str(text))
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype="uint8").tobytes())
    with pytest.raises(UnreadableFile, match=r"garbage\.tif"):
        read_file_info(str(garbage))


@pytest.mark.parametrize("cog", [True, False])
def test_truncated_tiff(tmp_path: Path, cog: bool) -> None:
    path = write_scene(tmp_path / "whole.tif", "utm31", cog=cog)
    data = path.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableFile, match=r"cut\.tif.*truncated or corrupt"):
        read_file_info(str(cut))
    assert read_file_info(str(cut), check_data=False).width == 300  # the header alone is intact


def test_header_cut_short(tmp_path: Path) -> None:
    path = write_scene(tmp_path / "whole.tif", "utm31")
    cut = tmp_path / "stub.tif"
    cut.write_bytes(path.read_bytes()[:300])
    with pytest.raises(UnreadableFile, match=r"stub\.tif"):
        read_file_info(str(cut))


def test_not_georeferenced(tmp_path: Path) -> None:
    data = np.ones((1, 10, 10), dtype="uint8")
    transform = Affine(10, 0, 500000, 0, -10, 100)
    gcps = [GroundControlPoint(0, 0, 500000, 100), GroundControlPoint(0, 10, 500100, 100),
            GroundControlPoint(10, 0, 500000, 0)]
    cases = {
        "bare.tif": ({}, "not georeferenced"),
        "crs_only.tif": ({"crs": "EPSG:32631"}, "no geotransform"),
        "transform_only.tif": ({"transform": transform}, "no coordinate reference system"),
        "gcps.tif": ({"crs": "EPSG:32631", "gcps": gcps}, "GCPs only"),
    }
    for name, (profile, message) in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            path = plain_tiff(tmp_path / name, data, **profile)
        with pytest.raises(UnreadableFile, match=message):
            read_file_info(str(path))


# --- read_file_info: remote ------------------------------------------------------------------------------


def test_same_info_over_http_and_s3(tmp_path: Path, http_server, s3_server, s3_env) -> None:
    path = write_scene(tmp_path / "scene.tif", "l93", seed=4)
    local = read_file_info(str(path))
    url = http_server.put(path, f"{uuid.uuid4().hex}/scene.tif")
    s3_uri = s3_server.upload(path, f"idx-{uuid.uuid4().hex[:12]}", "deep/dir/scene.tif")
    over_http = read_file_info(url)
    over_s3 = read_file_info(s3_uri)
    assert over_http.uri == url and over_s3.uri == s3_uri
    assert replace(over_http, uri=local.uri) == local
    assert replace(over_s3, uri=local.uri) == local


def test_remote_missing_and_truncated(tmp_path: Path, http_server, s3_server, s3_env) -> None:
    folder = uuid.uuid4().hex
    with pytest.raises(UnreadableFile, match=rf"{folder}/missing\.tif.*does not exist or could not be reached"):
        read_file_info(http_server.url(f"{folder}/missing.tif"))
    bucket = s3_server.create_bucket(f"miss-{uuid.uuid4().hex[:12]}")
    with pytest.raises(UnreadableFile, match=r"missing\.tif.*does not exist or could not be reached"):
        read_file_info(f"{bucket}/missing.tif")
    with pytest.raises(UnreadableFile, match=r"does not exist or could not be reached"):
        read_file_info(f"s3://no-such-bucket-{folder[:12]}/a.tif")
    path = write_scene(tmp_path / "whole.tif", "utm32")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])
    with pytest.raises(UnreadableFile, match="truncated or corrupt"):
        read_file_info(http_server.put(cut, f"{folder}/cut.tif"))
