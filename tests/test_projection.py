"""CRS names, cached transformers and polygon reprojection shared by the catalogue and the engine."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer
from rasterio.crs import CRS
from shapely.geometry import MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from geocube_dask.errors import InvalidArgument
from geocube_dask.projection import crs_string, normalize_lonlat, same_crs, transform_polygon, transformer


def test_crs_string_prefers_epsg_codes():
    assert crs_string(4326) == "EPSG:4326"
    assert crs_string("+proj=utm +zone=31 +datum=WGS84 +units=m +no_defs") == "EPSG:32631"
    custom = "+proj=laea +lat_0=52 +lon_0=10 +x_0=4321000 +y_0=3210000 +ellps=GRS80 +units=m +no_defs"
    assert crs_string(custom).startswith(("PROJCS", "PROJCRS", "EPSG:3035"))
    assert crs_string(CRS.from_epsg(2154)) == "EPSG:2154"  # a rasterio CRS, as a file header gives


def test_crs_string_names_what_was_wrong():
    with pytest.raises(InvalidArgument, match=r"invalid crs of cell 'c1' 'EPSG:0': unknown CRS"):
        crs_string("EPSG:0", "crs of cell 'c1'")


def test_same_crs_and_cached_transformers():
    assert same_crs("EPSG:4326", "EPSG:4326") and not same_crs("EPSG:4326", "EPSG:32631")
    assert same_crs("EPSG:32631", CRS.from_epsg(32631).to_wkt())
    assert transformer("EPSG:4326", "EPSG:32631") is transformer("EPSG:4326", "EPSG:32631")


def test_transform_polygon_follows_curved_edges():
    # a 6° × 4° lon/lat box in UTM 31: its densified edges pass through the reprojected edge midpoints
    poly = box(0.0, 44.0, 6.0, 48.0)
    out = transform_polygon(poly, "EPSG:4326", "EPSG:32631", densify=33)
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32631", always_xy=True)
    for lon, lat in ((3.0, 48.0), (3.0, 44.0), (0.0, 46.0), (6.0, 46.0)):
        assert out.exterior.distance(Point(*to_utm.transform(lon, lat))) < 1.0  # metres
    assert transform_polygon(poly, "EPSG:4326", "EPSG:4326") is poly


def pacific_grid_outline() -> tuple[BaseGeometry, Transformer]:
    """A 300 km × 200 km box in EPSG:3832 (Mercator centred on 150°E) across the antimeridian at 52°N."""
    to_3832 = Transformer.from_crs("EPSG:4326", "EPSG:3832", always_xy=True)
    x, y = to_3832.transform(180.0, 52.0)
    return box(x - 150000, y - 100000, x + 150000, y + 100000), to_3832


def boundary_points(poly: Polygon, n: int = 50) -> np.ndarray:
    """``n`` points along each edge of a rectangle (its exterior), corners included."""
    c = np.asarray(poly.exterior.coords)
    t = np.linspace(0, 1, n)[:, None]
    return np.concatenate([c[i] + t * (c[i + 1] - c[i]) for i in range(len(c) - 1)])


def test_polygon_across_the_antimeridian_is_split_there():
    outline, to_3832 = pacific_grid_outline()
    out = transform_polygon(outline, "EPSG:3832", "EPSG:4326")
    assert isinstance(out, MultiPolygon) and out.is_valid
    assert out.bounds[0] == -180.0 and out.bounds[2] == 180.0
    west, east = sorted(out.geoms, key=lambda p: p.bounds[0], reverse=True)
    assert west.bounds[2] == 180.0 and east.bounds[0] == -180.0
    # its edges, transformed point by point with pyproj, lie on its boundary (wrapped into [-180, 180])
    lon, lat = to_3832.transform(*boundary_points(outline).T, direction="INVERSE")
    for p in zip(lon, lat, strict=True):
        assert out.boundary.distance(Point(p)) < 1e-7 * 5  # the tolerance: 1e-7 of its extent (< 5°)
    assert out.contains(Point(179.5, 52.0)) and out.contains(Point(-179.5, 52.0))
    assert not out.contains(Point(0.0, 52.0))  # not a band around the globe
    # continuous coordinates (for an output grid's bounds): one polygon across 180°
    whole = transform_polygon(outline, "EPSG:3832", "EPSG:4326", wrap=False)
    assert isinstance(whole, Polygon) and whole.bounds[2] - whole.bounds[0] < 5
    assert whole.bounds[0] < 180.0 < whole.bounds[2] or whole.bounds[0] < -180.0 < whole.bounds[2]


def test_polygon_around_a_pole_is_closed_through_it():
    outline = box(-1_000_000, -1_000_000, 1_000_000, 1_000_000)  # NSIDC polar stereographic, round the pole
    out = transform_polygon(outline, "EPSG:3413", "EPSG:4326")
    assert isinstance(out, Polygon) and out.is_valid and out.bounds[3] == 90.0
    to_lonlat = Transformer.from_crs("EPSG:3413", "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(*boundary_points(outline).T)
    for p in zip(lon, lat, strict=True):
        assert out.boundary.distance(Point(p)) < 1e-7 * 360  # the tolerance: 1e-7 of its extent (360° of lon)
    for lon_ in (-170.0, -45.0, 0.0, 100.0, 179.9):
        assert out.contains(Point(lon_, 89.0)) and not out.contains(Point(lon_, 70.0))


def test_lonlat_cap_round_a_pole_becomes_a_disc():
    out = transform_polygon(box(-180.0, 85.0, 180.0, 90.0), "EPSG:4326", "EPSG:3413")
    assert isinstance(out, Polygon) and out.is_valid
    # the 85°N parallel, transformed point by point: a circle round the pole, followed by the boundary
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3413", always_xy=True).transform(
        np.linspace(-180, 180, 1001), np.full(1001, 85.0))
    radius = np.hypot(x, y)
    for p in zip(x, y, strict=True):
        assert out.exterior.distance(Point(p)) < 1.0  # metres
    assert out.area == pytest.approx(np.pi * radius.mean() ** 2, rel=1e-5)
    assert out.contains(Point(0, 0))


def test_lonlat_polygon_past_180_is_wrapped():
    out = normalize_lonlat(box(179.0, 0.0, 181.0, 1.0))
    assert out.equals(box(179.0, 0.0, 180.0, 1.0).union(box(-180.0, 0.0, -179.0, 1.0)))
    same = box(10.0, 0.0, 11.0, 1.0)
    assert normalize_lonlat(same) is same
    assert transform_polygon(box(179.0, 0.0, 181.0, 1.0), "EPSG:4326", "EPSG:4326").equals(out)


def test_polygon_outside_the_domain_of_a_projection_is_refused():
    ortho = "+proj=ortho +lat_0=90 +lon_0=0 +datum=WGS84"  # the northern hemisphere only
    with pytest.raises(ValueError, match="outside the domain"):
        transform_polygon(box(-10.0, -30.0, 10.0, 30.0), "EPSG:4326", ortho)
