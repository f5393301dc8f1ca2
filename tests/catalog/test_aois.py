"""AOIs: validation, de-duplication, reading back, listing by area and deletion rules."""

from __future__ import annotations

import pytest
from shapely.geometry import MultiPolygon, Point, Polygon, box

import geocube_dask as gd

from .helpers import table_counts


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
    for huge in (2**63, 10**30):  # beyond the id column: the driver once raised OverflowError
        with pytest.raises(gd.NotFound):
            gc.get_aoi(huge)
        with pytest.raises(gd.NotFound):
            gc.delete_aoi(huge)


def test_get_returns_the_aoi(gc) -> None:
    aoi = gc.create_aoi(box(1, 2, 3, 4))
    got = gc.get_aoi(aoi)
    assert isinstance(got, gd.Aoi) and got.id == aoi
    assert isinstance(got.geometry, MultiPolygon) and got.geometry.equals(box(1, 2, 3, 4))


def test_list_aois_by_area_and_pages(gc) -> None:
    ids = [gc.create_aoi(box(i, 0, i + 1, 1)) for i in range(6)]
    everything = gc.list_aois()
    assert [a.id for a in everything] == sorted(ids)
    assert all(a.geometry.equals(box(i, 0, i + 1, 1)) for i, a in enumerate(everything))
    # exact intersection (touching counts), not bounding boxes: the L misses AOI 3's box
    assert [a.id for a in gc.list_aois(aoi=box(2.5, 0.2, 3.5, 0.4))] == ids[2:4]
    ell = Polygon([(0.2, 0.2), (2.5, 0.2), (2.5, 2), (4.5, 2), (4.5, 3), (0.2, 3)])  # stays above y=1 past x=2.5
    assert [a.id for a in gc.list_aois(aoi=ell)] == ids[:3]
    assert [a.id for a in gc.list_aois(aoi=box(3, 0.5, 3, 0.5).buffer(0.01))] == ids[2:4]
    assert [a.id for a in gc.list_aois(limit=4, page=1)] == ids[4:]
    with pytest.raises(gd.InvalidGeometry):
        gc.list_aois(aoi=box(0, 0, 500, 1))
    with pytest.raises(gd.InvalidArgument):
        gc.list_aois(limit=-1)


def test_delete_aoi(gc) -> None:
    used = gc.create_aoi(box(0, 0, 1, 1))
    free = gc.create_aoi(box(2, 2, 3, 3))
    gc.create_record("r", "2024-01-01", aoi=used)
    before = table_counts(gc)
    with pytest.raises(gd.DependencyError, match="1 record.*delete those records first"):
        gc.delete_aoi(used)
    with pytest.raises(gd.NotFound, match="list_aois"):
        gc.delete_aoi(123456)
    with pytest.raises(gd.InvalidArgument):
        gc.delete_aoi("1")
    assert table_counts(gc) == before
    assert gc.delete_aoi(free) is None
    assert [a.id for a in gc.list_aois()] == [used]
    assert gc.list_aois(aoi=box(2, 2, 3, 3)) == []  # gone from the spatial index too
    with pytest.raises(gd.NotFound):
        gc.get_aoi(free)
    assert gc.create_aoi(box(2, 2, 3, 3)) != free  # a new row, not the deleted one's id
