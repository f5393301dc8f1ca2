"""COG writing: options checked up front, files valid (rio-cogeo's validator), pixels exact (lossless) or
within the error bound (lossy), overviews, nodata and tiles as asked. Files are read back with GDAL and
their TIFF tags with tifffile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import rasterio.shutil
import tifffile
from affine import Affine
from rio_cogeo.cogeo import cog_validate

from geocube_dask.consolidate.cog import (
    LOSSLESS_CODECS,
    OVERVIEW_RESAMPLINGS,
    creation_options,
    overview_count,
    overview_resampling_for,
    write_cog,
)
from geocube_dask.entities import DTYPES, RESAMPLINGS
from geocube_dask.errors import InvalidArgument

CRS = "EPSG:32631"
TRANSFORM = Affine(10.0, 0.0, 360000.0, 0.0, -10.0, 4830000.0)
TIFF_ZSTD, TIFF_LERC, TIFF_DEFLATE, TIFF_JPEG = 50000, 34887, 8, 7


def image(dtype: str, bands: int = 2, height: int = 300, width: int = 520, nodata: float | None = None) -> np.ndarray:
    """Smooth values with noise over the dtype's range, a nodata block that empties whole tiles."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(len(dtype) + bands)
    kind = np.dtype(dtype)
    lo, hi = (np.iinfo(kind).min, np.iinfo(kind).max) if kind.kind in "iu" else (-1000.0, 1000.0)
    out = np.empty((bands, height, width), dtype)
    for b in range(bands):
        t = 0.5 + 0.45 * np.sin(x / (23.0 + b)) * np.cos(y / 31.0) + rng.normal(0, 0.01, (height, width))
        out[b] = np.clip(lo + (hi - lo) * t, lo, hi).astype(dtype)
    if nodata is not None:
        out[:, :128, :256] = nodata
    return out


def first_page_tags(path: Path) -> dict[str, Any]:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        return {"compression": int(page.compression), "predictor": int(page.predictor), "tile": page.tile}


def assert_within(back: np.ndarray, data: np.ndarray, max_error: float) -> None:
    """LERC keeps every value within max_error, plus the rounding of storing the result in the dtype."""
    error = np.abs(back.astype("float64") - data.astype("float64"))
    rounding = np.spacing(np.abs(data)).max() if data.dtype.kind == "f" else 0
    assert error.max() <= max_error + rounding
    assert error.max() > 0  # really lossy: LERC used the room it was given


def assert_valid_cog(path: Path) -> None:
    valid, errors, warnings = cog_validate(str(path), quiet=True)
    assert valid, errors
    assert not errors


@pytest.mark.parametrize("dtype", DTYPES)
def test_lossless_round_trip(tmp_path: Path, dtype: str) -> None:
    nodata = float("nan") if dtype.startswith("float") else np.iinfo(dtype).min
    data = image(dtype, nodata=nodata)
    path = tmp_path / "a.tif"
    write_cog(data, path, CRS, TRANSFORM, nodata, creation_options(dtype, block_size=128))
    assert_valid_cog(path)
    with rasterio.open(path) as ds:
        np.testing.assert_array_equal(ds.read(), data)  # NaN equal to NaN
        assert (ds.crs.to_string(), ds.transform, ds.block_shapes) == (CRS, TRANSFORM, [(128, 128)] * 2)
        np.testing.assert_array_equal(ds.nodatavals, [nodata] * 2)
    tags = first_page_tags(path)
    assert tags["compression"] == TIFF_ZSTD
    assert tags["predictor"] == (3 if dtype.startswith("float") else 2)
    with tifffile.TiffFile(path) as tif:  # the nodata tiles are left out (sparse)
        assert 0 in tif.pages[0].databytecounts


# TIFF compression tag values (TIFF 6 / libtiff's tiff.h), written here rather than taken from GDAL
TIFF_CODES = {"NONE": 1, "LZW": 5, "DEFLATE": 8, "LERC": 34887, "LZMA": 34925, "ZSTD": 50000}


@pytest.mark.parametrize("codec", LOSSLESS_CODECS)
@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_every_lossless_codec_gives_back_the_values(tmp_path: Path, codec: str, dtype: str) -> None:
    nodata = float("nan") if dtype == "float32" else 0
    data = image(dtype, nodata=nodata)
    path = tmp_path / "a.tif"
    write_cog(data, path, CRS, TRANSFORM, nodata, creation_options(dtype, block_size=128, codec=codec.lower()))
    assert_valid_cog(path)
    with rasterio.open(path) as ds:
        np.testing.assert_array_equal(ds.read(), data)
    tags = first_page_tags(path)
    assert tags["compression"] == TIFF_CODES[codec.split("_")[0]]
    takes_predictor = codec in ("LZW", "DEFLATE", "ZSTD")  # the COG driver ignores it with LZMA
    assert tags["predictor"] == ((3 if dtype == "float32" else 2) if takes_predictor else 1)


@pytest.mark.parametrize("codec", ["JPEG", "webp", "gzip", 7])
def test_a_lossy_or_unknown_codec_is_no_lossless_codec(codec: object) -> None:
    with pytest.raises(InvalidArgument, match="lossless codec"):
        creation_options("uint8", codec=codec)  # type: ignore[arg-type]


@pytest.mark.parametrize(("dtype", "max_error"), [("float32", 0.5), ("uint16", 3), ("int16", 10), ("float64", 0.01)])
def test_lossy_within_max_error(tmp_path: Path, dtype: str, max_error: float) -> None:
    data = image(dtype, nodata=None)
    path = tmp_path / "a.tif"
    write_cog(data, path, CRS, TRANSFORM, None, creation_options(dtype, "lossy", max_error=max_error))
    assert_valid_cog(path)
    with rasterio.open(path) as ds:
        assert_within(ds.read(), data, max_error)
    assert first_page_tags(path)["compression"] == TIFF_LERC


@pytest.mark.parametrize(
    ("height", "width", "min_size", "levels"),
    [
        (300, 520, -1, [2, 4]),  # 520 → 260 → 130 ≤ 256
        (300, 520, 256, [2, 4]),
        (300, 520, 0, []),
        (300, 520, 100, [2, 4, 8]),  # 520 → 260 → 130 → 65
        (200, 250, -1, []),  # already ≤ 256
        (1100, 90, 512, [2, 4]),  # 1100 → 550 → 275 ≤ 512
    ],
)
def test_overview_levels(tmp_path: Path, height: int, width: int, min_size: int, levels: list[int]) -> None:
    data = image("uint8", bands=1, height=height, width=width)
    path = tmp_path / "a.tif"
    write_cog(data, path, CRS, TRANSFORM, None, creation_options("uint8", block_size=64), overview_min_size=min_size)
    assert overview_count(height, width, min_size) == len(levels)
    with rasterio.open(path) as ds:
        assert ds.overviews(1) == levels
        assert ds.block_shapes == [(64, 64)]


@pytest.mark.parametrize(("resampling", "reduce"), [("average", np.mean), ("near", lambda b, axis: b[:, 0, :, 0])])
def test_overview_resampling_is_applied(tmp_path: Path, resampling: str, reduce: Any) -> None:
    data = image("float64", bands=1, height=512, width=512)
    path = tmp_path / "a.tif"
    options = creation_options("float64", overview_resampling=overview_resampling_for(resampling))
    write_cog(data, path, CRS, TRANSFORM, None, options)
    with rasterio.open(path, overview_level=0) as ds:
        level1 = ds.read(1)
    blocks = data[0].reshape(256, 2, 256, 2)  # a plain reference: 2×2 blocks
    expected = reduce(blocks, axis=(1, 3)) if resampling == "average" else reduce(blocks, axis=None)
    np.testing.assert_allclose(level1, expected, rtol=1e-12)


def test_overview_resampling_for_every_variable_resampling(tmp_path: Path) -> None:
    mapped = {name: overview_resampling_for(name) for name in RESAMPLINGS}
    assert {mapped[n] for n in ("bilinear", "cubic", "cubicspline", "lanczos", "average")} == {"AVERAGE"}
    assert mapped["near"] == "NEAREST" and mapped["mode"] == "MODE"
    assert {mapped[n] for n in ("min", "max", "med", "q1", "q3")} == {"NEAREST"}
    data = image("uint8", bands=1, height=300, width=300)
    for name in sorted(set(mapped.values())):  # GDAL accepts every name we map to
        write_cog(data, tmp_path / f"{name}.tif", CRS, TRANSFORM, None, creation_options("uint8"),
                  overview_resampling=name)
        with rasterio.open(tmp_path / f"{name}.tif") as ds:
            assert ds.overviews(1) == [2]


@pytest.mark.parametrize("name", ["MIN", "MAX", "MED", "Q1", "Q3"])
def test_gdal_has_no_min_max_quantile_overviews(tmp_path: Path, name: str) -> None:
    """Why overview_resampling_for maps these to NEAREST (if GDAL gains them, map them through)."""
    src = tmp_path / "src.tif"
    with rasterio.open(src, "w", driver="GTiff", width=300, height=300, count=1, dtype="uint8", crs=CRS,
                       transform=TRANSFORM) as ds:
        ds.write(image("uint8", bands=1, height=300, width=300))
    with pytest.raises(Exception, match="Unsupported resampling method"):  # rasterio's CPLE_AppDefinedError
        rasterio.shutil.copy(src, tmp_path / "a.tif", driver="COG", BLOCKSIZE=128, OVERVIEW_RESAMPLING=name)
    assert name not in OVERVIEW_RESAMPLINGS


def test_custom_options_reach_the_file(tmp_path: Path) -> None:
    data = image("int16", nodata=-1)
    options = creation_options("int16", "custom", creation_options={"compress": "deflate", "Level": 9, "PREDICTOR": 2})
    assert options["COMPRESS"] == "DEFLATE" and options["PREDICTOR"] == "STANDARD"
    path = tmp_path / "a.tif"
    write_cog(data, path, CRS, TRANSFORM, -1, options)
    assert_valid_cog(path)
    assert first_page_tags(path)["compression"] == TIFF_DEFLATE and first_page_tags(path)["predictor"] == 2
    with rasterio.open(path) as ds:
        np.testing.assert_array_equal(ds.read(), data)
        assert ds.nodata == -1


def test_jpeg_for_bytes(tmp_path: Path) -> None:
    data = image("uint8", bands=3)
    path = tmp_path / "a.tif"
    write_cog(data, path, CRS, TRANSFORM, None,
              creation_options("uint8", "custom", creation_options={"COMPRESS": "JPEG", "QUALITY": 90}))
    assert_valid_cog(path)
    assert first_page_tags(path)["compression"] == TIFF_JPEG
    with rasterio.open(path) as ds:
        assert np.abs(ds.read().astype(int) - data).mean() < 3


def test_no_compression(tmp_path: Path) -> None:
    data = image("uint32")
    path = tmp_path / "a.tif"
    write_cog(data, path, CRS, TRANSFORM, None, creation_options("uint32", "none"))
    assert first_page_tags(path)["compression"] == 1
    with rasterio.open(path) as ds:
        np.testing.assert_array_equal(ds.read(), data)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("complex64",), {}, "unknown dtype"),
        (("uint8", "fast"), {}, "unknown compression"),
        (("uint8", "lossy"), {}, "needs max_error"),
        (("uint8", "lossy"), {"max_error": -1}, "needs max_error"),
        (("uint8", "lossless"), {"max_error": 1}, "max_error is for"),
        (("uint8", "lossless"), {"creation_options": {"COMPRESS": "ZSTD"}}, "creation_options are for"),
        (("uint8", "custom"), {}, "needs creation_options"),
        (("uint8",), {"block_size": 100}, "multiple of 16"),
        (("uint8",), {"block_size": 8192}, "multiple of 16"),
        (("uint8",), {"overview_resampling": "sharpest"}, "unknown overview resampling"),
        (("uint16", "custom"), {"creation_options": {"COMPRESS": "JPEG"}}, "8-bit"),
        (("uint8", "custom"), {"creation_options": {"COMPRESS": "WEBP"}, "bands": 1}, "3 or 4 bands"),
        (("uint8", "custom"), {"creation_options": {"COMPRESS": "ZIP"}}, "must be one of"),
        (("uint8", "custom"), {"creation_options": {"COMPRESS": "ZSTD", "LEVEL": 30}}, r"\[0, 22\]|\[1, 22\]"),
        (("uint8", "custom"), {"creation_options": {"COMPRESS": "DEFLATE", "LEVEL": 15}}, r"\[1, 12\]"),
        (("uint8", "custom"), {"creation_options": {"COMPRESS": "LZW", "LEVEL": 5}}, "LEVEL applies"),
        (("int16", "custom"), {"creation_options": {"COMPRESS": "ZSTD", "PREDICTOR": 3}}, "for float data"),
        (("int16", "custom"), {"creation_options": {"COMPRESS": "LERC", "PREDICTOR": 2}}, "PREDICTOR applies"),
        (("int16", "custom"), {"creation_options": {"COMPRESS": "ZSTD", "MAX_Z_ERROR": 1}}, "MAX_Z_ERROR applies"),
        (("int16", "custom"), {"creation_options": {"COMPRESS": "LERC", "MAX_Z_ERROR": "x"}}, "number >= 0"),
        (("uint8", "custom"), {"creation_options": {"COMPRESS": "ZSTD", "QUALITY": 50}}, "QUALITY applies"),
        (("uint8", "custom"), {"creation_options": {"COMPRESS": "JPEG", "QUALITY": 0}}, r"\[1, 100\]"),
        (("uint8", "custom"), {"creation_options": {"BLOCKSIZE": 512}}, "layout's block_size"),
        (("uint8", "custom"), {"creation_options": {"OVERVIEW_COUNT": 2}}, "overview_min_size"),
        (("uint8", "custom"), {"creation_options": {"TARGET_SRS": "EPSG:4326"}}, "change the grid"),
        (("uint8", "custom"), {"creation_options": {"TILED": "YES"}}, "unknown or unsupported"),
        (("uint8", "custom"), {"creation_options": {"compress": "ZSTD", "COMPRESS": "LZW"}}, "twice"),
        (("uint8", "custom"), {"creation_options": {"SPARSE_OK": "maybe"}}, "must be one of"),
        (("uint8", "custom"), {"creation_options": {"NUM_THREADS": "many"}}, "integer"),
        (("uint8", "custom"), {"creation_options": {"COMPRESS": ["ZSTD"]}}, "text or a number"),
        (("uint16", "custom"), {"creation_options": {"OVERVIEW_COMPRESS": "JPEG"}}, "OVERVIEW_COMPRESS=JPEG"),
    ],
)
def test_bad_options_are_refused(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        creation_options(*args, **kwargs)


def test_every_allowed_custom_option_is_accepted_by_gdal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The allow-list holds only names and values the COG driver knows (it would log a warning otherwise)."""
    options = creation_options("float32", "custom", creation_options={
        "COMPRESS": "LERC_ZSTD", "LEVEL": 5, "MAX_Z_ERROR": 0.001, "MAX_Z_ERROR_OVERVIEW": 0.01, "NUM_THREADS": 2,
        "BIGTIFF": "IF_SAFER", "SPARSE_OK": "yes", "OVERVIEW_RESAMPLING": "cubic", "STATISTICS": "NO",
        "OVERVIEW_COMPRESS": "ZSTD", "OVERVIEW_PREDICTOR": "FLOATING_POINT",
    })
    assert options["OVERVIEW_RESAMPLING"] == "CUBIC"  # a GDAL name is kept as it is
    caplog.set_level("WARNING", logger="rasterio")
    data = image("float32", bands=1)
    write_cog(data, tmp_path / "a.tif", CRS, TRANSFORM, None, options)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("rasterio")] == []
    with rasterio.open(tmp_path / "a.tif") as ds:
        assert_within(ds.read(), data, 0.001)


@pytest.mark.parametrize(
    ("array", "nodata", "message"),
    [
        (np.zeros((1, 0, 4), "uint8"), None, "not empty"),
        (np.zeros((1, 1, 4, 4), "uint8"), None, "bands, height, width"),
        (np.zeros((1, 4, 4), "complex64"), None, "dtype"),
        (np.zeros((1, 4, 4), "uint8"), 300, "not an integer of uint8"),
        (np.zeros((1, 4, 4), "int16"), 1.5, "not an integer of int16"),
        (np.zeros((1, 4, 4), "uint8"), "0", "a number or None"),
    ],
)
def test_write_cog_checks_its_inputs(tmp_path: Path, array: np.ndarray, nodata: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        write_cog(array, tmp_path / "a.tif", CRS, TRANSFORM, nodata, {"COMPRESS": "NONE"})
    assert not (tmp_path / "a.tif").exists()
