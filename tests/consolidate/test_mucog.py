"""MUCOG assembly, checked with GDAL itself: every record opens as GTIFF_DIR:i with its overviews and the
pixels, georeferencing and nodata of its own COG; tile data lies in pattern order (read back with
tifffile); GDAL says nothing while reading.

Record COGs are written here with GDAL's COG driver directly (not with consolidate.cog), so that these
tests depend only on GDAL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
import tifffile
from affine import Affine

from geocube_dask.consolidate import mucog
from geocube_dask.consolidate.mucog import assemble_mucog, read_mucog_layout
from geocube_dask.errors import InvalidArgument

HEIGHT, WIDTH, BLOCK = 420, 500, 128  # 4×4 tiles at full resolution, 2×2 and 1×1 in the two overviews
TRANSFORM = Affine(20.0, 0.0, 360000.0, 0.0, -20.0, 4830000.0)
CRS = "EPSG:32631"

# name: (dtype, bands, nodata, COG driver options)
KINDS = {
    "uint16-zstd": ("uint16", 1, 0, {"COMPRESS": "ZSTD", "PREDICTOR": "2"}),
    "float32-lerc": ("float32", 1, float("nan"), {"COMPRESS": "LERC_ZSTD", "MAX_Z_ERROR": "0.01"}),
    "int16-rgb-deflate": ("int16", 3, -1, {"COMPRESS": "DEFLATE"}),
}


def record_pixels(dtype: str, bands: int, nodata: float, seed: int) -> np.ndarray:
    """Smooth values (compressible, like imagery) with a nodata corner that leaves whole tiles empty."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    out = np.empty((bands, HEIGHT, WIDTH), dtype=dtype)
    for b in range(bands):
        field = 500 + 300 * np.sin(x / (37 + 5 * b + seed)) * np.cos(y / 53) + rng.normal(0, 3, (HEIGHT, WIDTH))
        out[b] = field.astype(dtype)
    out[:, : BLOCK * 2, : BLOCK * 2 + 10] = nodata  # tiles (0,0) and (0,1) and (1,0), (1,1) are empty
    return out


def write_record_cog(
    path: Path, kind: str, seed: int, *, overviews: int = 2, interleave_band: bool = False,
    transform: Affine = TRANSFORM,
) -> str:
    """One record's COG, by GDAL: the COG driver, or the GTiff driver for band-separate planes."""
    dtype, bands, nodata, options = KINDS[kind]
    src = path.with_suffix(".src.tif")
    profile = dict(driver="GTiff", width=WIDTH, height=HEIGHT, count=bands, dtype=dtype, crs=CRS,
                   transform=transform, nodata=nodata)
    with rasterio.open(src, "w", **profile) as ds:
        ds.write(record_pixels(dtype, bands, nodata, seed))
    if interleave_band:  # the COG driver of GDAL 3.10 cannot separate bands: GTiff with COPY_SRC_OVERVIEWS can
        with rasterio.open(src, "r+") as ds:
            ds.build_overviews([2, 4][:overviews], rasterio.enums.Resampling.average)
        rasterio.shutil.copy(src, path, driver="GTiff", TILED="YES", BLOCKXSIZE=BLOCK, BLOCKYSIZE=BLOCK,
                             INTERLEAVE="BAND", COPY_SRC_OVERVIEWS="YES", SPARSE_OK="TRUE", **options)
    else:  # (OVERVIEW_COUNT=0 fails in GDAL 3.10: OVERVIEWS=NONE says it)
        levels = {"OVERVIEW_COUNT": overviews} if overviews else {"OVERVIEWS": "NONE"}
        rasterio.shutil.copy(src, path, driver="COG", BLOCKSIZE=BLOCK, SPARSE_OK="TRUE", **levels, **options)
    src.unlink()
    return str(path)


@pytest.fixture
def gdal_messages(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """GDAL's warnings and errors so far in the test (rasterio logs them)."""
    caplog.set_level(logging.WARNING, logger="rasterio")
    return lambda: [r.getMessage() for r in caplog.records if r.name.startswith("rasterio")]


def record_cogs(tmp_path: Path, kind: str, n: int, **kwargs) -> list[str]:
    return [write_record_cog(tmp_path / f"{kind}-{i}.tif", kind, seed=i, **kwargs) for i in range(n)]


def assert_records_match(mucog_path: str, cogs: list[str]) -> None:
    """GDAL opens record i as GTIFF_DIR:i+1: same overviews, pixels at every level, grid and nodata."""
    with rasterio.open(mucog_path) as ds:
        assert ds.subdatasets == [f"GTIFF_DIR:{i + 1}:{mucog_path}" for i in range(len(cogs))] or len(cogs) == 1
    for i, cog in enumerate(cogs):
        name = f"GTIFF_DIR:{i + 1}:{mucog_path}"
        with rasterio.open(name) as m, rasterio.open(cog) as c:
            assert m.overviews(1) == c.overviews(1) and len(c.overviews(1)) >= 1
            assert (m.crs, m.transform, m.dtypes, m.block_shapes) == (c.crs, c.transform, c.dtypes, c.block_shapes)
            np.testing.assert_array_equal(m.nodatavals, c.nodatavals)  # NaN equals NaN here
            assert m.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION") == c.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION")
            np.testing.assert_array_equal(m.read(), c.read())
            levels = len(c.overviews(1))
        for level in range(levels):
            with rasterio.open(name, overview_level=level) as m, rasterio.open(cog, overview_level=level) as c:
                assert m.shape == c.shape and m.transform == c.transform
                np.testing.assert_array_equal(m.read(), c.read())


def expected_order(pattern: str, cogs: list[str], planes: int) -> list[tuple[int, int, int, int]]:
    """The non-empty tiles in pattern order, from hand-written loops over the sources' tile tables."""
    counts = []  # counts[r][z][b][t]: byte count of the source tile
    for cog in cogs:
        with tifffile.TiffFile(cog) as tif:
            levels = []
            for page in tif.pages:
                n = len(page.databytecounts) // planes
                levels.append([page.databytecounts[b * n:(b + 1) * n] for b in range(planes)])
            counts.append(levels)
    records, nlev = range(len(cogs)), len(counts[0])
    tiles = [len(level[0]) for level in counts[0]]
    if pattern == "mucog":  # Z=0>T>R>B;Z=1:>R>T>B
        order = [(r, b, 0, t) for t in range(tiles[0]) for r in records for b in range(planes)]
        order += [(r, b, z, t) for z in range(1, nlev) for r in records for t in range(tiles[z]) for b in range(planes)]
    elif pattern == "cog":  # R>Z>T>B
        order = [(r, b, z, t) for r in records for z in range(nlev) for t in range(tiles[z]) for b in range(planes)]
    elif pattern == "Z=1:>B>T>R;B>Z=0>R>T":
        order = [(r, b, z, t) for z in range(1, nlev) for b in range(planes) for t in range(tiles[z]) for r in records]
        order += [(r, b, 0, t) for b in range(planes) for r in records for t in range(tiles[0])]
    else:
        raise AssertionError(pattern)
    return [(r, b, z, t) for r, b, z, t in order if counts[r][z][b][t]]


def ifd_offsets_in_order(path: str) -> list[int]:
    """IFD positions: records first, then overviews level by level (each level record by record)."""
    with tifffile.TiffFile(path) as tif:
        records = list(tif.pages)
        levels = [[p.offset for p in (page.pages or [])] for page in records]
        return [p.offset for p in records] + [levels[r][z] for z in range(len(levels[0])) for r in range(len(records))]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("pattern", ["mucog", "cog", "Z=1:>B>T>R;B>Z=0>R>T"])
def test_assembled_records_read_like_their_cogs(
    tmp_path: Path, kind: str, pattern: str, gdal_messages: Callable[[], list[str]]
) -> None:
    cogs = record_cogs(tmp_path, kind, 4)
    out = str(tmp_path / "mucog.tif")
    info = assemble_mucog(cogs, out, pattern)

    assert_records_match(out, cogs)
    assert read_mucog_layout(out) == info
    assert (info.records, info.levels, info.tile_shape, info.tiles, info.bigtiff) == (
        4, ((420, 500), (210, 250), (105, 125)), (128, 128), (16, 4, 1), False
    )
    assert list(info.order) == expected_order(pattern, cogs, planes=1)
    offsets = ifd_offsets_in_order(out)
    assert offsets == sorted(offsets)
    with tifffile.TiffFile(out) as tif:  # all structure before the first tile
        first_tile = min(o for p in tif.pages for q in [p, *p.pages] for o in q.dataoffsets if o)
        assert max(offsets) < first_tile
    assert gdal_messages() == []


@pytest.mark.parametrize("pattern", ["mucog", "Z=1:>B>T>R;B>Z=0>R>T"])
def test_band_separate_planes(tmp_path: Path, pattern: str, gdal_messages: Callable[[], list[str]]) -> None:
    cogs = record_cogs(tmp_path, "int16-rgb-deflate", 3, interleave_band=True)
    with rasterio.open(cogs[0]) as ds:
        assert ds.interleaving.name == "band"  # the fixture really separates the planes
    out = str(tmp_path / "mucog.tif")
    info = assemble_mucog(cogs, out, pattern)

    assert_records_match(out, cogs)
    assert (info.bands, info.planes) == (3, 3)
    assert list(read_mucog_layout(out).order) == expected_order(pattern, cogs, planes=3)
    assert gdal_messages() == []


def test_forced_bigtiff(tmp_path: Path, gdal_messages: Callable[[], list[str]]) -> None:
    cogs = record_cogs(tmp_path, "float32-lerc", 3)
    out = str(tmp_path / "mucog.tif")
    info = assemble_mucog(cogs, out, "mucog", bigtiff=True)
    with tifffile.TiffFile(out) as tif:
        assert tif.is_bigtiff and info.bigtiff
    assert_records_match(out, cogs)
    assert gdal_messages() == []


def test_bigtiff_when_over_the_classic_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cogs = record_cogs(tmp_path, "uint16-zstd", 2)
    small = assemble_mucog(cogs, str(tmp_path / "small.tif"))
    assert not small.bigtiff
    monkeypatch.setattr(mucog, "CLASSIC_LIMIT", small.size - 1)  # pretend this file would not fit in 4 GiB
    out = str(tmp_path / "big.tif")
    info = assemble_mucog(cogs, out)
    with tifffile.TiffFile(out) as tif:
        assert tif.is_bigtiff and info.bigtiff
    assert_records_match(out, cogs)
    with pytest.raises(InvalidArgument, match="allow BigTIFF"):
        assemble_mucog(cogs, str(tmp_path / "refused.tif"), bigtiff=False)


def test_one_record_and_no_overviews(tmp_path: Path) -> None:
    cogs = record_cogs(tmp_path, "uint16-zstd", 2, overviews=0)
    out = str(tmp_path / "mucog.tif")
    info = assemble_mucog(cogs, out)
    assert info.levels == ((HEIGHT, WIDTH),)
    for i, cog in enumerate(cogs):
        with rasterio.open(f"GTIFF_DIR:{i + 1}:{out}") as m, rasterio.open(cog) as c:
            assert m.overviews(1) == []
            np.testing.assert_array_equal(m.read(), c.read())
    single = str(tmp_path / "single.tif")
    assemble_mucog(cogs[:1], single)
    with rasterio.open(single) as m, rasterio.open(cogs[0]) as c:
        np.testing.assert_array_equal(m.read(), c.read())


def test_bad_pattern_raises_before_writing(tmp_path: Path) -> None:
    cogs = record_cogs(tmp_path, "uint16-zstd", 2)
    out = tmp_path / "mucog.tif"
    with pytest.raises(InvalidArgument, match="interlacing pattern"):
        assemble_mucog(cogs, str(out), "R>B>T")
    assert not out.exists()


def test_incompatible_records_are_refused(tmp_path: Path) -> None:
    a = write_record_cog(tmp_path / "a.tif", "uint16-zstd", 0)
    b = write_record_cog(tmp_path / "b.tif", "uint16-zstd", 1, overviews=1)
    c = write_record_cog(tmp_path / "c.tif", "float32-lerc", 2)
    with pytest.raises(InvalidArgument, match="level sizes"):
        assemble_mucog([a, b], str(tmp_path / "ab.tif"))
    with pytest.raises(InvalidArgument, match="sample format|bits per sample"):
        assemble_mucog([a, c], str(tmp_path / "ac.tif"))
    shifted = TRANSFORM @ Affine.translation(BLOCK, 0)
    moved = write_record_cog(tmp_path / "moved.tif", "uint16-zstd", 3, transform=shifted)
    with pytest.raises(InvalidArgument, match="same grid"):
        assemble_mucog([a, moved], str(tmp_path / "am.tif"))
    with pytest.raises(InvalidArgument, match="also one of the sources"):
        assemble_mucog([a, b], a)
    with pytest.raises(InvalidArgument, match="non-empty list"):
        assemble_mucog([], str(tmp_path / "none.tif"))


def test_untiled_or_masked_sources_are_refused(tmp_path: Path) -> None:
    striped = tmp_path / "striped.tif"
    with rasterio.open(striped, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint8", crs=CRS,
                       transform=TRANSFORM) as ds:
        ds.write(np.ones((1, 64, 64), "uint8"))
    with pytest.raises(InvalidArgument, match="not tiled"):
        assemble_mucog([str(striped)], str(tmp_path / "out.tif"))
    masked = tmp_path / "masked.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
        masked, "w", driver="GTiff", width=256, height=256, count=1, dtype="uint8", tiled=True, crs=CRS,
        transform=TRANSFORM,
    ) as ds:
        ds.write(np.ones((1, 256, 256), "uint8"))
        ds.write_mask(np.full((256, 256), 255, "uint8"))
    with pytest.raises(InvalidArgument, match="masks"):
        assemble_mucog([str(masked)], str(tmp_path / "out.tif"))
