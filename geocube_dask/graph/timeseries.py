"""Timeseries at a point or over a polygon, without building the request's full cube.

* Point: the plan's grid is a single pixel centred on the point (a tiny pixel, so the full
  resolution is read and ``near`` picks the source pixel that contains the point). Each image is
  one task that reads one block of each of its sources — in parallel, nothing else is read.
* Polygon: a cube over the polygon's bounding box only, on a grid the caller chooses (by default the
  CRS and resolution of the first source, aligned on its pixels), masked to the pixels whose centre
  is inside the polygon, then reduced per image and band (``mean``, ``median``, ``min``, ``max``,
  ignoring nodata; NaN when an image has no valid pixel) or kept per pixel (``reduce=None``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
import xarray as xr
from affine import Affine
from shapely.geometry.base import BaseGeometry

from ..errors import InvalidArgument
from ..projection import crs_string, transform_polygon
from .grid import GridSpec

REDUCERS = ("mean", "median", "min", "max")
# size of the point grid's single pixel, relative to the coordinate's magnitude unit
_POINT_PIXEL = {True: 1e-7, False: 1e-3}  # degrees, metres (or other projected unit)


def point_grid(point: tuple[float, float], crs: Any) -> GridSpec:
    """A 1×1 grid whose pixel centre is exactly ``point`` (in ``crs``)."""
    try:
        x, y = (float(v) for v in point)
    except (TypeError, ValueError):
        raise InvalidArgument(f"point must be (x, y), not {point!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InvalidArgument(f"point must be finite, not {point!r}")
    crs_s = crs_string(crs)
    from rasterio.crs import CRS

    geographic = CRS.from_user_input(crs_s).is_geographic
    if geographic and not (-180 <= x <= 180 and -90 <= y <= 90):
        raise InvalidArgument(f"point {point!r} is outside lon/lat bounds: give (lon, lat) in degrees")
    size = _POINT_PIXEL[bool(geographic)]
    return GridSpec(crs_s, tuple(Affine(size, 0, x - size / 2, 0, -size, y + size / 2))[:6], 1, 1)


def check_geometry(geometry: Any) -> BaseGeometry:
    if not isinstance(geometry, BaseGeometry) or geometry.is_empty:
        raise InvalidArgument("geometry= must be a non-empty shapely Polygon or MultiPolygon")
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidArgument(f"geometry= must be a Polygon or MultiPolygon, not a {geometry.geom_type}")
    if not geometry.is_valid:
        raise InvalidArgument(f"geometry= is invalid ({shapely.is_valid_reason(geometry)}): fix it first")
    return geometry


def geometry_in(geometry: BaseGeometry, geometry_crs: Any, crs: str, *, wrap: bool = False) -> BaseGeometry:
    """``geometry`` in ``crs``: in continuous coordinates like a grid's (across ±180° in lon/lat), or
    with ``wrap`` within [-180, 180] like a catalogue search area (see ``projection.transform_polygon``)."""
    try:
        return transform_polygon(geometry, crs_string(geometry_crs), crs, wrap=wrap)
    except ValueError as exc:
        raise InvalidArgument(f"geometry= cannot be expressed in {crs} ({exc}): check crs= and grid_crs=") from None


def native_grid_for(
    geometry: BaseGeometry, geometry_crs: Any, crs: str, transform: tuple[float, ...]
) -> dict[str, Any]:
    """Arguments of ``make_grid`` for ``geometry`` on a source's own pixel grid (same CRS, resolution, origin).

    Output grids are north-up: for a rotated source, a grid in its CRS at its pixel size, snapped as usual.
    """
    a = Affine(*transform[:6])
    if a.b != 0 or a.d != 0:
        return {"crs": crs, "resolution": (math.hypot(a.a, a.d), math.hypot(a.b, a.e)), "aoi": geometry,
                "aoi_crs": geometry_crs}
    poly = geometry_in(geometry, geometry_crs, crs)
    inv = ~a
    minx, miny, maxx, maxy = poly.bounds
    cols = [(inv @ (x, y))[0] for x in (minx, maxx) for y in (miny, maxy)]
    rows = [(inv @ (x, y))[1] for x in (minx, maxx) for y in (miny, maxy)]
    c0, c1 = math.floor(min(cols)), math.ceil(max(cols))
    r0, r1 = math.floor(min(rows)), math.ceil(max(rows))
    origin = a @ (c0, r0)
    out = Affine(a.a, a.b, origin[0], a.d, a.e, origin[1])
    return {"crs": crs, "transform": out, "shape": (max(r1 - r0, 1), max(c1 - c0, 1))}


def point_series(cube: xr.DataArray) -> xr.DataArray:
    """The (time, band) series of a one-pixel cube."""
    ts = cube.isel(y=0, x=0)
    ts.attrs = dict(cube.attrs)
    return ts


def check_reduce(reduce: Any) -> None:
    """Raise InvalidArgument unless ``reduce`` is a known reducer name or None."""
    if reduce is not None and reduce not in REDUCERS:
        raise InvalidArgument(f"reduce must be one of {', '.join(REDUCERS)} or None, not {reduce!r}")


def polygon_series(cube: xr.DataArray, geometry: BaseGeometry, geometry_crs: Any, reduce: str | None) -> xr.DataArray:
    """Mask ``cube`` to the pixels whose centre lies in ``geometry`` and reduce them per image/band."""
    check_reduce(reduce)
    poly = geometry_in(geometry, geometry_crs, crs_string(cube.rio.crs))
    xs, ys = np.meshgrid(cube.x.values, cube.y.values)
    inside = shapely.contains_xy(poly, xs, ys)
    rows, cols = np.nonzero(inside)
    nodata = cube.attrs.get("_FillValue", cube.rio.nodata)
    pixels = cube.isel(y=xr.DataArray(rows, dims="pixel"), x=xr.DataArray(cols, dims="pixel"))
    pixels = pixels.assign_coords(pixel=np.arange(len(rows)))
    if reduce is None:
        return pixels
    values = pixels.astype("float64")
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        values = values.where(pixels != nodata)
    reduced = getattr(values, reduce)(dim="pixel", skipna=True)
    reduced.attrs = {k: v for k, v in cube.attrs.items() if k != "_FillValue"}
    reduced.attrs["reduce"] = reduce
    reduced.attrs["pixels"] = int(len(rows))
    return reduced
