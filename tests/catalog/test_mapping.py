"""update_dataset_mapping: the rules indexing applies, all or nothing, and cubes that follow the new mapping."""

from __future__ import annotations

import math

import dask
import numpy as np
import pytest
import rasterio
from rasters import write_scene
from reference import RefGrid, RefSource, reference_image

import geocube_dask as gd
from geocube_dask.catalog.ingest.requests import NewRecord
from geocube_dask.entities import DFormat

from .helpers import prepared, table_counts


def _mapping(ds) -> tuple:
    return ds.dformat, ds.real_min, ds.real_max, ds.exponent


def test_cubes_follow_the_new_mapping(gc, tmp_path) -> None:
    """A uint16 file indexed with the default (identity) mapping, then re-mapped to ((v - 0)/10000)^2 in
    0..1 with a dformat naming float64 (the file's uint16 wins): the cube before and after both equal the
    plain reference computed from the file with that dataset's mapping."""
    path = str(write_scene(tmp_path / "s.tif", "utm31", bands=2, seed=3))
    var = gc.create_variable("refl", ("float32", "nan", 0.0, 1.0), ["b1", "b2"])
    inst = gc.instantiate(var, "m")
    ds = gc.index_dataset(path, NewRecord("s", "2024-01-01"), inst)
    assert ds.dformat == DFormat("uint16", 0.0, 0.0, 1.0)  # the variable's range fits uint16: identity
    with rasterio.open(path) as src:
        grid = RefGrid(src.crs.to_string(), src.transform, src.width, src.height)

    def cube() -> np.ndarray:
        c = gc.get_cube(inst, crs=grid.crs, transform=grid.transform, shape=(grid.height, grid.width))
        with dask.config.set(scheduler="threads", num_workers=2):
            return c.compute().values[0]

    before = cube()
    ref = RefSource(path, (1, 2), 0.0, 1.0, 0.0, 1.0, 1.0, 0.0)
    assert np.array_equal(before, reference_image([ref], grid, "float32", math.nan, "near", 2), equal_nan=True)

    [updated] = gc.update_dataset_mapping([ds], dformat=("float64", 0, 0, 10000), real_min=0, real_max=1, exponent=2)
    assert _mapping(updated) == (DFormat("uint16", 0.0, 0.0, 10000.0), 0.0, 1.0, 2.0)
    assert gc.get_dataset(ds.id) == updated
    after = cube()
    ref = RefSource(path, (1, 2), 0.0, 10000.0, 0.0, 1.0, 2.0, 0.0)
    assert np.array_equal(after, reference_image([ref], grid, "float32", math.nan, "near", 2), equal_nan=True)
    with rasterio.open(path) as src:  # and by the formula itself, at a valid pixel
        stored = src.read(1).astype("float64")
    r, c = np.argwhere(stored > 0)[0]
    assert after[0, r, c] == np.float32((stored[r, c] / 10000) ** 2) != before[0, r, c]


@pytest.fixture
def two(gc, variable, instance, make_record):
    """Two datasets of the uint16 0..10000 variable (one per record) and one of a 0..1 float variable."""
    r1, r2 = make_record(), make_record()
    other = gc.instantiate(gc.create_variable("unit", ("float32", "nan", 0, 1), ["x"]), "m")
    d1, d2 = gc.add_datasets([(r1, instance, prepared("/a.tif", real_max=10000.0)),
                              (r2, instance, prepared("/b.tif", real_max=10000.0))])
    [d3] = gc.add_datasets([(r1, other, prepared("/c.tif"))])
    return d1, d2, d3, r1, r2


def test_partial_changes_and_selection_by_instance(gc, instance, two) -> None:
    d1, d2, d3, r1, r2 = two
    [u] = gc.update_dataset_mapping(instance=instance, records=[r2], exponent=0.5)
    assert u.id == d2.id and _mapping(u) == (d2.dformat, d2.real_min, d2.real_max, 0.5)
    assert gc.get_dataset(d1.id) == d1 and gc.get_dataset(d3.id) == d3
    out = gc.update_dataset_mapping(instance=instance.id, real_max=5000)
    assert [d.id for d in out] == [d1.id, d2.id] and [d.real_max for d in out] == [5000.0, 5000.0]
    assert [d.exponent for d in out] == [1.0, 0.5]  # what was not asked for is kept per dataset
    nan = gc.update_dataset_mapping([d1.id], dformat=("uint16", None, 1, 9999))
    assert nan[0].dformat == DFormat("uint16", None, 1.0, 9999.0)
    [f] = gc.update_dataset_mapping([d3], dformat=("uint16", 65535, 0, 1000))  # a float nodata spelled in uint16
    assert f.dformat == DFormat("uint16", 65535.0, 0.0, 1000.0)
    assert gc.update_dataset_mapping(instance=instance, records=[], exponent=3) == []  # selects nothing


def test_nan_nodata_is_stored(gc, variable, instance, make_record) -> None:
    [d] = gc.add_datasets([(make_record(), instance, prepared(dformat=DFormat("float32", 0.0, 0.0, 1.0)))])
    [u] = gc.update_dataset_mapping([d], dformat=("float32", "nan", -1, 1))
    assert math.isnan(gc.get_dataset(d.id).dformat.nodata) and u == gc.get_dataset(d.id)


BAD = [
    ({"real_min": 20000, "real_max": 30000}, gd.IncompatibleDataset, "does not intersect"),
    ({"real_min": 5, "real_max": 5}, gd.InvalidArgument, "must differ"),
    ({"real_min": math.inf}, gd.InvalidArgument, "finite"),
    ({"exponent": 0}, gd.InvalidArgument, "exponent must be > 0"),
    ({"exponent": -1.5}, gd.InvalidArgument, "exponent must be > 0"),
    ({"dformat": ("uint16", 0, 100, 10)}, gd.InvalidDFormat, "smaller than max"),
    ({"dformat": ("float32", "nan", 0, 1)}, gd.IncompatibleDataset, "file's dtype wins"),
    ({"dformat": ("uint16", 70000, 0, 1)}, gd.InvalidDFormat, "outside the range"),
    ({}, gd.InvalidArgument, "nothing to change"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD)
def test_invalid_changes_change_nothing(gc, two, kwargs, error, message) -> None:
    d1, d2, *_ = two
    before = table_counts(gc), [gc.get_dataset(d.id) for d in two[:3]]
    with pytest.raises(error, match=message):
        gc.update_dataset_mapping([d1, d2], **kwargs)
    assert (table_counts(gc), [gc.get_dataset(d.id) for d in two[:3]]) == before


def test_all_or_nothing_across_variables(gc, two) -> None:
    """real_max 5000 suits the 0..10000 variable's datasets but not the 0..1 one's: nothing changes."""
    d1, d2, d3, *_ = two
    with pytest.raises(gd.IncompatibleDataset, match=f"'unit'.*dataset {d3.id}"):
        gc.update_dataset_mapping([d1, d2, d3], real_min=2000, real_max=5000)
    assert [gc.get_dataset(d.id) for d in (d1, d2, d3)] == [d1, d2, d3]


def test_bad_selections(gc, instance, two) -> None:
    d1, *_ = two
    with pytest.raises(gd.NotFound, match="nothing was changed"):
        gc.update_dataset_mapping([d1.id, 999_999], exponent=2)
    with pytest.raises(gd.NotFound, match="instance"):
        gc.update_dataset_mapping(instance="00000000-0000-0000-0000-000000000000", exponent=2)
    for kwargs in ({}, {"datasets": [d1], "instance": instance}, {"datasets": [d1], "records": [two[3]]}):
        with pytest.raises(gd.InvalidArgument):
            gc.update_dataset_mapping(exponent=2, **kwargs)
    with pytest.raises(gd.InvalidArgument):
        gc.update_dataset_mapping(d1.id, exponent=2)
    assert gc.get_dataset(d1.id) == d1
