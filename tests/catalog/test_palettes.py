"""Palettes: creation from tuples or points, replacement, listing and deletion rules."""

from __future__ import annotations

import pytest

import geocube_dask as gd
from geocube_dask.entities import PalettePoint

from .helpers import table_counts

GREY = [(0, 0, 0, 0), (1, 255, 255, 255)]


def test_create_get_list(gc) -> None:
    pal = gc.create_palette("grey", GREY)
    assert pal.points == (PalettePoint(0, 0, 0, 0, 255), PalettePoint(1, 255, 255, 255, 255))
    assert gc.get_palette("grey") == pal
    gc.create_palette("rdylgn", [PalettePoint(0, 255, 0, 0), (0.5, 255, 255, 0, 128), (1, 0, 255, 0)])
    assert [p.name for p in gc.list_palettes()] == ["grey", "rdylgn"]
    assert [p.name for p in gc.list_palettes("rd*")] == ["rdylgn"]
    assert gc.get_palette("rdylgn").points[1].a == 128


def test_replace(gc) -> None:
    gc.create_palette("p", GREY)
    with pytest.raises(gd.AlreadyExists, match="replace=True"):
        gc.create_palette("p", [(0, 1, 2, 3), (1, 4, 5, 6)])
    new = gc.create_palette("p", [(0, 1, 2, 3), (1, 4, 5, 6)], replace=True)
    assert gc.get_palette("p") == new


INVALID = [
    [(0, 0, 0, 0)],  # one point
    [(0.1, 0, 0, 0), (1, 0, 0, 0)],  # not starting at 0
    [(0, 0, 0, 0), (0.9, 0, 0, 0)],  # not ending at 1
    [(0, 0, 0, 0), (0.5, 0, 0, 0), (0.5, 0, 0, 0), (1, 0, 0, 0)],  # not increasing
    [(0, 0, 0, 0), (1, 256, 0, 0)],  # colour out of range
    [(0, 0, 0, 0), (1, 0.5, 0, 0)],  # colour not an integer
    [(0, 0, 0), (1, 0, 0, 0)],  # too short
    [(0, 0, 0, 0), ("1", 0, 0, 0)],  # value not a number
    "0,0,0,0",
]


def test_invalid_palettes(gc) -> None:
    for points in INVALID:
        with pytest.raises(gd.InvalidArgument):
            gc.create_palette("bad", points)
    with pytest.raises(gd.InvalidName):
        gc.create_palette("bad name", [(0, 0, 0, 0), (1, 0, 0, 0)])
    assert gc.list_palettes() == []


def test_delete(gc) -> None:
    gc.create_palette("p", GREY)
    var = gc.create_variable("v", ("uint8", 0, 0, 255), [""], palette="p")
    before = table_counts(gc)
    with pytest.raises(gd.DependencyError, match="variable.s. v"):
        gc.delete_palette("p")
    assert table_counts(gc) == before
    gc.update_variable(var, palette="")
    gc.delete_palette("p")
    with pytest.raises(gd.NotFound):
        gc.get_palette("p")
    with pytest.raises(gd.NotFound):
        gc.delete_palette("p")
