"""Layout grids → cells: compared with a brute-force reference (every cell of a wide window, kept when
its box overlaps the area with some interior), ids round-trip, snapping, reprojection at the edges of
what a CRS can hold."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Point, box

from geocube_dask.consolidate.cells import CellGrid, area_in, cell_by_id, regular_cells, stored_cells
from geocube_dask.entities import Cell, Layout
from geocube_dask.errors import InvalidArgument, InvalidGeometry, NotFound

UTM = "EPSG:32631"
REGULAR = Layout("utm-10m", grid="regular", crs=UTM, resolution=10.0, cell_size=256, block_size=256)
S = 2560.0  # cell side in metres


def brute_force(area: shapely.Geometry, size: float, origin: tuple[float, float] = (0.0, 0.0)) -> set:
    """Ids of the cells (i, j) whose box shares some area with ``area``, among all cells of a window
    three cells wider than the area on every side."""
    ox, oy = origin
    minx, miny, maxx, maxy = area.bounds
    cols = range(math.floor((minx - ox) / size) - 3, math.ceil((maxx - ox) / size) + 3)
    rows = range(math.floor((oy - maxy) / size) - 3, math.ceil((oy - miny) / size) + 3)
    out = set()
    for i in cols:
        for j in rows:
            cell = box(ox + i * size, oy - (j + 1) * size, ox + (i + 1) * size, oy - j * size)
            if cell.intersection(area).area > 0:
                out.add(f"x{i}_y{j}")
    return out


def to_crs(geom: shapely.Geometry, src: str, dst: str) -> shapely.Geometry:
    """Plain reprojection for the reference: edges cut in 100 pieces, vertices through pyproj."""
    tr = Transformer.from_crs(src, dst, always_xy=True)
    dense = shapely.segmentize(geom, max(np.ptp(shapely.get_coordinates(geom), axis=0)) / 100)
    return shapely.transform(dense, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


@pytest.mark.parametrize(
    "area",
    [
        box(5000, -3000, 9000, 2000),
        box(-7000, -7000, -100, 100),
        shapely.Polygon([(0, 0), (12000, 1000), (3000, 9000)]),
        box(0, 0, 1000, 1000).union(box(20000, 20000, 21000, 21000)),
    ],
)
def test_regular_cells_in_the_layout_crs(area: shapely.Geometry) -> None:
    cells = regular_cells(REGULAR, area, UTM)
    assert {c.id for c in cells} == brute_force(area, S)
    assert len({c.id for c in cells}) == len(cells)


def test_regular_cell_grids() -> None:
    cells = regular_cells(REGULAR, box(5000, -3000, 9000, 2000), UTM)
    assert [c.id for c in cells] == [f"x{i}_y{j}" for j in (-1, 0, 1) for i in (1, 2, 3)]  # north to south
    cell = next(c for c in cells if c.id == "x1_y-1")
    assert cell == CellGrid("x1_y-1", UTM, cell.transform, (256, 256))
    assert cell.transform @ (0, 0) == (2560.0, 2560.0)
    assert cell.transform @ (256, 256) == (5120.0, 0.0)
    assert cell.bounds == (2560.0, 0.0, 5120.0, 2560.0)


def test_cells_only_touching_are_left_out() -> None:
    assert [c.id for c in regular_cells(REGULAR, box(0, 0, S, S), UTM)] == ["x0_y-1"]
    # an area without an area keeps the cells it touches
    assert {c.id for c in regular_cells(REGULAR, Point(S, 0), UTM)} == {"x0_y-1", "x1_y-1", "x0_y0", "x1_y0"}


def test_origin_moves_the_cells() -> None:
    layout = Layout("shifted", grid="regular", crs=UTM, resolution=10.0, cell_size=256, origin=(1000.0, -500.0))
    area = box(5000, -3000, 9000, 2000)
    cells = regular_cells(layout, area, UTM)
    assert {c.id for c in cells} == brute_force(area, S, origin=(1000.0, -500.0))
    assert cell_by_id(layout, "x0_y0").transform @ (0, 0) == (1000.0, -500.0)


def test_regular_cells_from_lon_lat() -> None:
    layout = Layout("utm-20m", grid="regular", crs=UTM, resolution=20.0, cell_size=512, origin=(0.0, 10_000_000.0))
    aoi = shapely.Polygon([(1.2, 43.5), (1.6, 43.45), (1.75, 43.8), (1.3, 43.72)])  # around Toulouse
    cells = regular_cells(layout, aoi)
    reference = brute_force(to_crs(aoi, "EPSG:4326", UTM), 20.0 * 512, origin=(0.0, 10_000_000.0))
    assert {c.id for c in cells} == reference
    assert all(c.crs == UTM and c.shape == (512, 512) for c in cells)


def test_single_cell_is_snapped_to_the_pixel_grid() -> None:
    layout = Layout("one", grid="single")
    area = box(4.80001, 45.8, 4.85, 45.83)
    (cell,) = regular_cells(layout, area, crs="EPSG:4326", resolution=0.0002)
    # 4.80001 / 0.0002 = 24000.05 → column 24000; 4.85 / 0.0002 = 24249.999… (rounding) → 24250
    assert cell.id == "single_x24000_y-229150_w250_h150"
    left, bottom, right, top = cell.bounds
    assert math.isclose(left, 4.8) and math.isclose(right, 4.85) and math.isclose(top, 45.83)
    assert math.isclose(bottom, 45.8)
    assert cell_by_id(layout, cell.id, crs="EPSG:4326", resolution=0.0002) == cell


def test_single_cell_takes_the_request_grid_or_the_layout_one() -> None:
    area = box(360000, 4800000, 365000, 4803000)
    with pytest.raises(InvalidArgument, match="give crs= and resolution="):
        regular_cells(Layout("one", grid="single"), area, UTM)
    own = Layout("one", grid="single", crs=UTM, resolution=20.0)
    (cell,) = regular_cells(own, area, UTM)
    assert cell.shape == (150, 250) and cell.crs == UTM
    (finer,) = regular_cells(own, area, UTM, resolution=10.0)
    assert finer.shape == (300, 500)
    with pytest.raises(InvalidArgument, match="its own"):
        regular_cells(REGULAR, area, UTM, resolution=20.0)


def test_stored_cells_snap_like_tap() -> None:
    cells = [
        Cell("T31", UTM, box(100003, 200001, 150007, 260000).wkt),
        Cell("T32", "EPSG:32632", box(300000, 5000000, 310000, 5010000).wkt),
    ]
    t31, t32 = stored_cells(cells, 20)
    assert t31.bounds == (100000.0, 200000.0, 150020.0, 260000.0) and t31.shape == (3000, 2501)
    assert t31.transform.a == 20 and t31.transform.e == -20
    assert t32.crs == "EPSG:32632" and t32.shape == (500, 500)
    assert cell_by_id(Layout("g", grid="utm-tiles", resolution=20.0), "T32", cells=cells) == t32


def test_stored_cells_meeting_an_area() -> None:
    cells = [
        Cell("west", UTM, box(300000, 4800000, 400000, 4900000).wkt),
        Cell("east", UTM, box(400000, 4800000, 500000, 4900000).wkt),
        Cell("far", "EPSG:32632", box(300000, 5000000, 310000, 5010000).wkt),
    ]
    west_only = to_crs(box(320000, 4810000, 390000, 4890000), UTM, "EPSG:4326")
    assert [c.id for c in stored_cells(cells, 10, west_only)] == ["west"]
    edge = box(350000, 4810000, 400000, 4890000)  # touches "east" along x = 400000 only
    assert [c.id for c in stored_cells(cells, 10, edge, UTM)] == ["west"]


def test_cell_ids_round_trip() -> None:
    for cell in regular_cells(REGULAR, box(-9000, -9000, 9000, 9000), UTM):
        assert cell_by_id(REGULAR, cell.id) == cell


@pytest.mark.parametrize(
    ("layout", "cell_id", "kwargs", "error", "message"),
    [
        (REGULAR, "x1-y2", {}, InvalidArgument, "e.g. 'x12_y-7'"),
        (REGULAR, 12, {}, InvalidArgument, "is a string"),
        (Layout("one", grid="single"), "x1_y2", {}, InvalidArgument, "single-cell"),
        (Layout("one", grid="single"), "single_x1_y2_w3_h4", {}, InvalidArgument, "give crs= and resolution="),
        (Layout("g", grid="tiles", resolution=10.0), "T31", {}, InvalidArgument, "pass its cells="),
        (Layout("g", grid="tiles", resolution=10.0), "T99", {"cells": [Cell("T31", UTM, box(0, 0, 1, 1).wkt)]},
         NotFound, "no cell 'T99'"),
    ],
)
def test_bad_cell_ids(layout: Layout, cell_id: object, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        cell_by_id(layout, cell_id, **kwargs)  # type: ignore[arg-type]


def test_area_beyond_what_the_crs_holds_is_clipped() -> None:
    # UTM 31 (central meridian 3°E) sends lon 93°E to infinity: the area is cut to the zone's area of use
    strip = box(2, 1, 93, 2)
    with pytest.raises(Exception, match="NaN/Inf"):  # what a plain reprojection gives
        shapely.make_valid(to_crs(strip, "EPSG:4326", UTM))
    local = area_in(strip, "EPSG:4326", UTM)
    expected = to_crs(box(2, 1, 6, 2), "EPSG:4326", UTM)  # UTM 31's area of use is 0°E–6°E, 0°N–84°N
    np.testing.assert_allclose(local.bounds, expected.bounds, rtol=1e-6)
    assert {c.id for c in regular_cells(REGULAR, strip)} == brute_force(expected, S)
    with pytest.raises(InvalidGeometry, match="outside what that CRS can represent"):
        regular_cells(REGULAR, box(88, -5, 100, 5))


def test_bad_areas() -> None:
    with pytest.raises(InvalidGeometry, match="empty"):
        regular_cells(REGULAR, shapely.Polygon())
    with pytest.raises(InvalidGeometry, match="shapely geometry"):
        regular_cells(REGULAR, "POINT (1 2)")  # type: ignore[arg-type]
    tiny = Layout("tiny", grid="regular", crs=UTM, resolution=1.0, cell_size=16, block_size=16)
    with pytest.raises(InvalidArgument, match="smaller area"):
        regular_cells(tiny, box(0, 0, 100_000, 100_000), UTM)
    with pytest.raises(InvalidArgument, match="stored_cells"):
        regular_cells(Layout("g", grid="tiles"), box(0, 0, 1, 1))
