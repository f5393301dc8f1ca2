"""CRS names, cached transformers and polygon reprojection shared by the catalogue and the engine."""

from __future__ import annotations

import pytest
from pyproj import Transformer
from rasterio.crs import CRS
from shapely.geometry import Point, box

from geocube_dask.errors import InvalidArgument
from geocube_dask.projection import crs_string, same_crs, transform_polygon, transformer


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
