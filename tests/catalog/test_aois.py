"""AOIs: validation, de-duplication (also under concurrency) and reading back."""

from __future__ import annotations

import pytest
from shapely.geometry import MultiPolygon, Point, Polygon, box

import geocube_dask as gd

from .helpers import table_counts


def test_create_and_get(gc) -> None:
    aoi = gc.create_aoi(box(1, 2, 3, 4))
    geom = gc.get_aoi(aoi)
    assert isinstance(geom, MultiPolygon) and geom.equals(box(1, 2, 3, 4))


def test_identical_aoi_returns_the_existing_id(gc) -> None:
    first = gc.create_aoi(box(0, 0, 1, 1))
    same = gc.create_aoi(Polygon([(1, 1), (0, 1), (0, 0), (1, 0), (1, 1)]))  # other start and orientation
    assert first == same
    assert gc.create_aoi(MultiPolygon([box(0, 0, 1, 1)])) == first
    assert gc.create_aoi(box(0, 0, 2, 1)) != first


INVALID = [
    (Point(0, 0), "Polygon and MultiPolygon"),
    (Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)]), "Self-intersection"),
    (box(-181, 0, 0, 1), "outside lon"),
    (box(0, -91, 1, 0), "outside lon"),
    (Polygon(), "empty"),
]


def test_invalid_aois_change_nothing(gc) -> None:
    gc.create_aoi(box(0, 0, 1, 1))
    before = table_counts(gc)
    for geom, message in INVALID:
        with pytest.raises(gd.InvalidGeometry, match=message):
            gc.create_aoi(geom)
    assert table_counts(gc) == before


def test_bad_aoi_ids(gc) -> None:
    for aoi_id in (0, -1, "1", 1.0, True):
        with pytest.raises(gd.InvalidArgument):
            gc.get_aoi(aoi_id)


def test_unknown_aoi(gc) -> None:
    with pytest.raises(gd.NotFound):
        gc.get_aoi(123456)
