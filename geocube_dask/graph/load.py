"""Computing a lazy cube into memory without dask's final concatenation.

``cube.compute()`` keeps every computed chunk until dask concatenates them into the result, so a cube
briefly needs twice its size. :func:`load` allocates the result once and lets every task write its
chunk straight into it (``dask.array.store``): the same values, about half the peak memory, and no
single-threaded copy at the end. With the multiprocessing scheduler or a ``distributed`` client the
chunks are computed in other processes and have to travel back anyway: there :func:`load` is
``cube.compute()``.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import xarray as xr


def _writes_in_this_process(scheduler: Any) -> bool:
    """Whether computing with ``scheduler`` (None: the active one) runs its tasks in this process, where
    they can write into an array we allocate: dask's threaded or synchronous scheduler. Processes and
    distributed clusters compute elsewhere and send chunks back."""
    import dask.base
    import dask.local
    import dask.threaded

    get = dask.base.get_scheduler(scheduler=scheduler)  # a Client gives its .get
    return get is None or get in (dask.threaded.get, dask.local.get_sync)


def load(cube: xr.DataArray, **compute_kwargs: Any) -> xr.DataArray:
    """The cube computed into one numpy array, with its coordinates and attributes.

    ``compute_kwargs`` go to dask (e.g. ``scheduler="threads"``, ``num_workers=4``).
    """
    if not isinstance(cube.data, da.Array):
        return cube
    if not _writes_in_this_process(compute_kwargs.get("scheduler")):
        return cube.compute(**compute_kwargs)
    out = np.empty(cube.shape, dtype=cube.dtype)
    da.store(cube.data, out, lock=False, compute=True, **compute_kwargs)
    return cube.copy(data=out)
