"""``geocube_dask.synthetic``: deterministic reflectance-like fields, swath masks and the (COG) files written."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Compression

from geocube_dask.synthetic import reflectance_field, swath_mask, write_raster, write_reflectance

RES = 20.0
WAVELENGTH = 150 * RES  # what write_reflectance picks for 20 m pixels
W, H = 256, 192
# tile B starts 64 columns right of and 40 rows below tile A, on the same 20 m grid of UTM 31N
TILE_A = Affine(RES, 0.0, 360000.0, 0.0, -RES, 4830000.0)
TILE_B = Affine(RES, 0.0, 360000.0 + 64 * RES, 0.0, -RES, 4830000.0 - 40 * RES)
DC, DR = 64, 40


def read(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    with rasterio.open(path) as src:
        return dict(src.profile), src.read()


def assert_top_left_staircase(mask: np.ndarray) -> None:
    """``mask`` is a non-empty region cut off the top-left corner by a line going down to the left."""
    assert mask[0, 0] and not mask[-1, -1]
    # masked pixels have their left and upper neighbours masked too
    assert not np.any(mask[:, 1:] & ~mask[:, :-1])
    assert not np.any(mask[1:, :] & ~mask[:-1, :])


def row_slope(mask: np.ndarray) -> float:
    """How many fewer masked pixels each row has than the row above it, on average."""
    counts = mask.sum(axis=1)
    rows = np.flatnonzero(counts > 0)
    return float(counts[rows[0]] - counts[rows[-1]]) / (rows[-1] - rows[0])


# --- reflectance_field --------------------------------------------------------------------------------------


def test_field_shape_and_determinism() -> None:
    first = reflectance_field(TILE_A, W, H, bands=3, seed=5, wavelength=WAVELENGTH)
    again = reflectance_field(TILE_A, W, H, bands=3, seed=5, wavelength=WAVELENGTH)
    other = reflectance_field(TILE_A, W, H, bands=3, seed=6, wavelength=WAVELENGTH)
    assert first.shape == (3, H, W) and first.dtype == np.float64
    np.testing.assert_array_equal(first, again)
    assert np.mean(np.abs(first - other)) > 100  # another seed is another "date", not a rounding difference


def test_field_without_clouds_is_within_0_10000() -> None:
    # smooth part: 300 + 6000·base·(0.6 + 0.1 b) + 900·detail·(1 + 0.2 b), base and detail in [0, 1]:
    # at most 300 + 5400 + 1440 = 7140 for band 3, plus N(0, 40) noise
    for seed in range(3):
        field = reflectance_field(TILE_A, W, H, bands=4, seed=seed, wavelength=WAVELENGTH, clouds=0)
        assert field.min() > 0
        bounds = [300 + 6000 * (0.6 + 0.1 * b) + 900 * (1 + 0.2 * b) + 8 * 40 for b in range(4)]  # 8 σ of noise
        assert np.all(field.max(axis=(1, 2)) < bounds)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clouds_are_local_bright_blobs_above_10000(seed: int) -> None:
    cloudy = reflectance_field(TILE_A, W, H, bands=4, seed=seed, wavelength=WAVELENGTH, clouds=2)
    clear = reflectance_field(TILE_A, W, H, bands=4, seed=seed, wavelength=WAVELENGTH, clouds=0)
    added = cloudy - clear
    assert added.min() > -1e-6  # clouds only brighten
    np.testing.assert_allclose(added, np.broadcast_to(added[0], added.shape), atol=1e-6)  # same in every band
    assert 8000 < added.max() <= 2 * 9000  # a blob peaks at 9000 (two may overlap)
    assert np.mean(added[0] < 100) > 0.6  # blobs are local: most of the image is clear
    assert cloudy.max() > 10000  # clouds exceed the 0..10000 range


def test_the_smooth_part_is_georeferenced_so_overlapping_tiles_agree_up_to_noise() -> None:
    a = reflectance_field(TILE_A, W, H, bands=4, seed=3, wavelength=WAVELENGTH, clouds=0)
    b = reflectance_field(TILE_B, W, H, bands=4, seed=3, wavelength=WAVELENGTH, clouds=0)
    diff = a[:, DR:, DC:] - b[:, : H - DR, : W - DC]  # the same georeferenced pixels
    # two independent N(0, 40) noises: the difference is N(0, 40·√2 ≈ 56.6)
    assert abs(diff.mean()) < 3
    assert 50 < diff.std() < 63
    assert np.abs(diff).max() < 8 * 56.6
    # on the same pixel indices (not the same places) the tiles differ by much more than noise
    misplaced = a[:, : H - DR, : W - DC] - b[:, : H - DR, : W - DC]
    assert np.sqrt(np.mean(misplaced**2)) > 5 * 56.6


# --- swath_mask ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.0, -0.5])
def test_no_fraction_no_nodata(fraction: float) -> None:
    mask = swath_mask(50, 40, fraction, seed=1)
    assert mask.shape == (40, 50) and mask.dtype == bool and not mask.any()


def test_fraction_one_covers_everything() -> None:
    assert swath_mask(50, 40, 1.0, seed=1).all()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_swath_is_a_diagonal_edge_from_the_top_left(seed: int) -> None:
    mask = swath_mask(120, 90, 0.3, seed)
    assert mask.shape == (90, 120)
    assert_top_left_staircase(mask)
    assert 0.2 - 0.02 <= row_slope(mask) <= 0.6 + 0.02  # the edge drops 0.2..0.6 columns per row
    np.testing.assert_array_equal(mask, swath_mask(120, 90, 0.3, seed))


def test_swath_grows_with_the_fraction() -> None:
    masks = [swath_mask(120, 90, f, seed=4) for f in (0.1, 0.3, 0.5, 0.8)]
    for smaller, larger in zip(masks, masks[1:], strict=False):
        assert not np.any(smaller & ~larger)
        assert larger.sum() > smaller.sum()


def test_half_a_square_image() -> None:
    # in an n × n image the edge is the line c + s·r = (n + s·n)/2: each row r has (n + s·n)/2 - s·r masked
    # pixels, n/2 on average over the rows, whatever the slope s
    for seed in range(3):
        assert swath_mask(200, 200, 0.5, seed).mean() == pytest.approx(0.5, abs=0.01)


def test_seed_changes_the_slope() -> None:
    slopes = {round(row_slope(swath_mask(200, 200, 0.5, seed)), 2) for seed in range(4)}
    assert len(slopes) > 1


# --- write_reflectance --------------------------------------------------------------------------------------


def write_tile(path: Path, transform: Affine = TILE_A, **kwargs: Any) -> Path:
    args: dict[str, Any] = dict(crs="EPSG:32631", transform=transform, width=W, height=H, seed=1, blocksize=128)
    args.update(kwargs)
    return write_reflectance(path, **args)


def test_reflectance_cog_header(tmp_path: Path) -> None:
    path = write_tile(tmp_path / "sub" / "dir" / "a.tif", bands=3, nodata_fraction=0.3)
    assert path == tmp_path / "sub" / "dir" / "a.tif"
    with rasterio.open(path) as src:
        assert src.driver == "GTiff"
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.crs == CRS.from_epsg(32631)
        assert src.transform == TILE_A
        assert (src.width, src.height, src.count) == (W, H, 3)
        assert src.dtypes == ("uint16",) * 3
        assert src.nodata == 0
        assert src.compression == Compression.deflate
        assert src.profile["tiled"] and src.block_shapes == [(128, 128)] * 3
        assert [src.overviews(b) for b in (1, 2, 3)] == [[2, 4]] * 3
    with rasterio.open(path, overview_level=0) as ovr:
        assert (ovr.width, ovr.height) == (W // 2, H // 2)
    with rasterio.open(path, overview_level=1) as ovr:
        assert (ovr.width, ovr.height) == (W // 4, H // 4)


def test_reflectance_values(tmp_path: Path) -> None:
    _, data = read(write_tile(tmp_path / "a.tif", bands=4, nodata_fraction=0.3))
    nodata = data == 0
    for band in range(1, 4):
        np.testing.assert_array_equal(nodata[band], nodata[0])  # one swath for all bands
    assert_top_left_staircase(nodata[0])
    assert 0.3 / 2 < nodata[0].mean() <= 0.3
    valid = data[:, ~nodata[0]]
    assert valid.min() >= 1
    assert np.mean(valid <= 10000) > 0.9  # mostly 0..10000 …
    assert 10000 < valid.max() < 65535  # … but clouds go above and stay there (no wrap, no clipping at 10000)


def test_reflectance_without_nodata_swath(tmp_path: Path) -> None:
    profile, data = read(write_tile(tmp_path / "a.tif", nodata_fraction=0.0))
    assert profile["nodata"] == 0 and data.min() > 0  # no pixel is mistaken for nodata
    profile, data = read(write_tile(tmp_path / "b.tif", nodata=None))
    assert profile["nodata"] is None


def test_a_swath_needs_a_nodata_value(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a nodata value"):
        write_tile(tmp_path / "a.tif", nodata=None, nodata_fraction=0.2)
    assert not (tmp_path / "a.tif").exists()


def test_same_arguments_same_bytes_other_seed_other_values(tmp_path: Path) -> None:
    first = write_tile(tmp_path / "a.tif", nodata_fraction=0.2)
    again = write_tile(tmp_path / "b.tif", nodata_fraction=0.2)
    other = write_tile(tmp_path / "c.tif", nodata_fraction=0.2, seed=2)
    assert first.read_bytes() == again.read_bytes()
    _, a = read(first)
    _, c = read(other)
    both = (a != 0) & (c != 0)
    assert np.mean(np.abs(a.astype("int64") - c)[both]) > 100


def test_plain_geotiff_has_the_same_pixels_and_overviews(tmp_path: Path) -> None:
    cog = write_tile(tmp_path / "cog.tif", nodata_fraction=0.2, overviews=(2, 4, 8))
    tif = write_tile(tmp_path / "plain.tif", nodata_fraction=0.2, overviews=(2, 4, 8), cog=False)
    with rasterio.open(cog) as a, rasterio.open(tif) as b:
        assert b.driver == "GTiff" and b.profile["tiled"] and b.block_shapes == [(128, 128)] * 4
        assert b.overviews(1) == a.overviews(1) == [2, 4, 8]
        assert (b.crs, b.transform, b.nodata) == (a.crs, a.transform, a.nodata)
        np.testing.assert_array_equal(a.read(), b.read())
        np.testing.assert_array_equal(a.read(out_shape=(4, H // 4, W // 4)), b.read(out_shape=(4, H // 4, W // 4)))


def test_float_reflectance_is_scaled_to_0_1_with_nan_nodata(tmp_path: Path) -> None:
    ints = read(write_tile(tmp_path / "u16.tif", nodata_fraction=0.25))[1]
    profile, floats = read(write_tile(tmp_path / "f32.tif", dtype="float32", nodata=math.nan, nodata_fraction=0.25))
    assert profile["dtype"] == "float32" and math.isnan(profile["nodata"])
    # the same swath: NaN where the uint16 file has 0
    np.testing.assert_array_equal(np.isnan(floats), ints == 0)
    valid = ints != 0
    # uint16 0..10000 means 0..1: the integer file is the float one × 10000, rounded
    assert np.abs(floats[valid].astype("float64") * 10000 - ints[valid]).max() <= 0.5 + 1e-3
    assert np.mean(floats[valid] <= 1.0) > 0.9


def test_integer_reflectance_saturates_and_keeps_nodata_for_the_swath(tmp_path: Path) -> None:
    # every value of the field (≥ 300 or so) is above the uint8 range: all pixels saturate at 255, and since
    # 255 is the nodata value, valid pixels are moved to 254 so that only the swath reads as nodata
    _, clear = read(write_tile(tmp_path / "clear.tif", dtype="uint8", nodata=255, nodata_fraction=0.0))
    assert np.all(clear == 254)
    _, swath = read(write_tile(tmp_path / "swath.tif", dtype="uint8", nodata=255, nodata_fraction=0.3))
    assert set(np.unique(swath)) == {254, 255}
    assert_top_left_staircase(swath[0] == 255)


def test_int16_reflectance(tmp_path: Path) -> None:
    profile, data = read(write_tile(tmp_path / "i16.tif", dtype="int16", nodata=-1, nodata_fraction=0.2))
    assert profile["dtype"] == "int16" and profile["nodata"] == -1
    valid = data[:, data[0] != -1]
    assert valid.min() > 0 and valid.max() <= 32767
    assert_top_left_staircase(data[0] == -1)


def test_overlapping_tiles_share_georeferenced_pixels(tmp_path: Path) -> None:
    with rasterio.open(write_tile(tmp_path / "a.tif")) as a, rasterio.open(write_tile(tmp_path / "b.tif", TILE_B)) as b:
        # the centre of B's first pixel is pixel (DR, DC) of A
        x, y = b.xy(0, 0)
        assert a.index(x, y) == (DR, DC)


# --- write_raster -------------------------------------------------------------------------------------------


def test_write_raster_2d_array_band_names_and_crs_object(tmp_path: Path) -> None:
    data = np.arange(320 * 192, dtype="int32").reshape(192, 320) % 20000 - 500
    transform = Affine(0.001, 0.0, 4.8, 0.0, -0.001, 45.8)
    path = write_raster(tmp_path / "x.tif", data, crs=CRS.from_epsg(4326), transform=transform, nodata=-9999,
                        blocksize=128, band_names=["ndvi"], compress="lzw")
    with rasterio.open(path) as src:
        assert src.count == 1 and src.dtypes == ("int32",)
        assert src.descriptions == ("ndvi",)
        assert src.crs == CRS.from_epsg(4326) and src.transform == transform
        assert src.nodata == -9999
        assert src.compression == Compression.lzw
        assert src.block_shapes == [(128, 128)]
        np.testing.assert_array_equal(src.read(1), data)


def test_overviews_larger_than_the_image_are_skipped(tmp_path: Path) -> None:
    data = np.ones((2, 8, 8), dtype="uint8")
    path = write_raster(tmp_path / "x.tif", data, crs="EPSG:32631", transform=TILE_A, overviews=(2, 4, 16),
                        blocksize=128)
    with rasterio.open(path) as src:
        assert src.overviews(1) == src.overviews(2) == [2, 4]  # 8 // 16 == 0: no ×16 level
    path = write_raster(tmp_path / "y.tif", data, crs="EPSG:32631", transform=TILE_A, overviews=(), blocksize=128)
    with rasterio.open(path) as src:
        assert src.overviews(1) == []


@pytest.mark.parametrize("cog", [True, False])
def test_overviews_average_valid_pixels_only(tmp_path: Path, cog: bool) -> None:
    # every 2 × 2 block is [[10, 30], [nodata, 20]]: the ×2 overview is 20 where a blind mean would give 15;
    # the top-left 40 × 40 pixels are all nodata, so is the top-left 20 × 20 of the overview
    data = np.tile(np.array([[10, 30], [0, 20]], dtype="uint16"), (128, 128))
    data[:40, :40] = 0
    path = write_raster(tmp_path / "x.tif", data, crs="EPSG:32631", transform=TILE_A, nodata=0, overviews=(2,),
                        blocksize=128, cog=cog)
    with rasterio.open(path, overview_level=0) as ovr:
        assert ovr.shape == (128, 128)
        overview = ovr.read(1)
    expected = np.full((128, 128), 20, dtype="uint16")
    expected[:20, :20] = 0
    np.testing.assert_array_equal(overview, expected)
