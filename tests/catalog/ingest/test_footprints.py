"""File bounds as polygons: densified lon/lat footprints, the poles, the antimeridian, native corners."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer
from rasterio.warp import transform_bounds
from rasters import SCENES, Scene
from shapely.geometry import MultiPolygon, Point, Polygon, box

from geocube_dask.catalog.ingest.footprints import DENSIFY_POINTS, footprint_4326, footprint_native


def lonlat_footprint(scene: Scene) -> Polygon | MultiPolygon:
    return footprint_4326(scene.crs, scene.transform, scene.width, scene.height)


@pytest.mark.parametrize("name", sorted(SCENES))
def test_footprint_4326_follows_transformed_edges(name: str) -> None:
    scene = SCENES[name]
    fp = lonlat_footprint(scene)
    assert isinstance(fp, Polygon) and fp.is_valid
    to_lonlat = Transformer.from_crs(scene.crs, "EPSG:4326", always_xy=True)
    left, bottom, right, top = scene.bounds
    # the corners, and points along each edge, transformed independently with pyproj, lie on its boundary
    n = 101
    t = np.linspace(0, 1, n)
    xs = np.concatenate([left + t * (right - left), np.full(n, right), left + t * (right - left), np.full(n, left)])
    ys = np.concatenate([np.full(n, top), bottom + t * (top - bottom), np.full(n, bottom), bottom + t * (top - bottom)])
    lon, lat = to_lonlat.transform(xs, ys)
    for x, y in zip(lon, lat, strict=True):
        # between its points the boundary is a chord, within a millimetre (1e-8°) of the true curve
        assert fp.exterior.distance(Point(x, y)) < 1e-8
    expected = transform_bounds(scene.crs, "EPSG:4326", left, bottom, right, top, densify_pts=21)
    assert np.allclose(fp.bounds, expected, atol=1e-9)
    if scene.crs == "EPSG:4326":  # straight edges stay straight: the four corners
        assert len(fp.exterior.coords) == 5
    else:  # densified, and refined where the chords stray
        assert len(fp.exterior.coords) >= 4 * (DENSIFY_POINTS - 1) + 1


def test_global_lonlat_grid_is_clipped() -> None:
    # pixel edges overshoot the poles and the antimeridian by half a pixel, as global grids often do
    fp = lonlat_footprint(Scene("EPSG:4326", -180.5, 90.5, 1.0, 361, 181))
    assert fp.is_valid and fp.bounds == (-180.0, -90.0, 180.0, 90.0)
    assert fp.area == pytest.approx(360 * 180)


def test_0_360_grid_is_wrapped() -> None:
    fp = lonlat_footprint(Scene("EPSG:4326", 170.0, 10.0, 0.1, 200, 100))  # lon 170..190
    assert isinstance(fp, MultiPolygon) and fp.is_valid
    assert fp.equals(box(170, 0, 180, 10).union(box(-180, 0, -170, 10)))


def test_antimeridian_crossing_utm_is_split() -> None:
    fp = lonlat_footprint(Scene("EPSG:32660", 800000.0, 100000.0, 500.0, 200, 200))  # UTM 60N, x 800..900 km
    assert isinstance(fp, MultiPolygon) and fp.is_valid
    west, _, east, _ = fp.bounds
    assert west == -180.0 and east == 180.0
    assert fp.intersects(Point(179.9, 0.5)) and fp.intersects(Point(-179.95, 0.5))
    assert not fp.intersects(Point(0, 0.5))
    assert fp.area < 2  # about 0.9° × 0.9°, not a band around the globe


def test_polar_stereographic_footprint_contains_the_pole() -> None:
    fp = lonlat_footprint(Scene("EPSG:3413", -500000.0, 500000.0, 5000.0, 200, 200))  # NSIDC north polar
    assert fp.is_valid and fp.bounds[3] == 90.0 and fp.bounds[0] == -180.0 and fp.bounds[2] == 180.0
    assert fp.intersects(Point(10, 89.9)) and fp.intersects(Point(-170, 89.9))
    # the corners, 707 km from the pole, are its southernmost points
    _, corner_lat = Transformer.from_crs("EPSG:3413", "EPSG:4326", always_xy=True).transform(-500000.0, 500000.0)
    assert fp.bounds[1] == pytest.approx(corner_lat, abs=1e-9) and 83 < corner_lat < 84
    assert not fp.intersects(Point(0, 80))


def test_corners_outside_the_projection_domain_are_refused() -> None:
    # an orthographic view centred on lon 0: a grid reaching far beyond the visible disc has no lon/lat corners
    ortho = "+proj=ortho +lat_0=0 +lon_0=0 +datum=WGS84"
    with pytest.raises(ValueError, match="longitude/latitude"):
        footprint_4326(ortho, Affine(1e6, 0, 2e7, 0, -1e6, 3e7), 10, 10)


def test_native_footprint_is_the_four_corners_also_when_rotated() -> None:
    assert footprint_native(Affine(10, 0, 1000, 0, -10, 2000), 30, 20).equals(box(1000, 1800, 1300, 2000))
    # 90° rotation: column steps go down (−y), row steps go right (+x)
    rotated = footprint_native(Affine(0, 10, 1000, -10, 0, 2000), 30, 20)
    assert rotated.equals(box(1000, 1700, 1200, 2000))
