"""A plain reference of XYZ tiles for the tests, sharing no code with geocube_dask.api.tiles.

Web-Mercator tile bounds from the textbook formula; the mosaic painted here from a cube's per-record
images (a later valid value overwrites, per band); colours from the rules written out pixel by pixel.
"""

from __future__ import annotations

import io
import math

import numpy as np
from affine import Affine
from PIL import Image

HALF = 20037508.342789244  # π × 6378137 m: half the Web-Mercator world


def tile_transform(z: int, x: int, y: int) -> Affine:
    """The affine transform of the 256×256 pixels of tile z/x/y (x from the west, y from the north)."""
    size = 2 * HALF / 2**z
    return Affine(size / 256, 0.0, -HALF + x * size, 0.0, -size / 256, HALF - y * size)


def lonlat_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The tile x, y holding a lon/lat point at zoom z (OpenStreetMap's formula)."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    lat_r = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(lat_r)) / math.pi) / 2.0 * n)
    return x, y


def paint(images: np.ndarray, nodata: float) -> np.ndarray:
    """``(time, band, y, x)`` → ``(band, y, x)``: each later valid value overwrites the earlier ones."""
    out = np.full(images.shape[1:], nodata, dtype=images.dtype)
    for image in images:
        valid = ~np.isnan(image) if math.isnan(nodata) else image != nodata
        out[valid] = image[valid]
    return out


def decode(png: bytes) -> np.ndarray:
    """The RGBA pixels ``(y, x, 4)`` of a PNG."""
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        assert im.size == (256, 256)
        return np.asarray(im.convert("RGBA"))


def unit(v: float, vmin: float, vmax: float) -> float:
    return min(1.0, max(0.0, (v - vmin) / (vmax - vmin)))


def rgb_colours(values: np.ndarray, nodata: float, vmin: float, vmax: float) -> np.ndarray:
    """RGBA of three bands ``(3, y, x)``: each ``round(255·t)``, opaque; transparent where a band is nodata."""
    _, h, w = values.shape
    out = np.zeros((h, w, 4), dtype="uint8")
    for i in range(h):
        for j in range(w):
            px = [float(values[b, i, j]) for b in range(3)]
            if any(v == nodata or math.isnan(v) for v in px):
                continue
            out[i, j] = [round(255 * unit(v, vmin, vmax)) for v in px] + [255]
    return out


def palette_colours(values: np.ndarray, nodata: float, vmin: float, vmax: float,
                    points: list[tuple[float, int, int, int, int]]) -> np.ndarray:
    """RGBA of one band ``(y, x)`` through palette ``points`` (value, r, g, b, a), linear between points."""
    h, w = values.shape
    out = np.zeros((h, w, 4), dtype="uint8")
    for i in range(h):
        for j in range(w):
            v = float(values[i, j])
            if v == nodata or math.isnan(v):
                continue
            t = unit(v, vmin, vmax)
            for (t0, *c0), (t1, *c1) in zip(points, points[1:], strict=False):
                if t0 <= t <= t1:
                    f = (t - t0) / (t1 - t0)
                    out[i, j] = [round(a + (b - a) * f) for a, b in zip(c0, c1, strict=True)]
                    break
    return out
