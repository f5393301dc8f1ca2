"""Spatial predicates: exact intersection on both backends (not just bounding boxes)."""

from __future__ import annotations

import shapely
from shapely.geometry import Point, Polygon, box

from geocube_dask.catalog.db.spatial import sqlite_intersects

# An L shape: its bounding box covers (1.5, 1.5) but the shape itself does not.
L_SHAPE = Polygon([(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2), (0, 0)])


def test_sqlite_function() -> None:
    area = shapely.to_wkb(box(0, 0, 1, 1))
    assert sqlite_intersects(shapely.to_wkb(box(0.5, 0.5, 2, 2)), area) == 1
    assert sqlite_intersects(shapely.to_wkb(box(1, 1, 2, 2)), area) == 1  # touching counts
    assert sqlite_intersects(shapely.to_wkb(box(1.1, 1.1, 2, 2)), area) == 0
    assert sqlite_intersects(None, area) is None


def test_exact_test_after_the_bounding_box(gc) -> None:
    gc.create_record("l", "2024-01-01", aoi=L_SHAPE)
    assert gc.list_records(aoi=Point(1.5, 1.5)) == []
    assert gc.list_records(aoi=box(1.4, 1.4, 1.6, 1.6)) == []
    assert [r.name for r in gc.list_records(aoi=Point(0.5, 1.5))] == ["l"]
    assert [r.name for r in gc.list_records(aoi=box(1, 1, 3, 3))] == ["l"]  # touches the inner corner


def test_multipolygon_areas(gc) -> None:
    gc.create_record("west", "2024-01-01", aoi=box(-10, 0, -9, 1))
    gc.create_record("east", "2024-01-01", aoi=box(9, 0, 10, 1))
    gc.create_record("middle", "2024-01-01", aoi=box(-1, 0, 1, 1))
    area = shapely.MultiPolygon([box(-9.5, 0, -8, 1), box(8, 0, 9.5, 1)])
    assert sorted(r.name for r in gc.list_records(aoi=area)) == ["east", "west"]
