"""Deterministic synthetic rasters: the demo collection, test fixtures and benchmarks are made with these.

Values are a smooth function of the georeferenced pixel centre (overlapping tiles in one CRS share it)
plus per-tile seeded noise and a few bright "clouds" placed within each tile (above 10000, so they
saturate a 0..10000 variable), shaped like surface reflectances scaled to 0..10000, with an optional
nodata region (a diagonal swath edge). Files are written as tiled
GeoTIFF or Cloud Optimized GeoTIFF with internal overviews.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.io import MemoryFile


def reflectance_field(
    transform: Affine,
    width: int,
    height: int,
    bands: int = 4,
    seed: int = 0,
    *,
    wavelength: float = 3000.0,
    clouds: int = 2,
) -> np.ndarray:
    """A ``(bands, height, width)`` float64 field of reflectance-like values (mostly 0..10000).

    ``wavelength`` (in CRS units) sets the scale of the smooth part; ``seed`` changes the date-like
    variation; ``clouds`` bright blobs exceed 10000 (they saturate a 0..10000 variable, not wrap).
    """
    cols = np.arange(width) + 0.5
    rows = np.arange(height) + 0.5
    xs = transform.c + cols * transform.a
    ys = transform.f + rows * transform.e
    gx, gy = np.meshgrid(xs, ys)
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=4)
    out = np.empty((bands, height, width), dtype="float64")
    base = 0.5 + 0.25 * np.sin(gx / wavelength + phase[0]) + 0.25 * np.cos(gy / (1.7 * wavelength) + phase[1])
    detail = 0.5 + 0.5 * np.sin((gx + gy) / (wavelength / 7.0) + phase[2])
    for b in range(bands):
        out[b] = 300 + 6000 * base * (0.6 + 0.1 * b) + 900 * detail * (1 + 0.2 * b)
    out += rng.normal(0, 40, size=out.shape)
    span = max(abs(transform.a) * width, abs(transform.e) * height)
    for _ in range(clouds):
        cx = transform.c + rng.uniform(0.1, 0.9) * transform.a * width
        cy = transform.f + rng.uniform(0.1, 0.9) * transform.e * height
        radius = rng.uniform(0.04, 0.1) * span
        blob = np.exp(-(((gx - cx) ** 2 + (gy - cy) ** 2) / radius**2))
        out += 9000 * blob[None]
    return out


def swath_mask(width: int, height: int, fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean ``(height, width)`` mask, True where a diagonal swath edge leaves no data.

    ``fraction`` is roughly the share of the image without data (0 → no nodata at all).
    """
    if fraction <= 0:
        return np.zeros((height, width), dtype=bool)
    rng = np.random.default_rng(seed + 7919)
    rows, cols = np.mgrid[0:height, 0:width]
    slope = rng.uniform(0.2, 0.6)
    # (cols + slope * rows) / norm runs from 0 to 1 across the image
    t = (cols + slope * rows) / (width + slope * height)
    return t < fraction


def write_raster(
    path: str | os.PathLike[str],
    data: np.ndarray,
    *,
    crs: str | CRS,
    transform: Affine,
    nodata: float | None = None,
    overviews: Sequence[int] = (2, 4),
    blocksize: int = 256,
    compress: str = "deflate",
    cog: bool = True,
    band_names: Sequence[str] | None = None,
) -> Path:
    """Write ``data`` (bands, rows, cols) as a tiled GeoTIFF/COG with internal overviews.

    Overviews are computed with ``average`` (nodata-aware). ``cog=False`` writes a plain tiled
    GeoTIFF (overviews included), ``cog=True`` uses GDAL's COG driver with those same overviews.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if data.ndim == 2:
        data = data[None]
    count, height, width = data.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": data.dtype.name,
        "crs": CRS.from_user_input(crs),
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": blocksize,
        "blockysize": blocksize,
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data)
            if band_names:
                for i, name in enumerate(band_names, start=1):
                    dst.set_band_description(i, name)
            levels = [f for f in overviews if width // f >= 1 and height // f >= 1]
            if levels:
                dst.build_overviews(levels, Resampling.average)
        with mem.open() as src:
            if cog:
                rasterio.shutil.copy(
                    src, path, driver="COG", COMPRESS=compress.upper(), BLOCKSIZE=blocksize,
                    OVERVIEWS="FORCE_USE_EXISTING", BIGTIFF="IF_SAFER",
                )
            else:
                rasterio.shutil.copy(
                    src, path, driver="GTiff", COMPRESS=compress.upper(), TILED=True,
                    BLOCKXSIZE=blocksize, BLOCKYSIZE=blocksize, COPY_SRC_OVERVIEWS=True,
                )
    return path


def write_reflectance(
    path: str | os.PathLike[str],
    *,
    crs: str | CRS,
    transform: Affine,
    width: int,
    height: int,
    bands: int = 4,
    seed: int = 0,
    dtype: str = "uint16",
    nodata: float | None = 0,
    nodata_fraction: float = 0.0,
    overviews: Sequence[int] = (2, 4),
    blocksize: int = 256,
    compress: str = "deflate",
    cog: bool = True,
    wavelength: float | None = None,
) -> Path:
    """Write a synthetic reflectance scene (uint16 0..10000 meaning 0..1 by default).

    Integer dtypes are rounded and saturated; pixels under the swath mask get ``nodata``.
    """
    if wavelength is None:
        wavelength = 150 * abs(transform.a) if abs(transform.a) > 1e-3 else 1.5
    field = reflectance_field(transform, width, height, bands, seed, wavelength=wavelength)
    np_dtype = np.dtype(dtype)
    if np_dtype.kind in "iu":
        info = np.iinfo(np_dtype)
        values = np.clip(np.rint(field), info.min, info.max).astype(np_dtype)
        # keep nodata for the nodata area only
        if nodata is not None:
            values[values == nodata] = nodata + 1 if nodata < info.max else nodata - 1
    else:
        values = (field / 10000.0).astype(np_dtype)
    mask = swath_mask(width, height, nodata_fraction, seed)
    if mask.any():
        if nodata is None:
            raise ValueError("nodata_fraction > 0 needs a nodata value")
        values[:, mask] = nodata
    return write_raster(
        path, values, crs=crs, transform=transform, nodata=nodata, overviews=overviews,
        blocksize=blocksize, compress=compress, cog=cog,
    )
