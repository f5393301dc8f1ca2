"""Which images have a valid pixel, and dropping the others (integer nodata, NaN nodata, no nodata)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from geocube_dask.graph.empty import drop_empty_images, has_valid_pixel


def cube(values: np.ndarray, chunks: bool = False) -> xr.DataArray:
    data = da.from_array(values, chunks=(1, 1, 2, 2)) if chunks else values
    return xr.DataArray(data, dims=("time", "band", "y", "x"), coords={"time": np.arange(values.shape[0])})


def test_images_without_a_valid_value_are_dropped():
    v = np.zeros((3, 2, 4, 4), dtype="uint16")
    v[0, 1, 3, 3] = 7  # one valid value, in the last band and pixel
    v[2, 0, 0, 0] = 1
    lazy = cube(v, chunks=True)
    assert has_valid_pixel(lazy, 0).values.tolist() == [True, False, True]
    out = drop_empty_images(lazy, 0)
    assert out.time.values.tolist() == [0, 2] and isinstance(out.data, da.Array)
    assert np.array_equal(out.values, v[[0, 2]])
    assert drop_empty_images(cube(v), None).time.values.tolist() == [0, 1, 2]  # no nodata: all valid


def test_nan_is_never_valid():
    v = np.full((3, 1, 2, 2), np.nan, dtype="float32")
    v[1, 0, 0, 1] = 0.5
    v[2, 0, 1, 1] = -9999.0
    assert has_valid_pixel(cube(v), float("nan")).values.tolist() == [False, True, True]
    assert has_valid_pixel(cube(v), -9999.0).values.tolist() == [False, True, False]
    assert drop_empty_images(cube(v, chunks=True), float("nan")).time.values.tolist() == [1, 2]
