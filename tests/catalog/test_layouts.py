"""Layouts (validation, grids they name) and stored grids (cells in their CRS and in EPSG:4326)."""

from __future__ import annotations

import pytest
from shapely.geometry import Point, box

import geocube_dask as gd
from geocube_dask.entities import Cell, Layout

from .helpers import table_counts

UTM_CELLS = [
    ("31TCJ", "EPSG:32631", box(300000, 4790200, 409800, 4900000)),
    ("31TDJ", "EPSG:32631", box(399960, 4790200, 509760, 4900000).wkt),
]


def test_create_get_list_delete_layout(gc) -> None:
    layout = gc.create_layout("utm-20m", grid="regular", crs="EPSG:32631", resolution=20, cell_size=4096,
                              block_size=256, max_records=1000, pattern="mucog")
    assert layout == Layout("utm-20m", "regular", "EPSG:32631", 20.0, 4096, (0.0, 0.0), 256, 1000, -1,
                            "Z=0>T>R>B;Z=1:>R>T>B", "zstd")
    assert gc.get_layout("utm-20m") == layout
    gc.create_layout("one", grid="single", compression="LZW", overview_min_size=0)
    assert [x.name for x in gc.list_layouts()] == ["one", "utm-20m"]
    assert [x.name for x in gc.list_layouts("utm*")] == ["utm-20m"]
    assert gc.get_layout("one").compression == "lzw"
    with pytest.raises(gd.AlreadyExists):
        gc.create_layout("one", grid="single")
    gc.delete_layout("one")
    with pytest.raises(gd.NotFound):
        gc.get_layout("one")
    with pytest.raises(gd.NotFound):
        gc.delete_layout("one")


def test_invalid_layouts_change_nothing(gc) -> None:
    before = table_counts(gc)
    ok = {"crs": "EPSG:32631", "resolution": 20}
    cases = [
        ({"grid": "regular"}, "crs and a resolution"),
        ({"grid": "regular", "crs": "EPSG:32631"}, "crs and a resolution"),
        ({**ok, "resolution": 0}, "resolution"),
        ({**ok, "resolution": -5}, "resolution"),
        ({**ok, "crs": "EPSG:99999999"}, "invalid crs"),
        ({**ok, "block_size": 100}, "power of 2"),
        ({**ok, "block_size": 8}, "power of 2"),
        ({**ok, "block_size": 256.0}, "integer"),
        ({**ok, "cell_size": 1000}, "multiple of block_size"),
        ({**ok, "cell_size": 128}, "multiple of block_size"),
        ({**ok, "max_records": 0}, "max_records"),
        ({**ok, "overview_min_size": -2}, "overview_min_size"),
        ({**ok, "pattern": "R>B>T"}, "interlacing pattern"),
        ({**ok, "compression": "gzip"}, "compression"),
        ({**ok, "compression": "jpeg"}, "lossless codec"),
        ({**ok, "origin": (0, "x")}, "origin"),
        ({**ok, "origin": 0}, "origin"),
        ({"grid": "no-such-grid"}, "no grid"),
    ]
    for kwargs, message in cases:
        with pytest.raises(gd.GeocubeError, match=message):
            gc.create_layout("bad", **kwargs)
    with pytest.raises(gd.InvalidName):
        gc.create_layout("bad name", grid="single")
    assert table_counts(gc) == before


def test_grids(gc) -> None:
    grid = gc.create_grid("s2tiles", UTM_CELLS, description="two MGRS tiles")
    assert [c.id for c in grid.cells] == ["31TCJ", "31TDJ"] and grid.cells[0].crs == "EPSG:32631"
    assert gc.get_grid("s2tiles") == grid
    assert gc.list_grids() == [gd.Grid("s2tiles", "two MGRS tiles")]
    # Toulouse (1.44E, 43.6N) is in 31TCJ; 2.0E is in the overlap of both tiles
    assert [c.id for c in gc.grid_cells("s2tiles", aoi=Point(1.44, 43.6))] == ["31TCJ"]
    assert [c.id for c in gc.grid_cells("s2tiles", aoi=Point(1.8, 43.6))] == ["31TCJ", "31TDJ"]
    assert gc.grid_cells("s2tiles", aoi=Point(20, 43.6)) == []
    assert len(gc.grid_cells("s2tiles")) == 2
    assert gc.grid_cells("s2tiles")[1] == Cell("31TDJ", "EPSG:32631", box(399960, 4790200, 509760, 4900000).wkt)


def test_layout_on_a_stored_grid(gc) -> None:
    gc.create_grid("g", UTM_CELLS)
    layout = gc.create_layout("on-g", grid="g", resolution=10)
    assert gc.get_layout("on-g").grid == "g" == layout.grid
    with pytest.raises(gd.DependencyError, match="on-g"):
        gc.delete_grid("g")
    gc.delete_layout("on-g")
    gc.delete_grid("g")
    with pytest.raises(gd.NotFound):
        gc.get_grid("g")
    with pytest.raises(gd.NotFound):
        gc.grid_cells("g")


def test_invalid_grids_change_nothing(gc) -> None:
    gc.create_grid("g", UTM_CELLS)
    before = table_counts(gc)
    bowtie = "POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))"
    cases = [
        (("g", UTM_CELLS), gd.AlreadyExists),
        (("regular", UTM_CELLS), gd.InvalidArgument),
        (("bad name", UTM_CELLS), gd.InvalidName),
        (("h", []), gd.InvalidArgument),
        (("h", [UTM_CELLS[0], UTM_CELLS[0]]), gd.InvalidArgument),
        (("h", [("c", "EPSG:32631", bowtie)]), gd.InvalidGeometry),
        (("h", [("c", "EPSG:32631", "POINT (0 0)")]), gd.InvalidGeometry),
        (("h", [("c", "not a crs", box(0, 0, 1, 1))]), gd.InvalidArgument),
        (("h", [("c", "EPSG:4326", box(170, 0, 190, 1))]), gd.InvalidGeometry),
        (("h", [("bad id", "EPSG:4326", box(0, 0, 1, 1))]), gd.InvalidName),
        (("h", [("c", "EPSG:4326")]), gd.InvalidArgument),
    ]
    for args, error in cases:
        with pytest.raises(error):
            gc.create_grid(*args)
    assert table_counts(gc) == before


def test_names_that_are_not_strings_are_refused(gc, instance) -> None:
    """Before any SQL runs (a mapping once reached the database driver, and an HTTP caller got a 500)."""
    gc.create_grid("g", UTM_CELLS)
    gc.create_layout("L", grid="g", resolution=10)
    calls = [
        lambda bad: gc.get_layout(bad), lambda bad: gc.delete_layout(bad), lambda bad: gc.get_grid(bad),
        lambda bad: gc.delete_grid(bad), lambda bad: gc.grid_cells(bad), lambda bad: gc.tile_aoi(box(0, 0, 1, 1), bad),
        lambda bad: gc.layout_files(bad, instance),
    ]
    for call in calls:
        for bad in ({}, ["L"], 3):
            with pytest.raises(gd.InvalidArgument):
                call(bad)
    for cells in ("c1", [{}], [1], 5):  # a string is not a list of cell ids (it was read as its letters)
        with pytest.raises(gd.InvalidArgument, match="cell ids"):
            gc.layout_files("L", instance, cells=cells)
    assert gc.layout_files("L", instance, cells=iter(["c1"])) == []
    assert gc.get_layout("L").grid == "g" and gc.get_grid("g").name == "g"
