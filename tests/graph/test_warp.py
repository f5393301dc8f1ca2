"""Geometry between output grids and source grids: levels, scale, alignment, coordinates."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer
from scenes import centre_in

from geocube_dask.entities import DFormat
from geocube_dask.graph.grid import GridSpec, make_grid
from geocube_dask.graph.plan import Source
from geocube_dask.graph.warp import (
    alignment,
    choose_level,
    chunk_coords,
    lattice_coords,
    level_grid,
    output_window,
    source_pixel_coords,
)
from geocube_dask.projection import crs_string

FMT = DFormat("uint16", 0.0, 0.0, 10000.0)


def tile(crs: str, x0: float, y0: float, res: float = 10.0, size: int = 2048) -> Source:
    ovs = ((size // 2, size // 2), (size // 4, size // 4), (size // 8, size // 8))
    return Source("/nowhere.tif", "", (1,), FMT, 0.0, 1.0, 1.0, crs, (res, 0.0, x0, 0.0, -res, y0), size, size, ovs)


def test_level_grid_of_an_overview_covers_the_same_extent():
    src = tile("EPSG:32631", 600000, 5000000)
    lg = level_grid(src, 1)
    assert (lg.width, lg.height) == (512, 512)
    assert lg.transform == (40.0, 0.0, 600000.0, 0.0, -40.0, 5000000.0)


@pytest.mark.parametrize(("res", "level"), [(10, -1), (15, -1), (19.7, -1), (19.9, 0), (20, 0), (30, 0),
                                            (40, 1), (79, 1), (80, 2), (500, 2)])
def test_overview_just_finer_than_the_output(res, level):
    src = tile("EPSG:32631", 600000, 5000000)
    grid = make_grid("EPSG:32631", res, (600000, 4990000, 610000, 5000000))
    lg, scale = choose_level(src, grid)
    assert lg.level == level
    factor = 1 if level < 0 else 2 ** (level + 1)  # an overview up to 1 % coarser still counts
    assert scale == pytest.approx((res / 10 / factor, res / 10 / factor))


def test_overview_across_crs_uses_the_tolerance():
    # 20 m in zone 31 over a zone-32 tile: the ratio is ~2 (not exactly): the ×2 overview is used
    cx, cy = centre_in("EPSG:32631")
    grid = make_grid("EPSG:32631", 20, (cx - 3000, cy - 3000, cx + 3000, cy + 3000))
    lg, scale = choose_level(tile("EPSG:32632", *centre_in("EPSG:32632")), grid)
    assert lg.level == 0 and scale[0] == pytest.approx(1.0, abs=0.01)


def test_alignment_needs_same_crs_resolution_and_whole_pixel_offset():
    lg = level_grid(tile("EPSG:32631", 600000, 5000000), 0)  # 20 m
    assert alignment(lg, GridSpec("EPSG:32631", (20, 0, 600400, 0, -20, 4999800), 10, 10)) == (10, 20)
    assert alignment(lg, GridSpec("EPSG:32631", (20, 0, 600410, 0, -20, 4999800), 10, 10)) is None
    assert alignment(lg, GridSpec("EPSG:32631", (10, 0, 600400, 0, -10, 4999800), 10, 10)) is None
    assert alignment(lg, GridSpec("EPSG:32632", (20, 0, 600400, 0, -20, 4999800), 10, 10)) is None
    # nearest: a fractional offset is a whole-pixel translation (centre c + 0.5 + offset is in pixel
    # c + floor(0.5 + offset)), unless centres lie on source pixel edges
    assert alignment(lg, GridSpec("EPSG:32631", (20, 0, 600406, 0, -20, 4999809), 10, 10), nearest=True) == (10, 20)
    assert alignment(lg, GridSpec("EPSG:32631", (20, 0, 600414, 0, -20, 4999789), 10, 10), nearest=True) == (11, 21)
    assert alignment(lg, GridSpec("EPSG:32631", (20, 0, 600410, 0, -20, 4999800), 10, 10), nearest=True) is None
    assert alignment(lg, GridSpec("EPSG:32631", (20, 0, 600400, 0, -20, 4999800), 10, 10), nearest=True) == (10, 20)
    assert alignment(lg, GridSpec("EPSG:32631", (10, 0, 600403, 0, -10, 4999800), 10, 10), nearest=True) is None


def test_output_window_bounds_the_footprint():
    src = tile("EPSG:32631", 600000, 5000000, size=100)
    grid = GridSpec("EPSG:32631", (10, 0, 599000, 0, -10, 5000500), 300, 300)
    assert output_window(src, grid, margin=2) == (48, 98, 152, 202)
    assert output_window(src, GridSpec("EPSG:32631", (10, 0, 0, 0, -10, 100), 10, 10)) is None


@pytest.mark.parametrize(
    ("grid_crs", "res", "src_crs", "src_res"),
    [("EPSG:32631", 15.0, "EPSG:32632", 10.0), ("EPSG:32631", 7.0, "EPSG:4326", 0.0001),
     ("EPSG:4326", 0.0003, "EPSG:2154", 20.0), ("EPSG:3857", 30.0, "EPSG:32631", 10.0)],
)
def test_lattice_coords_pick_the_pixels_an_exact_transform_picks(grid_crs, res, src_crs, src_res):
    cx, cy = centre_in(grid_crs)
    grid = make_grid(grid_crs, res, (cx - 300 * res, cy - 300 * res, cx + 300 * res, cy + 300 * res))
    sx0, sy0 = centre_in(src_crs)
    lg = level_grid(tile(src_crs, sx0 - 1000 * src_res, sy0 + 1000 * src_res, res=src_res), -1)
    sx, sy = lattice_coords(grid, 37, 53, 300, 333, lg, exact_edges=True)
    cc, rr = np.meshgrid(np.arange(53, 386) + 0.5, np.arange(37, 337) + 0.5)
    ex, ey = source_pixel_coords(grid, cc, rr, lg)
    assert np.array_equal(np.floor(sx + 1e-10), np.floor(ex + 1e-10))
    assert np.array_equal(np.floor(sy + 1e-10), np.floor(ey + 1e-10))
    assert np.abs(sx - ex).max() < 1e-3 and np.abs(sy - ey).max() < 1e-3


def test_lattice_coords_do_not_depend_on_the_window():
    grid = make_grid("EPSG:32631", 13.0, (700000, 4990000, 704000, 4994000))
    cx, cy = centre_in("EPSG:32632")
    lg = level_grid(tile("EPSG:32632", cx - 5000, cy + 5000), -1)
    whole_x, whole_y = chunk_coords(grid, 0, 0, 200, 200, lg, exact_edges=False)
    part_x, part_y = chunk_coords(grid, 37, 91, 50, 61, lg, exact_edges=False)
    assert np.array_equal(part_x, whole_x[37:87, 91:152]) and np.array_equal(part_y, whole_y[37:87, 91:152])


def test_same_crs_coordinates_are_affine():
    grid = GridSpec("EPSG:32631", tuple(Affine(20, 0, 600000, 0, -20, 5000000))[:6], 4, 3)
    lg = level_grid(tile("EPSG:32631", 599990, 5000010), -1)
    sx, sy = chunk_coords(grid, 0, 0, 3, 4, lg)
    assert sx[0].tolist() == [2.0, 4.0, 6.0, 8.0] and sy[:, 0].tolist() == [2.0, 4.0, 6.0]


def test_output_window_in_a_lonlat_grid_past_180():
    """A UTM 1N tile east of the antimeridian, in a lon/lat grid from 179.4° to 180.6°: its columns are
    those of its longitudes + 360°."""
    x0, y0 = Transformer.from_crs("EPSG:4326", "EPSG:32601", always_xy=True).transform(-179.7, 52.2)
    src = tile("EPSG:32601", x0, y0, res=100.0, size=150)  # 15 km, about 0.22° × 0.14°
    grid = make_grid("EPSG:4326", 0.01, (179.4, 51.7, 180.6, 52.4))
    lon, lat = Transformer.from_crs("EPSG:32601", "EPSG:4326", always_xy=True).transform(
        [x0, x0 + 15000, x0, x0 + 15000], [y0, y0, y0 - 15000, y0 - 15000])
    cols = (np.array(lon) + 360.0 - 179.4) / 0.01
    rows = (52.4 - np.array(lat)) / 0.01
    r0, c0, r1, c1 = output_window(src, grid, margin=0)
    assert c0 <= cols.min() and cols.max() <= c1 and c0 > 60 and c1 - c0 < 30
    assert r0 <= rows.min() and rows.max() <= r1


def test_output_window_of_a_source_outside_the_grid_projection_is_the_whole_grid():
    world = Source("/world.tif", "", (1,), FMT, 0.0, 1.0, 1.0, "EPSG:4326", (1.0, 0.0, -180.0, 0.0, -1.0, 90.0),
                   360, 180)
    ortho = crs_string("+proj=ortho +lat_0=90 +lon_0=0 +datum=WGS84")  # the northern hemisphere only
    grid = GridSpec(ortho, (1000.0, 0.0, -50000.0, 0.0, -1000.0, 50000.0), 100, 100)
    assert output_window(world, grid) == (0, 0, 100, 100)
