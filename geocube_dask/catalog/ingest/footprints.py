"""A raster's bounds as polygons: in its own CRS, and in EPSG:4326 for the catalogue's spatial index.

The lon/lat footprint follows projected edges (densified), is clipped at the poles, split at the
antimeridian and closed through a pole it surrounds, so that ``ST_Intersects`` on it (PostGIS) and the
R*Tree + shapely test (SQLite) find a file exactly where it is.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
import shapely.affinity
from affine import Affine
from shapely.geometry import MultiPolygon, Polygon, box

from ...projection import transformer

# Points per edge (corners included) of the file-bounds polygon transformed to EPSG:4326, so that a
# projected edge, curved in lon/lat, is followed closely.
DENSIFY_POINTS = 21



def _ring_pixels(width: int, height: int, per_edge: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-corner coordinates (cols, rows) around the image, clockwise from the top-left, not closed."""
    t = np.linspace(0.0, 1.0, per_edge)[:-1]
    cols = np.concatenate([t * width, np.full_like(t, width), (1 - t) * width, np.zeros_like(t)])
    rows = np.concatenate([np.zeros_like(t), t * height, np.full_like(t, height), (1 - t) * height])
    return cols, rows


def _apply(transform: Affine, cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Georeferenced coordinates of pixel positions (written out: affine's ``*`` is deprecated, ``@`` new)."""
    a, b, c, d, e, f = transform[:6]
    return a * cols + b * rows + c, d * cols + e * rows + f


def _polygonal(geom: shapely.Geometry) -> Polygon | MultiPolygon | None:
    """The polygonal part of ``geom`` (a Polygon, a MultiPolygon, or None when it has no area)."""
    if geom is None or geom.is_empty:
        return None
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    polys: list[Polygon] = []
    for part in getattr(geom, "geoms", []):
        sub = _polygonal(part)
        if isinstance(sub, Polygon):
            polys.append(sub)
        elif isinstance(sub, MultiPolygon):
            polys.extend(sub.geoms)
    if not polys:
        return None
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


def footprint_4326(
    crs: str, transform: Affine, width: int, height: int, per_edge: int = DENSIFY_POINTS
) -> Polygon | MultiPolygon:
    """The file bounds in EPSG:4326 (lon, lat): a valid (Multi)Polygon within [-180, 180] × [-90, 90].

    Each edge is densified to ``per_edge`` points before transforming, so curved edges are followed.
    Latitudes are clipped to ±90 (geographic grids often overshoot by half a pixel). A footprint that
    crosses the antimeridian is split there into a MultiPolygon; longitudes beyond ±180 (0..360 grids)
    are wrapped; a footprint around a pole is closed through that pole. Raises ``ValueError`` when the
    file's corners cannot be expressed in lon/lat.
    """
    cols, rows = _ring_pixels(width, height, per_edge)
    xs, ys = _apply(transform, cols, rows)
    to_lonlat = transformer(crs, "EPSG:4326")
    lon, lat = to_lonlat.transform(np.asarray(xs, dtype="float64"), np.asarray(ys, dtype="float64"))
    lon, lat = np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")
    ok = np.isfinite(lon) & np.isfinite(lat)
    if ok.sum() < 3:
        raise ValueError("its corners have no longitude/latitude (outside the domain of its projection)")
    lon, lat = lon[ok], np.clip(lat[ok], -90.0, 90.0)
    # follow the ring continuously across the antimeridian (no 360° jumps between neighbours)
    closed = np.unwrap(np.append(lon, lon[0]), period=360.0)
    lon = closed[:-1]
    coords = list(zip(lon, lat, strict=True))
    turn = closed[-1] - closed[0]
    if abs(turn) > 180.0:  # the ring goes once around the globe: it encloses a pole
        pole = 90.0 if float(np.mean(lat)) >= 0 else -90.0
        coords += [(closed[-1], lat[0]), (closed[-1], pole), (closed[0], pole)]
    elif lon.min() >= -180.0 and lon.max() <= 180.0:
        simple = Polygon(coords)
        if simple.is_valid and simple.area > 0:  # the usual case: keep the densified ring as it is
            return simple
    ring = shapely.make_valid(Polygon(coords))
    parts = []
    west = math.floor((min(lon.min(), closed[-1]) + 180.0) / 360.0)
    east = math.floor((max(lon.max(), closed[-1]) + 180.0) / 360.0)
    for k in range(west, east + 1):
        shift = 360.0 * k
        piece = _polygonal(ring.intersection(box(-180.0 + shift, -90.0, 180.0 + shift, 90.0)))
        if piece is not None:
            parts.append(shapely.affinity.translate(piece, xoff=-shift))
    if not parts:
        raise ValueError("its footprint in longitude/latitude has no area")
    merged = _polygonal(shapely.make_valid(shapely.union_all(parts)))
    if merged is None:
        raise ValueError("its footprint in longitude/latitude has no area")
    return merged


def footprint_native(transform: Affine, width: int, height: int) -> Polygon:
    """The file bounds as a polygon in the file's CRS (four corners; exact for rotated grids too)."""
    cols = np.array([0.0, width, width, 0.0])
    rows = np.array([0.0, 0.0, height, height])
    xs, ys = _apply(transform, cols, rows)
    return Polygon(list(zip(xs.tolist(), ys.tolist(), strict=True)))
