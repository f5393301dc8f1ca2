"""Computing a lazy cube into memory without dask's final concatenation.

``cube.compute()`` keeps every computed chunk until dask concatenates them into the result, so a cube
briefly needs twice its size. :func:`load` allocates the result once and lets every task write its
chunk straight into it (``dask.array.store``): the same values, about half the peak memory, and no
single-threaded copy at the end. On a ``distributed`` client the chunks are computed in other
processes and have to travel back anyway: there :func:`load` is ``cube.compute()``.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr


def _on_distributed(scheduler: Any) -> bool:
    """Whether computing with ``scheduler`` (None: the active one) runs on a distributed cluster."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return False
    if isinstance(scheduler, Client):
        return True
    get = dask.base.get_scheduler(scheduler=scheduler)
    return isinstance(getattr(get, "__self__", None), Client)


def load(cube: xr.DataArray, **compute_kwargs: Any) -> xr.DataArray:
    """The cube computed into one numpy array, with its coordinates and attributes.

    ``compute_kwargs`` go to dask (e.g. ``scheduler="threads"``, ``num_workers=4``).
    """
    if not isinstance(cube.data, da.Array):
        return cube
    if _on_distributed(compute_kwargs.get("scheduler")):
        return cube.compute(**compute_kwargs)
    out = np.empty(cube.shape, dtype=cube.dtype)
    da.store(cube.data, out, lock=False, compute=True, **compute_kwargs)
    return cube.copy(data=out)
