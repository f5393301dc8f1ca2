"""A dask cluster on this machine, optionally adapting with the Geocube policy, dashboard included."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..errors import InvalidArgument
from .adaptive import GeocubeAdaptive


def check_bounds(adapt: tuple[int, int]) -> tuple[int, int]:
    """``(minimum, maximum)`` workers, checked: whole numbers, 0 <= minimum <= maximum, maximum >= 1."""
    try:
        minimum, maximum = adapt
    except (TypeError, ValueError):
        raise InvalidArgument(f"adapt must be (minimum, maximum) workers, not {adapt!r}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (minimum, maximum)) \
            or not 0 <= minimum <= maximum or maximum < 1:
        raise InvalidArgument(
            f"adapt must be (minimum, maximum) whole numbers of workers with 0 <= minimum <= maximum and "
            f"maximum >= 1, not {adapt!r}"
        )
    return minimum, maximum


def local_cluster(
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    memory_limit: str | float | None = "auto",
    adapt: tuple[int, int] | None = None,
    *,
    interval: str | float | timedelta = "2s",
    ratio: float = 10.0,
    min_ratio: float = 0.0,
    step: int = 3,
    dashboard_address: str = ":8787",
    quiet: bool = False,
    **kwargs: Any,
) -> Any:
    """A ``distributed.LocalCluster`` (worker processes) with its dashboard, whose URL is printed.

    ``adapt=(minimum, maximum)`` makes it adapt with :class:`GeocubeAdaptive` (``ratio``, ``min_ratio``,
    ``step``; a decision every ``interval``: local workers start in about a second), starting with
    ``minimum`` workers unless ``n_workers`` is given. Without ``adapt``, ``n_workers`` (default: one
    per core, as distributed chooses) stay. Other keywords go to ``LocalCluster``. If the dashboard's
    port is taken, distributed picks another: the printed URL is the one in use.
    """
    from distributed import LocalCluster

    bounds = None if adapt is None else check_bounds(adapt)
    if bounds is not None and n_workers is None:
        n_workers = bounds[0]
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, memory_limit=memory_limit,
                           dashboard_address=dashboard_address, **kwargs)
    if bounds is not None:
        try:
            cluster.adapt(Adaptive=GeocubeAdaptive, minimum=bounds[0], maximum=bounds[1], interval=interval,
                          ratio=ratio, min_ratio=min_ratio, step=step)
        except Exception:
            cluster.close()
            raise
    if not quiet:
        print(f"Dask dashboard: {cluster.dashboard_link}")
    return cluster
