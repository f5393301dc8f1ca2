"""Geometry validation for the catalogue (pure shapely, no database).

AOIs are stored as valid, non-empty MultiPolygons in EPSG:4326 (lon in [-180, 180], lat in [-90, 90]);
query areas may be any valid, non-empty geometry within those bounds. Bulk helpers work on arrays, so
that creating 100,000 records with AOIs costs a few vectorised shapely calls, not 100,000 Python loops.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, shape
from shapely.geometry.base import BaseGeometry

from ..errors import InvalidGeometry

_POLYGON = 3
_MULTIPOLYGON = 6


def geom_array(values: Sequence[BaseGeometry]) -> np.ndarray:
    """A 1-D object array of geometries (``np.array`` would try to iterate multi-part geometries)."""
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def as_geometry(value: Any, what: str = "geometry") -> BaseGeometry:
    """Accept a shapely geometry, a WKT string, WKB bytes or a GeoJSON-like mapping / ``__geo_interface__``."""
    if isinstance(value, BaseGeometry):
        return value
    try:
        if isinstance(value, str):
            return shapely.from_wkt(value)
        if isinstance(value, bytes | bytearray | memoryview):
            return shapely.from_wkb(bytes(value))
        if hasattr(value, "__geo_interface__") or isinstance(value, dict):
            return shape(value)
    except (shapely.errors.ShapelyError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidGeometry(f"cannot read the {what}: {exc}") from None
    raise InvalidGeometry(
        f"the {what} must be a shapely geometry, WKT, WKB or GeoJSON mapping, not {type(value).__name__}"
    )


def _check_arrays(
    geoms: np.ndarray, what: str, *, polygonal: bool, positions: np.ndarray | None = None, total: int = 0
) -> None:
    """Raise InvalidGeometry for the first geometry that is empty, invalid, of a wrong type or out of bounds.

    ``positions``/``total``: where each geometry came from in the caller's list (for the message).
    """
    if geoms.size == 0:
        return

    def _nth_bad(i: int) -> str:
        return _nth(what, i, geoms.size) if positions is None else _nth(what, int(positions[i]), total)

    bad = shapely.is_empty(geoms)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidGeometry(f"{_nth_bad(i)} is empty: give a geometry with an area")
    if polygonal:
        types = shapely.get_type_id(geoms)
        bad = (types != _POLYGON) & (types != _MULTIPOLYGON)
        if bad.any():
            i = int(np.argmax(bad))
            raise InvalidGeometry(
                f"{_nth_bad(i)} is a {geoms[i].geom_type}: only Polygon and MultiPolygon are allowed"
            )
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        i = int(np.argmax(bad))
        reason = shapely.is_valid_reason(geoms[i])
        raise InvalidGeometry(f"{_nth_bad(i)} is not valid ({reason}): fix it, e.g. with shapely.make_valid")
    bounds = shapely.bounds(geoms)
    bad = ~np.isfinite(bounds).all(axis=1)
    bad |= (bounds[:, 0] < -180) | (bounds[:, 2] > 180) | (bounds[:, 1] < -90) | (bounds[:, 3] > 90)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidGeometry(
            f"{_nth_bad(i)} has bounds {tuple(bounds[i])} outside lon [-180, 180] / lat [-90, 90]:"
            " give EPSG:4326 coordinates as (lon, lat)"
        )


def _nth(what: str, i: int, n: int) -> str:
    return f"the {what}" if n == 1 else f"{what} #{i}"


# A search area may overshoot the lon/lat box by this much (a buffered outline of a global grid); it is
# then clipped. Anything further out is refused: it is most likely not in EPSG:4326 at all.
QUERY_OVERSHOOT_DEG = 0.01
WORLD = shapely.box(-180.0, -90.0, 180.0, 90.0)


def query_area(value: Any, what: str = "aoi") -> BaseGeometry:
    """A search area in EPSG:4326: any valid, non-empty geometry within lon/lat bounds (2D).

    Areas overshooting the bounds by at most ``QUERY_OVERSHOOT_DEG`` are clipped to them.
    """
    geom = shapely.force_2d(as_geometry(value, what))
    if not geom.is_empty and geom.is_valid and not WORLD.covers(geom):
        minx, miny, maxx, maxy = geom.bounds
        tol = QUERY_OVERSHOOT_DEG
        if minx >= -180 - tol and miny >= -90 - tol and maxx <= 180 + tol and maxy <= 90 + tol:
            geom = shapely.intersection(geom, WORLD)
    _check_arrays(geom_array([geom]), what, polygonal=False)
    return geom


def as_multipolygons(values: Sequence[Any], what: str = "AOI") -> np.ndarray:
    """Validate AOIs and return them as an array of 2D MultiPolygons (Polygons are promoted)."""
    geoms = geom_array([as_geometry(v, what) for v in values])
    if geoms.size == 0:
        return geoms
    geoms = shapely.force_2d(geoms)
    _check_arrays(geoms, what, polygonal=True)
    polys = shapely.get_type_id(geoms) == _POLYGON
    if polys.any():
        geoms[polys] = shapely.multipolygons(geoms[polys][:, np.newaxis])  # one single-part each
    return geoms


def as_multipolygon(value: Any, what: str = "AOI") -> MultiPolygon:
    """Validate one AOI and return it as a 2D MultiPolygon."""
    return as_multipolygons([value], what)[0]


def normalized_wkb(geoms: np.ndarray) -> list[bytes]:
    """Canonical WKB of each geometry (normalised ring order and start points), for de-duplication."""
    if geoms.size == 0:
        return []
    return list(shapely.to_wkb(shapely.normalize(geoms), output_dimension=2, byte_order=1))


def wkb_hash(wkb: bytes) -> str:
    """Hex sha256 of a WKB: the unique key of an AOI."""
    return hashlib.sha256(wkb).hexdigest()


def unique_footprints_4326(wkts: Sequence[str], what: str = "footprint_4326_wkt") -> tuple[np.ndarray, np.ndarray]:
    """Parse and validate dataset footprints in EPSG:4326 (WKT): ``(geometries, index)``, the 2D geometry of
    ``wkts[i]`` being ``geometries[index[i]]``.

    Each distinct text is parsed and checked once: the files of one acquisition (one per band or variable)
    share their footprint, and parsing a densified footprint costs far more than looking its text up.
    """
    texts = list(wkts)
    seen: dict[Any, int] = {}
    index = np.empty(len(texts), dtype=np.intp)
    originals: list[int] = []  # where each distinct text first occurs
    for n, text in enumerate(texts):
        key = text if isinstance(text, str) else (n,)  # only texts are shared; anything else stands alone
        k = seen.setdefault(key, len(seen))
        if k == len(originals):
            originals.append(n)
        index[n] = k
    try:
        geoms = shapely.from_wkt(np.asarray([texts[n] for n in originals], dtype=object))
    except shapely.errors.ShapelyError as exc:
        raise InvalidGeometry(f"cannot read a {what}: {exc}") from None
    if geoms.size == 0:
        return geoms, index
    if any(g is None for g in geoms):
        raise InvalidGeometry(f"a {what} is missing: every dataset needs its footprint in EPSG:4326")
    geoms = shapely.force_2d(geoms)
    _check_arrays(geoms, what, polygonal=True, positions=np.asarray(originals, dtype=np.intp), total=len(texts))
    return geoms, index


def footprints_4326(wkts: Sequence[str], what: str = "footprint_4326_wkt") -> np.ndarray:
    """Parse and validate dataset footprints in EPSG:4326 (WKT), as an array of 2D geometries (equal texts
    give the same geometry object)."""
    geoms, index = unique_footprints_4326(wkts, what)
    return geoms[index]
