"""CRS names and reprojection shared by the catalogue and the engine (no database, no graph).

``crs_string`` gives one canonical text per CRS; transformers are cached. :func:`transform_polygon` is
the one polygon reprojection of the package (search areas, dataset footprints, source-touches-grid,
AOIs): edges are followed (densified, then refined until the chords between transformed points are
close to the transformed edge, see ``EDGE_TOLERANCE``), and polygons going to longitude/latitude
are clipped at the poles, split at the antimeridian and closed through a pole they surround, so that a
polygon over the Pacific or around a pole is where it should be on the [-180, 180] × [-90, 90] plane.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
import shapely.affinity
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.errors import CRSError
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from .errors import InvalidArgument


def crs_string(crs: Any, what: str = "crs") -> str:
    """Canonical text for a CRS (any form rasterio reads, a rasterio CRS included): ``EPSG:n`` when it
    has an EPSG code, else its WKT. Raises InvalidArgument naming ``what``."""
    try:
        parsed = CRS.from_user_input(crs)
    except (CRSError, TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"invalid {what} {crs!r}: unknown CRS ({exc}); give e.g. 'EPSG:32631' or a WKT string"
        ) from None
    epsg = parsed.to_epsg()
    return f"EPSG:{epsg}" if epsg else parsed.to_wkt()


@lru_cache(maxsize=256)
def transformer(src_crs: str, dst_crs: str) -> Transformer:
    """A cached pyproj transformer between two CRS strings, x/y (lon/lat) axis order."""
    return Transformer.from_crs(ProjCRS.from_user_input(src_crs), ProjCRS.from_user_input(dst_crs), always_xy=True)


@lru_cache(maxsize=256)
def same_crs(a: str, b: str) -> bool:
    """Whether two CRS strings denote the same CRS (EPSG codes compared first, WKT otherwise)."""
    if a == b:
        return True
    return CRS.from_user_input(a) == CRS.from_user_input(b)


@lru_cache(maxsize=256)
def is_geographic(crs: str) -> bool:
    """Whether ``crs`` is a longitude/latitude CRS."""
    return bool(CRS.from_user_input(crs).is_geographic)


# Points per edge (corners included) before refinement: a projected edge curves under reprojection.
DENSIFY_POINTS = 21
# An edge is refined (midpoints added) until the transformed midpoint of each segment lies within this
# fraction of the ring's extent of the straight segment between its transformed ends. In
# longitude/latitude (catalogue footprints and search areas): a millimetre on a 10 km scene, at most
# 3.6e-5° (an extent of 360°, round a pole). In a projected CRS (source footprints on an output grid,
# whose windows have a margin of two output pixels): ten centimetres on a 100 km scene.
EDGE_TOLERANCE = {True: 1e-7, False: 1e-6}  # by "to longitude/latitude"
# at most this many halvings of a segment (a segment across a singularity never converges)
MAX_REFINEMENTS = 12


def transform_polygon(
    poly: BaseGeometry, src_crs: str, dst_crs: str, densify: int = DENSIFY_POINTS, *, wrap: bool = True
) -> BaseGeometry:
    """``poly`` (in ``src_crs``) as a valid (Multi)Polygon in ``dst_crs``.

    Each edge is cut into ``densify - 1`` equal parts, then segments are halved where the transformed
    edge strays from them (see ``EDGE_TOLERANCE``). Into a longitude/latitude CRS, every ring is
    clipped to ±90°, followed continuously across the antimeridian and closed through a pole it goes
    around, as :func:`lonlat_polygon`; with ``wrap`` (what a spatial index needs) it is then split at
    ±180° and wrapped into [-180, 180], without (what the bounds of an output grid need) longitudes
    may run past ±180°. From a longitude/latitude CRS, latitudes are clipped to ±90° first.
    Raises ``ValueError`` when the polygon cannot be expressed in ``dst_crs``: points outside the
    domain of a projected ``dst_crs``, fewer than three points with a longitude/latitude, no area.
    Non-polygonal geometries are transformed point by point. Same CRS: ``poly`` itself (with ``wrap``,
    in a longitude/latitude CRS, wrapped by :func:`normalize_lonlat`).
    """
    if same_crs(src_crs, dst_crs):
        return normalize_lonlat(poly) if wrap and is_geographic(dst_crs) else poly
    tr = transformer(src_crs, dst_crs)
    parts = _polygon_parts(poly)
    if not parts:
        return shapely.transform(poly, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
    to_lonlat = is_geographic(dst_crs)
    from_lonlat = is_geographic(src_crs)

    def ring(coords: Any) -> BaseGeometry | None:
        pts = _densify_ring(np.asarray(coords, dtype="float64")[:, :2], densify)
        if from_lonlat:
            pts[:, 1] = np.clip(pts[:, 1], -90.0, 90.0)
        x, y = _follow_edges(pts, tr, to_lonlat)
        if to_lonlat:
            return lonlat_polygon(x, y, split=wrap)
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError(f"part of it lies outside the domain of {dst_crs}")
        return _polygonal(shapely.make_valid(Polygon(np.column_stack([x, y]))))

    return _assemble(parts, ring, "its reprojection has no area")


def normalize_lonlat(poly: BaseGeometry) -> BaseGeometry:
    """A longitude/latitude polygon wrapped into [-180, 180] × [-90, 90] (rings that run past ±180° are
    split and wrapped, latitudes clipped, as :func:`lonlat_polygon`); others are returned as they are."""
    parts = _polygon_parts(poly)
    minx, miny, maxx, maxy = poly.bounds
    if not parts or (minx >= -180.0 and maxx <= 180.0 and miny >= -90.0 and maxy <= 90.0):
        return poly

    def ring(coords: Any) -> BaseGeometry | None:
        xy = np.asarray(coords, dtype="float64")[:-1, :2]
        return lonlat_polygon(xy[:, 0], xy[:, 1], unwrap=False)

    return _assemble(parts, ring, "it has no area in longitude/latitude")


def lonlat_polygon(
    lon: np.ndarray, lat: np.ndarray, *, unwrap: bool = True, split: bool = True
) -> Polygon | MultiPolygon:
    """A ring of longitude/latitude points (not closed) as a valid (Multi)Polygon, within [-180, 180] ×
    [-90, 90] with ``split``.

    Non-finite points are left out; latitudes are clipped to ±90. With ``unwrap`` the ring is followed
    continuously (no 360° jump between neighbours: a ring whose points were transformed into
    [-180, 180] crosses the antimeridian where they jump); without, longitudes are taken as they are.
    A ring that goes once around the globe encloses a pole and is closed through it. With ``split``,
    a ring beyond ±180° is split there and each piece wrapped. Raises ``ValueError`` with fewer than
    three points or no area.
    """
    lon, lat = np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")
    ok = np.isfinite(lon) & np.isfinite(lat)
    if ok.sum() < 3:
        raise ValueError("it has no longitude/latitude (outside the domain of its projection)")
    lon, lat = lon[ok], np.clip(lat[ok], -90.0, 90.0)
    closed = np.append(lon, lon[0])
    if unwrap:
        closed = np.unwrap(closed, period=360.0)
    lon = closed[:-1]
    coords = list(zip(lon, lat, strict=True))
    turn = closed[-1] - closed[0]
    if abs(turn) > 180.0:  # the ring goes once around the globe: it encloses a pole
        pole = 90.0 if float(np.mean(lat)) >= 0 else -90.0
        coords += [(closed[-1], lat[0]), (closed[-1], pole), (closed[0], pole)]
    elif not split or (lon.min() >= -180.0 and lon.max() <= 180.0):
        simple = Polygon(coords)
        if simple.is_valid and simple.area > 0:  # the usual case: keep the ring as it is
            return simple
    ring = shapely.make_valid(Polygon(coords))
    if not split:
        valid = _polygonal(ring)
        if valid is None:
            raise ValueError("it has no area in longitude/latitude")
        return valid
    parts = []
    west = math.floor((min(lon.min(), closed[-1]) + 180.0) / 360.0)
    east = math.floor((max(lon.max(), closed[-1]) + 180.0) / 360.0)
    for k in range(west, east + 1):
        shift = 360.0 * k
        piece = _polygonal(ring.intersection(box(-180.0 + shift, -90.0, 180.0 + shift, 90.0)))
        if piece is not None:
            parts.append(shapely.affinity.translate(piece, xoff=-shift))
    merged = _polygonal(shapely.make_valid(shapely.union_all(parts))) if parts else None
    if merged is None:
        raise ValueError("it has no area in longitude/latitude")
    return merged


def _polygon_parts(geom: BaseGeometry) -> list[Polygon]:
    """The non-empty Polygons of a (Multi)Polygon or collection."""
    if isinstance(geom, Polygon):
        return [] if geom.is_empty else [geom]
    return [p for g in getattr(geom, "geoms", []) for p in _polygon_parts(g)]


def _assemble(
    parts: list[Polygon], ring: Any, no_area: str
) -> Polygon | MultiPolygon:
    """The union of ``parts`` with each ring converted by ``ring`` (exterior minus holes)."""
    pieces = []
    for part in parts:
        piece = ring(part.exterior.coords)
        holes = [h for h in (ring(i.coords) for i in part.interiors) if h is not None]
        if piece is not None and holes:
            piece = _polygonal(piece.difference(shapely.union_all(holes)))
        if piece is not None:
            pieces.append(piece)
    out = _polygonal(shapely.make_valid(shapely.union_all(pieces))) if pieces else None
    if out is None:
        raise ValueError(no_area)
    return out


def _densify_ring(ring: np.ndarray, per_edge: int) -> np.ndarray:
    """The points of a closed ring (last vertex = first) with each edge cut into ``per_edge - 1`` equal
    parts, not closed."""
    a, b = ring[:-1], ring[1:]
    t = np.linspace(0.0, 1.0, max(int(per_edge), 2))[:-1]
    return (a[:, None, :] + (b - a)[:, None, :] * t[None, :, None]).reshape(-1, 2)


def _follow_edges(pts: np.ndarray, tr: Transformer, to_lonlat: bool) -> tuple[np.ndarray, np.ndarray]:
    """The ring ``pts`` (not closed) transformed, with midpoints added wherever the transformed edge
    strays from the chord between two transformed points by more than the tolerance."""

    def apply(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = tr.transform(p[:, 0], p[:, 1], errcheck=False)
        return np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")

    x, y = apply(pts)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return x, y
    xs = np.unwrap(x[ok], period=360.0) if to_lonlat else x[ok]
    tol = EDGE_TOLERANCE[to_lonlat] * max(float(np.ptp(xs)), float(np.ptp(y[ok])))
    for _ in range(MAX_REFINEMENTS):
        mid = (pts + np.roll(pts, -1, axis=0)) / 2
        mx, my = apply(mid)
        x1, y1 = np.roll(x, -1), np.roll(y, -1)
        with np.errstate(invalid="ignore"):
            if to_lonlat:
                chord_lon = x + _wrap180(x1 - x) / 2
                dx = _wrap180(mx - chord_lon) * np.cos(np.radians(np.clip(my, -90.0, 90.0)))
            else:
                dx = mx - (x + x1) / 2
            err = np.hypot(dx, my - (y + y1) / 2)
            bad = np.flatnonzero(err > tol)  # NaN (outside the domain) is never refined
        if bad.size == 0:
            break
        pts = np.insert(pts, bad + 1, mid[bad], axis=0)
        x = np.insert(x, bad + 1, mx[bad])
        y = np.insert(y, bad + 1, my[bad])
    return x, y


def _wrap180(d: np.ndarray) -> np.ndarray:
    """Longitude differences wrapped into [-180, 180)."""
    return (d + 180.0) % 360.0 - 180.0


def _polygonal(geom: BaseGeometry | None) -> Polygon | MultiPolygon | None:
    """The polygonal part of ``geom`` (a Polygon, a MultiPolygon, or None when it has no area)."""
    if geom is None or geom.is_empty:
        return None
    if isinstance(geom, Polygon | MultiPolygon):
        return geom if geom.area > 0 else None
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
