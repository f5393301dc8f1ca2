"""Computing a lazy cube into memory without dask's final concatenation.

``cube.compute()`` keeps every computed chunk until dask concatenates them into the result, so a cube
briefly needs twice its size. :func:`load` allocates the result once and lets every task write its
chunk straight into it: the same values, about half the peak memory, and no single-threaded copy at
the end. A cube as ``get_cube`` returns it (its graph is the engine's chunk tasks alone) is computed
in place: each task resamples into its block of the result, with no chunk array of its own (freshly
allocated memory is costly to touch: a chunk's pages would be touched twice). Any other lazy array
(a selection, arithmetic) goes through ``dask.array.store``. With the multiprocessing scheduler or a
``distributed`` client the chunks are computed in other processes and have to travel back anyway:
there :func:`load` is ``cube.compute()``.

The result comes from ``np.zeros``: the system hands out zeroed pages on first touch, so when the
nodata is zero bytes (0 in any type) the chunks skip their nodata fill and the pages no source paints
(outside an image's footprint) are never written, nor resident.

In place, the chunks of one image are computed by one task, in row-major order, when there are enough
images to keep every thread busy (:func:`_groups`): a thread then opens an image's files once, and a
source block shared by neighbouring chunks comes from GDAL's block cache of that thread's dataset
instead of being decoded again by another thread; each file is closed once the last chunk reading it has
painted it. The tasks take the costliest images first (:func:`_cost`), so that no thread is left with a
large image while the others idle.
"""

from __future__ import annotations

import collections
import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.highlevelgraph import HighLevelGraph

from .chunk import SourceRead, compute_chunk, zero_nodata
from .cube import ChunkJob, FileCloser, nodata_block, run_chunk_job


def _local_get(scheduler: Any) -> Callable[..., Any] | None:
    """The scheduler ``scheduler`` (None: the active one) names when it runs its tasks in this process,
    where they can write into an array we allocate: dask's threaded or synchronous scheduler; None for
    processes and distributed clusters, which compute elsewhere and send chunks back.

    While ``distributed`` is not imported no Client can exist: a scheduler named by a string (or none)
    is then resolved without asking dask, whose answer imports ``distributed`` (a fifth of a second
    on a process's first cube)."""
    import dask.base
    import dask.config
    import dask.local
    import dask.threaded

    local = (dask.threaded.get, dask.local.get_sync)
    name = scheduler if scheduler is not None else dask.config.get("scheduler", None)
    if "distributed" not in sys.modules and (name is None or str(name).lower() in dask.base.named_schedulers):
        get = dask.threaded.get if name is None else dask.base.named_schedulers[str(name).lower()]
    else:
        get = dask.base.get_scheduler(scheduler=scheduler) or dask.threaded.get  # a Client gives its .get
    return get if get in local else None


def load(cube: xr.DataArray, **compute_kwargs: Any) -> xr.DataArray:
    """The cube computed into one numpy array, with its coordinates and attributes.

    ``compute_kwargs`` go to dask (e.g. ``scheduler="threads"``, ``num_workers=4``).
    """
    if not isinstance(cube.data, da.Array):
        return cube
    get = _local_get(compute_kwargs.get("scheduler"))
    if get is None:
        return cube.compute(**compute_kwargs)
    out = np.zeros(cube.shape, dtype=cube.dtype)  # zeroed pages on first touch: see _compute_into
    tasks = _in_place_tasks(cube.data, out, _workers(compute_kwargs))
    if tasks is None:
        da.store(cube.data, out, lock=False, compute=True, **compute_kwargs)
    else:
        get(tasks, list(tasks), **{k: v for k, v in compute_kwargs.items() if k != "scheduler"})
    return cube.copy(data=out)


# one block's work: a function, called with its argument and a callback for each source painted
Step = tuple[Callable[[Any, Any], None], Any]
# a task per image when there are at least this many images per thread (else some threads would idle)
IMAGES_PER_WORKER = 4


def _workers(compute_kwargs: dict[str, Any]) -> int:
    """The threads the computation will run on (dask's threaded scheduler's own rule)."""
    import dask.config

    return int(compute_kwargs.get("num_workers") or dask.config.get("num_workers", None) or os.cpu_count() or 1)


def _in_place_tasks(data: da.Array, out: np.ndarray, workers: int = 1) -> dict[Any, Any] | None:
    """Tasks computing the blocks of ``data`` straight into their place in ``out``, when ``data`` is a cube
    as built by :func:`~geocube_dask.graph.cube.cube_from_plan` (one graph layer of chunk tasks and
    nodata blocks), grouped as :func:`_groups` says for ``workers`` threads; None for any other array."""
    steps = _block_steps(data, out)
    if steps is None:
        return None
    groups = _groups(steps, workers)
    by_image = len(groups) < len(steps) or all(len(data.chunks[i]) == 1 for i in (2, 3))
    # every task computes the costliest group not yet taken, whatever order the scheduler runs them in:
    # a costly image left for last would keep one thread busy while the others idle
    queue = collections.deque(sorted((group for _, group in groups), key=_cost, reverse=True))
    take = functools.partial(_run_next, queue, by_image)
    return {("geocube-load", *key): (take,) for key, _ in groups}


def _groups(steps: dict[tuple[int, ...], Step], workers: int
            ) -> list[tuple[tuple[int, ...], list[Step]]]:
    """The blocks' steps as tasks: one per image (its blocks in row-major order) when there are at least
    :data:`IMAGES_PER_WORKER` images per thread, else one per block."""
    images = {idx[0] for idx in steps}
    if len(images) < IMAGES_PER_WORKER * workers:
        return [(idx, [step]) for idx, step in steps.items()]
    groups: dict[tuple[int, ...], list[Step]] = {}
    for idx in sorted(steps):
        groups.setdefault((idx[0],), []).append(steps[idx])
    return list(groups.items())


# the cost of painting an output pixel by resampling, relative to copying it from an aligned source
RESAMPLED_COST = 3


def _cost(steps: list[Step]) -> int:
    """The work of a task's steps, roughly: the output pixels each source paints, resampled ones weighing
    :data:`RESAMPLED_COST`; blocks no source touches cost nothing."""
    total = 0
    for _, job in steps:
        if not isinstance(job, ChunkJob):
            continue
        for sr in job.reads:
            r0, c0, r1, c1 = sr.window
            rows = min(r1, job.row0 + job.height) - max(r0, job.row0)
            cols = min(c1, job.col0 + job.width) - max(c0, job.col0)
            total += max(rows, 0) * max(cols, 0) * (1 if sr.align is not None else RESAMPLED_COST)
    return total


def _run_next(queue: collections.deque[list[Step]], whole_images: bool) -> None:
    """Run the first group of steps left in ``queue`` (one task per group takes one each). When groups are
    whole images, this thread closes each of the image's files once the last chunk reading it has
    painted it: no other task of the request reads them, and an open dataset that has been read holds
    its decoded tiles in GDAL's cache and its tile buffers (a megabyte or more; a mosaic's chunk reads
    several files, and a cube's worth of them would stay open). Otherwise each chunk closes the files
    no other chunk reads, as it does in ``cube.compute()``."""
    steps = queue.popleft()
    if not whole_images:
        for fn, arg in steps:
            reads, closes = (arg.reads, arg.closes) if isinstance(arg, ChunkJob) else ((), None)
            with FileCloser(reads, closes) as closer:
                fn(arg, closer)
        return
    with FileCloser(sr for _, job in steps if isinstance(job, ChunkJob) for sr in job.reads) as closer:
        for fn, arg in steps:
            fn(arg, closer)


def _block_steps(data: da.Array, out: np.ndarray) -> dict[tuple[int, ...], Step] | None:
    """Per block index of ``data``, the step computing it into its place in ``out`` (see
    :func:`_in_place_tasks`); None when ``data`` is not a cube as built."""
    graph = data.__dask_graph__()
    if not isinstance(graph, HighLevelGraph) or list(graph.layers) != [data.name] or data.ndim != 4:
        return None
    layer = graph.layers[data.name]
    starts = [np.cumsum((0, *c[:-1])) for c in data.chunks]
    steps: dict[tuple[int, ...], Step] = {}
    for key in _flat_keys(data):
        task = layer.get(key)
        while isinstance(task, tuple) and task and task[0] not in (run_chunk_job, nodata_block) and task in layer:
            task = layer[task]  # an alias (chunks no source touches share one nodata block)
        idx = key[1:]
        block = tuple(slice(int(s[i]), int(s[i]) + n[i]) for s, n, i in zip(starts, data.chunks, idx, strict=True))
        view = out[block]
        if isinstance(task, tuple) and len(task) == 2 and task[0] is run_chunk_job and isinstance(task[1], ChunkJob):
            steps[idx] = (functools.partial(_compute_into, view[0]), task[1])
        elif isinstance(task, tuple) and task and task[0] is nodata_block:
            steps[idx] = (functools.partial(_fill, view), task[3])
        else:
            return None
    return steps


def _flat_keys(data: da.Array) -> list[tuple[Any, ...]]:
    import itertools

    return [(data.name, *idx) for idx in itertools.product(*(range(len(c)) for c in data.chunks))]


def _compute_into(view: np.ndarray, job: ChunkJob, painted: Callable[[SourceRead], None] | None) -> None:
    """Compute a chunk into its view of the result, which ``np.zeros`` allocated: when the nodata is zero
    bytes, the view is already filled with it, and the pages no source paints are never touched.
    ``painted`` is called with each source once painted (see :func:`_run_next`)."""
    filled = zero_nodata(view.dtype, job.ctx.dformat.nodata)
    compute_chunk(job.ctx, job.row0, job.col0, job.height, job.width, job.reads, out=view, out_filled=filled,
                  painted=painted)


def _fill(view: np.ndarray, nodata: float, _painted: object = None) -> None:
    if not zero_nodata(view.dtype, nodata):
        view[...] = nodata
