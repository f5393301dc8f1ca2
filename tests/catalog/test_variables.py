"""Variables: data formats, bands, palettes, updates (never bands/dformat) and deletion rules."""

from __future__ import annotations

import math

import pytest

import geocube_dask as gd
from geocube_dask.entities import DFormat

from .helpers import prepared, table_counts


def test_create_get_list(gc) -> None:
    var = gc.create_variable("ndvi", ("float32", "nan", -1, 1), ["ndvi"], unit="", description="NDVI",
                             resampling="bilinear")
    assert var.dformat.dtype == "float32" and math.isnan(var.dformat.nodata)
    got = gc.get_variable("ndvi")
    assert got.id == var.id and math.isnan(got.dformat.nodata) and got.bands == ("ndvi",)
    assert gc.get_variable(var.id).name == "ndvi" and gc.get_variable(var).name == "ndvi"
    gc.create_variable("refl", {"dtype": "uint16", "nodata": 0, "min": 0, "max": 10000}, ["b", "g", "r"])
    gc.create_variable("Other", DFormat("int16", -1.0, 0.0, 100.0), [""])
    assert [v.name for v in gc.list_variables()] == ["Other", "ndvi", "refl"]
    assert [v.name for v in gc.list_variables(name="o*", case_insensitive=True)] == ["Other"]
    assert [v.name for v in gc.list_variables(limit=1, page=1)] == ["ndvi"]


def test_nodata_nan_survives(gc) -> None:
    gc.create_variable("v", ("float64", float("nan"), 0, 1), [""])
    assert math.isnan(gc.list_variables()[0].dformat.nodata)


INVALID_DFORMATS = [
    (("uint8", 0, 10, 10), "min"),  # min >= max
    (("uint8", 0, 20, 10), "min"),
    (("uint8", 0, 0, 256), "outside"),  # max outside dtype
    (("int8", 200, 0, 100), "outside"),  # nodata outside dtype
    (("uint8", "nan", 0, 100), "NaN"),  # NaN in an integer dtype
    (("complex64", 0, 0, 1), "dtype"),
    (("float32", None, 0, 1), "nodata"),  # a variable needs a nodata
    (("uint8", 0, 0), "dformat"),
    ("uint8", "dformat"),
    (("uint8", "zero", 0, 1), "number"),
]
INVALID_BANDS = [([], "at least one"), (["a", ""], "name"), (["a", "a"], "distinct"), ("red", "list"), ([1], "strings")]


def test_invalid_dformats_and_bands(gc) -> None:
    for dformat, error in INVALID_DFORMATS:
        with pytest.raises(gd.InvalidDFormat, match=error):
            gc.create_variable("v", dformat, [""])
    for bands, error in INVALID_BANDS:
        with pytest.raises(gd.InvalidArgument, match=error):
            gc.create_variable("v", ("uint8", 0, 0, 255), bands)
    assert gc.list_variables() == []


def test_other_invalid_arguments(gc) -> None:
    fmt = ("uint8", 0, 0, 255)
    with pytest.raises(gd.InvalidName):
        gc.create_variable("bad name", fmt, [""])
    with pytest.raises(gd.InvalidArgument, match="resampling"):
        gc.create_variable("v", fmt, [""], resampling="magic")
    with pytest.raises(gd.NotFound, match="palette"):
        gc.create_variable("v", fmt, [""], palette="missing")
    gc.create_palette("p", [(0, 0, 0, 0), (1, 1, 1, 1)])
    with pytest.raises(gd.InvalidArgument, match="one-band"):
        gc.create_variable("v", fmt, ["a", "b"], palette="p")
    assert gc.create_variable("v", fmt, [""], resampling="nearest").resampling == "near"
    with pytest.raises(gd.AlreadyExists):
        gc.create_variable("v", fmt, [""])


def test_update(gc) -> None:
    gc.create_palette("p", [(0, 0, 0, 0), (1, 1, 1, 1)])
    var = gc.create_variable("v", ("uint8", 0, 0, 255), [""])
    var2 = gc.update_variable(var, name="v2", unit="m", description="d", palette="p", resampling="cubic")
    assert (var2.id, var2.name, var2.unit, var2.description, var2.palette, var2.resampling) == (
        var.id, "v2", "m", "d", "p", "cubic")
    assert var2.dformat == var.dformat and var2.bands == var.bands
    assert gc.update_variable("v2", palette="").palette is None
    assert gc.update_variable("v2") == gc.get_variable("v2")


def test_bands_and_dformat_never_change(gc) -> None:
    var = gc.create_variable("v", ("uint8", 0, 0, 255), [""])
    for change in ({"bands": ["x"]}, {"dformat": ("uint16", 0, 0, 1)}, {"bands": ["x"], "unit": "m"}):
        with pytest.raises(gd.InvalidArgument, match="never change"):
            gc.update_variable(var, **change)
    assert gc.get_variable(var.id) == var


def test_update_errors_change_nothing(gc) -> None:
    gc.create_variable("a", ("uint8", 0, 0, 255), [""])
    b = gc.create_variable("b", ("uint8", 0, 0, 255), ["x", "y"])
    gc.create_palette("p", [(0, 0, 0, 0), (1, 1, 1, 1)])
    before = table_counts(gc)
    for kwargs, error in [
        ({"name": "a"}, gd.AlreadyExists),
        ({"name": "bad name"}, gd.InvalidName),
        ({"palette": "p"}, gd.InvalidArgument),
        ({"palette": "missing"}, gd.InvalidArgument),
        ({"resampling": "magic"}, gd.InvalidArgument),
        ({"unit": 3}, gd.InvalidArgument),
        ({"colour": "red"}, gd.InvalidArgument),
    ]:
        with pytest.raises(error):
            gc.update_variable(b, **kwargs)
    assert table_counts(gc) == before and gc.get_variable("b") == b
    with pytest.raises(gd.NotFound):
        gc.update_variable("missing", unit="m")


def test_delete_variable_deletes_instances_unless_used(gc, record) -> None:
    var = gc.create_variable("v", ("uint16", 0, 0, 10000), [""])
    used = gc.instantiate(var, "used")
    gc.instantiate(var, "spare")
    gc.add_datasets([(record, used, prepared())])
    before = table_counts(gc)
    with pytest.raises(gd.DependencyError, match="used"):
        gc.delete_variable(var)
    assert table_counts(gc) == before
    gc.delete_datasets([d.id for d in gc.list_datasets()])
    gc.delete_variable(var.id)
    assert gc.list_variables() == [] and gc.list_instances() == []
    with pytest.raises(gd.NotFound):
        gc.delete_variable("v")


def test_unknown_variables(gc) -> None:
    for ref in ("missing", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(gd.NotFound):
            gc.get_variable(ref)
    with pytest.raises(gd.InvalidArgument):
        gc.get_variable(3)
