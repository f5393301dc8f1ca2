"""read_file_info and prepare_dataset on real generated rasters (local, over HTTP and over S3)."""

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
from rasters import SCENES, Scene, write_scene
from shapely.geometry import Point, box

from geocube_dask.catalog.indexing import FileInfo, prepare_dataset, read_file_info
from geocube_dask.entities import DFormat, Variable
from geocube_dask.errors import IncompatibleDataset, InvalidArgument, InvalidDFormat, UnreadableFile


def variable(
    dtype: str = "uint16", nodata: float = 0, vmin: float = 0, vmax: float = 10000, bands: int = 3
) -> Variable:
    names = tuple(f"b{i}" for i in range(1, bands + 1))
    return Variable("var-id", "reflectance", DFormat(dtype, float(nodata), float(vmin), float(vmax)), names)


def plain_tiff(path: Path, data: np.ndarray, **profile) -> Path:
    """A small GeoTIFF written with rasterio directly (for odd headers the synthetic module does not make)."""
    count, height, width = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=count, dtype=data.dtype.name,
                       **profile) as dst:
        dst.write(data)
    return path


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


# --- prepare_dataset -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def utm_info(scene_files: dict[str, Path]) -> FileInfo:
    return read_file_info(str(scene_files["utm31"]))


def test_defaults_for_a_file_in_the_variable_dtype(utm_info: FileInfo) -> None:
    var = variable()
    ds = prepare_dataset(utm_info, var)
    assert ds.bands == (1, 2, 3)
    assert ds.dformat == DFormat("uint16", 0.0, 0.0, 10000.0)  # identity: the file stores the variable's values
    assert (ds.real_min, ds.real_max, ds.exponent) == (0.0, 10000.0, 1.0)
    assert (ds.uri, ds.crs, ds.transform, ds.overviews) == (utm_info.uri, utm_info.crs, utm_info.transform,
                                                           utm_info.overviews)
    assert (ds.footprint_wkt, ds.footprint_4326_wkt) == (utm_info.footprint_wkt, utm_info.footprint_4326_wkt)
    one = prepare_dataset(utm_info, variable(bands=1), bands=[3])
    assert one.bands == (3,)


def test_default_dformat_rules(tmp_path: Path) -> None:
    u8 = read_file_info(str(write_scene(tmp_path / "u8.tif", "utm31", bands=1, dtype="uint8", nodata=255)))
    # 0..10000 does not fit in uint8: the full uint8 range is stretched onto the variable range
    assert prepare_dataset(u8, variable(bands=1)).dformat == DFormat("uint8", 255.0, 0.0, 255.0)
    i16 = read_file_info(str(write_scene(tmp_path / "i16.tif", "utm31", bands=1, dtype="int16", nodata=-1)))
    # 0..10000 fits in int16: stored values are the variable's values
    assert prepare_dataset(i16, variable(bands=1)).dformat == DFormat("int16", -1.0, 0.0, 10000.0)
    f32 = read_file_info(str(write_scene(tmp_path / "f32.tif", "utm31", bands=1, dtype="float32", nodata=float("nan"))))
    fmt = prepare_dataset(f32, variable(bands=1)).dformat
    assert (fmt.dtype, fmt.nodata_is_nan, fmt.min, fmt.max) == ("float32", True, 0.0, 10000.0)
    free = read_file_info(str(write_scene(tmp_path / "free.tif", "utm31", bands=1, nodata=None)))
    assert prepare_dataset(free, variable(bands=1)).dformat.nodata is None


def test_band_choices(utm_info: FileInfo) -> None:
    with pytest.raises(IncompatibleDataset, match=r"2 band\(s\).*has 3.*give exactly 3"):
        prepare_dataset(utm_info, variable(), bands=[1, 2])
    with pytest.raises(IncompatibleDataset, match=r"band 4 does not exist.*3 band\(s\)"):
        prepare_dataset(utm_info, variable(), bands=[2, 3, 4])
    with pytest.raises(IncompatibleDataset, match=r"band 0 does not exist"):
        prepare_dataset(utm_info, variable(bands=1), bands=[0])
    with pytest.raises(IncompatibleDataset, match=r"band 4 does not exist.*by default the first 4"):
        prepare_dataset(utm_info, variable(bands=4))
    with pytest.raises(InvalidArgument, match="integers"):
        prepare_dataset(utm_info, variable(bands=1), bands=[1.5])
    with pytest.raises(InvalidArgument, match="sequence"):
        prepare_dataset(utm_info, variable(bands=1), bands="1")
    assert prepare_dataset(utm_info, variable(bands=2), bands=np.array([3, 1])).bands == (3, 1)


def _mixed_vrt(tmp_path: Path) -> Path:
    """A VRT whose two bands have different dtypes (a GeoTIFF cannot), pointing at two real files."""
    a = write_scene(tmp_path / "mix_u16.tif", "utm31", bands=1)
    b = write_scene(tmp_path / "mix_f32.tif", "utm31", bands=1, dtype="float32", nodata=-1)
    scene = SCENES["utm31"]
    with rasterio.open(a) as src:
        srs = src.crs.to_wkt()
    bands = ""
    for i, (path, dtype) in enumerate(((a, "UInt16"), (b, "Float32")), start=1):
        bands += (
            f'<VRTRasterBand dataType="{dtype}" band="{i}"><SimpleSource>'
            f'<SourceFilename relativeToVRT="0">{path}</SourceFilename><SourceBand>1</SourceBand>'
            f"</SimpleSource></VRTRasterBand>"
        )
    vrt = tmp_path / "mixed.vrt"
    gt = ", ".join(str(v) for v in scene.transform.to_gdal())
    vrt.write_text(
        f'<VRTDataset rasterXSize="{scene.width}" rasterYSize="{scene.height}"><SRS>{srs}</SRS>'
        f"<GeoTransform>{gt}</GeoTransform>{bands}</VRTDataset>"
    )
    return vrt


def test_mixed_dtypes(tmp_path: Path) -> None:
    info = read_file_info(str(_mixed_vrt(tmp_path)))
    assert info.dtypes == ("uint16", "float32")
    with pytest.raises(IncompatibleDataset, match=r"different dtypes \(band 1: uint16, band 2: float32\)"):
        prepare_dataset(info, variable(bands=2))
    assert prepare_dataset(info, variable(bands=1), bands=[2]).dformat.dtype == "float32"


def test_unsupported_dtype(tmp_path: Path) -> None:
    path = plain_tiff(tmp_path / "i64.tif", np.ones((1, 8, 8), dtype="int64"), crs="EPSG:32631",
                      transform=Affine(10, 0, 500000, 0, -10, 100))
    with pytest.raises(IncompatibleDataset, match="int64.*convert"):
        prepare_dataset(read_file_info(str(path)), variable(bands=1))


def test_different_nodata_per_band(utm_info: FileInfo) -> None:
    info = replace(utm_info, nodatas=(0.0, 0.0, None))
    with pytest.raises(IncompatibleDataset, match="different nodata.*give dformat"):
        prepare_dataset(info, variable())
    assert prepare_dataset(info, variable(), dformat=("uint16", 0, 0, 10000)).dformat.nodata == 0
    assert prepare_dataset(info, variable(bands=2), bands=[1, 2]).dformat.nodata == 0


def test_file_nodata_invalid_for_its_dtype(utm_info: FileInfo) -> None:
    info = replace(utm_info, nodatas=(-9999.0,) * 3)  # a uint16 file claiming nodata -9999
    with pytest.raises(IncompatibleDataset, match="cannot derive the internal dformat.*give"):
        prepare_dataset(info, variable())


def test_given_dformat(utm_info: FileInfo) -> None:
    ds = prepare_dataset(utm_info, variable(), dformat=("uint16", 65535, 1, 10001))
    assert ds.dformat == DFormat("uint16", 65535.0, 1.0, 10001.0)
    # another dtype: the file's dtype wins, the rest is kept when it is valid there
    ds = prepare_dataset(utm_info, variable(), dformat=DFormat("int16", 0.0, 0.0, 10000.0))
    assert ds.dformat == DFormat("uint16", 0.0, 0.0, 10000.0)
    with pytest.raises(IncompatibleDataset, match="says int16 but.*stores uint16.*wins"):
        prepare_dataset(utm_info, variable(), dformat=("int16", -10001, -10000, 10000))
    with pytest.raises(InvalidDFormat):
        prepare_dataset(utm_info, variable(), dformat=("uint16", 0, 10, 5))
    no_nodata = prepare_dataset(utm_info, variable(), dformat={"dtype": "uint16", "nodata": None, "min": 0, "max": 1})
    assert no_nodata.dformat.nodata is None


def test_real_range(utm_info: FileInfo) -> None:
    var = variable("float32", float("nan"), -1, 1)
    ds = prepare_dataset(utm_info, var, dformat=("uint16", 0, 0, 10000), real_min=0, real_max=1)
    assert (ds.real_min, ds.real_max) == (0.0, 1.0)
    assert (prepare_dataset(utm_info, var).real_min, prepare_dataset(utm_info, var).real_max) == (-1.0, 1.0)
    decreasing = prepare_dataset(utm_info, var, real_min=1, real_max=-3)
    assert (decreasing.real_min, decreasing.real_max) == (1.0, -3.0)
    assert prepare_dataset(utm_info, var, real_min=1, real_max=5).real_max == 5.0  # touches the variable range
    with pytest.raises(IncompatibleDataset, match=r"\[2.0, 5.0\] does not intersect.*\[-1.0, 1.0\]"):
        prepare_dataset(utm_info, var, real_min=2, real_max=5)
    with pytest.raises(IncompatibleDataset, match="does not intersect"):
        prepare_dataset(utm_info, var, real_min=-2, real_max=-5)
    with pytest.raises(InvalidArgument, match="both 0.5.*must differ"):
        prepare_dataset(utm_info, var, real_min=0.5, real_max=0.5)
    for bad in (float("nan"), float("inf"), "1", True):
        with pytest.raises(InvalidArgument, match="real_max must be a finite number"):
            prepare_dataset(utm_info, var, real_max=bad)


@pytest.mark.parametrize("exponent", [0, -1, float("nan"), float("inf"), "2", None])
def test_bad_exponent(utm_info: FileInfo, exponent: object) -> None:
    with pytest.raises(InvalidArgument, match="exponent"):
        prepare_dataset(utm_info, variable(), exponent=exponent)  # type: ignore[arg-type]


def test_exponent_kept(utm_info: FileInfo) -> None:
    assert prepare_dataset(utm_info, variable(), exponent=0.5).exponent == 0.5
    assert prepare_dataset(utm_info, variable(), exponent=np.float32(2)).exponent == 2.0
