"""Geometry validation (pure shapely): AOIs, search areas, footprints."""

from __future__ import annotations

import pytest
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box, mapping

from geocube_dask.catalog.geometry import (
    as_geometry,
    as_multipolygon,
    as_multipolygons,
    footprints_4326,
    normalized_wkb,
    query_area,
    unique_footprints_4326,
    wkb_hash,
)
from geocube_dask.errors import InvalidGeometry

BOWTIE = Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])


def test_inputs_accepted() -> None:
    square = box(0, 0, 1, 1)
    for value in (square, square.wkt, square.wkb, mapping(square)):
        assert as_multipolygon(value).equals(MultiPolygon([square]))


def test_polygon_is_promoted_and_z_dropped() -> None:
    geom = as_multipolygon(Polygon([(0, 0, 5), (1, 0, 5), (1, 1, 5), (0, 0, 5)]))
    assert geom.geom_type == "MultiPolygon" and not geom.has_z


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Point(0, 0), "only Polygon and MultiPolygon"),
        (LineString([(0, 0), (1, 1)]), "only Polygon and MultiPolygon"),
        (Polygon(), "empty"),
        (BOWTIE, "not valid.*Self-intersection"),
        (box(179, 0, 181, 1), "outside lon"),
        (box(0, 89, 1, 91), "outside lon"),
        ("POLYGON ((0 0, 1", "cannot read"),
        (42, "must be a shapely geometry"),
    ],
)
def test_invalid_aois(value, message: str) -> None:
    with pytest.raises(InvalidGeometry, match=message):
        as_multipolygon(value)


def test_bulk_names_the_bad_item() -> None:
    with pytest.raises(InvalidGeometry, match="AOI #2"):
        as_multipolygons([box(0, 0, 1, 1), box(1, 1, 2, 2), BOWTIE])


def test_query_areas_may_be_points_but_must_be_valid() -> None:
    assert query_area(Point(1, 2)).equals(Point(1, 2))
    # the buffered outline of a global grid is clipped; a clearly projected geometry is refused
    assert query_area(box(-180.0001, -90.0001, 180.0001, 90.0001)).equals(box(-180, -90, 180, 90))
    with pytest.raises(InvalidGeometry, match="outside lon"):
        query_area(box(300000, 4800000, 310000, 4810000))
    with pytest.raises(InvalidGeometry):
        query_area(Point(200, 0))
    with pytest.raises(InvalidGeometry):
        query_area(BOWTIE)


def test_normalised_hash_ignores_ring_order_and_start() -> None:
    a = as_multipolygons([box(0, 0, 1, 1), Polygon([(1, 1), (0, 1), (0, 0), (1, 0), (1, 1)])])
    wkbs = normalized_wkb(a)
    assert wkb_hash(wkbs[0]) == wkb_hash(wkbs[1])


def test_footprints() -> None:
    assert len(footprints_4326([box(0, 0, 1, 1).wkt, box(1, 1, 2, 2).wkt])) == 2
    with pytest.raises(InvalidGeometry):
        footprints_4326(["POINT (1 1)"])


def test_shared_footprints_are_parsed_once() -> None:
    a, b = box(0, 0, 1, 1).wkt, box(1, 1, 2, 2).wkt
    geoms, index = unique_footprints_4326([a, b, a, a])
    assert len(geoms) == 2 and index.tolist() == [0, 1, 0, 0]
    found = footprints_4326([a, b, a])
    assert found[0] is found[2] and found[2].equals(box(0, 0, 1, 1))
    # a bad text is named by its position in the caller's list, also after shared ones
    with pytest.raises(InvalidGeometry, match="#3 is a Point"):
        footprints_4326([a, b, a, "POINT (1 1)"])
    with pytest.raises(InvalidGeometry, match="#2 has bounds"):
        footprints_4326([a, a, box(0, 0, 1, 100).wkt, box(0, 0, 1, 100).wkt])


def test_as_geometry_passes_shapely_through() -> None:
    p = Point(1, 1)
    assert as_geometry(p) is p
