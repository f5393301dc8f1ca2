"""A raster's bounds as polygons: in its own CRS, and in EPSG:4326 for the catalogue's spatial index.

The lon/lat footprint is :func:`geocube_dask.projection.transform_polygon` of the native one: edges
followed, clipped at the poles, split at the antimeridian and closed through a pole it surrounds, so
that ``ST_Intersects`` on it (PostGIS) and the R*Tree + shapely test (SQLite) find a file exactly where
it is, with the same reprojection the engine uses for search areas and source-touches-grid tests.
"""

from __future__ import annotations

import numpy as np
from affine import Affine
from shapely.geometry import MultiPolygon, Polygon

from ...projection import DENSIFY_POINTS, transform_polygon

__all__ = ["DENSIFY_POINTS", "footprint_4326", "footprint_native"]


def footprint_4326(
    crs: str, transform: Affine, width: int, height: int, per_edge: int = DENSIFY_POINTS
) -> Polygon | MultiPolygon:
    """The file bounds in EPSG:4326 (lon, lat): a valid (Multi)Polygon within [-180, 180] × [-90, 90].

    Each edge is densified to ``per_edge`` points (more where it curves) before transforming.
    Latitudes are clipped to ±90 (geographic grids often overshoot by half a pixel). A footprint that
    crosses the antimeridian is split there into a MultiPolygon; longitudes beyond ±180 (0..360 grids)
    are wrapped; a footprint around a pole is closed through that pole. Raises ``ValueError`` when the
    file's corners cannot be expressed in lon/lat.
    """
    out = transform_polygon(footprint_native(transform, width, height), crs, "EPSG:4326", per_edge)
    if not (isinstance(out, Polygon | MultiPolygon)):
        raise RuntimeError("internal error: expected isinstance(out, Polygon | MultiPolygon)")
    return out


def footprint_native(transform: Affine, width: int, height: int) -> Polygon:
    """The file bounds as a polygon in the file's CRS (four corners; exact for rotated grids too)."""
    cols = np.array([0.0, width, width, 0.0])
    rows = np.array([0.0, 0.0, height, height])
    a, b, c, d, e, f = transform[:6]
    xs, ys = a * cols + b * rows + c, d * cols + e * rows + f
    return Polygon(list(zip(xs.tolist(), ys.tolist(), strict=True)))
