"""Images with no valid pixel: which they are, and dropping them.

GEOCUBE semantics drop an image that has no valid pixel in the output. Planning only knows which
images some source *touches*; whether one of their pixels is valid (not nodata) is known once the
values are computed. Timeseries are small and computed anyway: they are dropped there. Cubes stay lazy
unless asked (``get_cube(..., drop_empty=True)``), since the test needs every pixel of every image.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr


def has_valid_pixel(data: xr.DataArray, nodata: float | None) -> xr.DataArray:
    """Per image (``time``), whether any value of ``data`` is valid: not NaN and not ``nodata``.

    Lazy when ``data`` is: one small reduction per chunk, so computing it holds one chunk at a time.
    """
    valid = data.notnull()
    if nodata is not None and not math.isnan(nodata):
        valid = valid & (data != nodata)
    return valid.any(dim=[d for d in data.dims if d != "time"])


def drop_empty_images(data: xr.DataArray, nodata: float | None) -> xr.DataArray:
    """``data`` without the images that have no valid value (computes :func:`has_valid_pixel`).

    A lazy ``data`` stays lazy: the images kept are read again when it is computed.
    """
    keep = np.asarray(has_valid_pixel(data, nodata).values, dtype=bool)
    if keep.all():
        return data
    return data.isel(time=np.flatnonzero(keep))
