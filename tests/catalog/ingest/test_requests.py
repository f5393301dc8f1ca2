"""prepare_dataset: indexing requests checked against real generated files and variables."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from rasters import SCENES, plain_tiff, write_scene

from geocube_dask.catalog.ingest.fileinfo import FileInfo, read_file_info
from geocube_dask.catalog.ingest.requests import prepare_dataset
from geocube_dask.entities import DFormat, Variable
from geocube_dask.errors import IncompatibleDataset, InvalidArgument, InvalidDFormat


def variable(
    dtype: str = "uint16", nodata: float = 0, vmin: float = 0, vmax: float = 10000, bands: int = 3
) -> Variable:
    names = tuple(f"b{i}" for i in range(1, bands + 1))
    return Variable("var-id", "reflectance", DFormat(dtype, float(nodata), float(vmin), float(vmax)), names)


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
