"""``GeocubeAdaptive``: the Geocube scaling policy for any ``distributed`` cluster that adapts.

``cluster.adapt(Adaptive=GeocubeAdaptive, minimum=0, maximum=15, interval="30s", ratio=10, step=3)``
works on a ``LocalCluster`` and on every cluster manager built on distributed's ``Cluster``/
``SpecCluster`` (dask-jobqueue, dask-cloudprovider…). Each interval, the scheduler's load is read
inside the scheduler (an out-of-band function: geocube_dask must be importable there, as it is on
every worker that computes our graphs) and the pure :class:`~.policy.Policy` decides.

Differences from distributed's own ``Adaptive``:

- the target is the policy's (backlog in seconds of expected work, ratio, step, drain to zero);
- workers are proposed for retirement cheapest loss first (:func:`~.policy.retirement_order`), and
  like distributed's a worker is only retired after ``wait_count`` proposals in a row;
- a worker is only shut down once the scheduler has retired it, i.e. has copied the results it
  alone held to a worker that stays. distributed's ``Adaptive`` shuts the proposed workers down even
  when the scheduler could not retire them (no worker left to take their data), and those results
  are lost and recomputed.

On Kubernetes the dask-kubernetes operator does the adapting and asks the scheduler; see
:mod:`.scheduler` (the ``--preload geocube_dask.scaling`` module).
"""

from __future__ import annotations

from datetime import timedelta
from inspect import isawaitable
from typing import TYPE_CHECKING, Any

from distributed.core import clean_exception
from distributed.deploy.adaptive import Adaptive
from distributed.protocol.pickle import dumps

from .load import Load, measure
from .policy import Policy, workers_to_close

if TYPE_CHECKING:
    from collections.abc import Hashable

    from distributed.deploy.cluster import Cluster


class GeocubeAdaptive(Adaptive):
    """distributed's ``Adaptive`` driven by the Geocube policy (the reference autoscaler's rules).

    ``ratio``/``min_ratio`` are seconds of expected work per worker, ``step`` the most workers added
    or removed per interval (except draining to zero when nothing is left to do), ``minimum``/
    ``maximum`` the bounds; other keywords (``wait_count``, ``worker_key``…) are ``Adaptive``'s.
    """

    def __init__(
        self,
        cluster: Cluster | None = None,
        interval: str | float | timedelta = "30s",
        minimum: int = 0,
        maximum: int = 15,
        *,
        ratio: float = 10.0,
        min_ratio: float = 0.0,
        step: int = 3,
        **kwargs: Any,
    ) -> None:
        self.policy = Policy(ratio=ratio, min_ratio=min_ratio, step=step, minimum=minimum, maximum=maximum)
        super().__init__(cluster, interval=interval, minimum=minimum, maximum=maximum, **kwargs)

    async def load(self) -> Load:
        """The scheduler's current backlog and workers, read inside the scheduler."""
        response = await self.scheduler.run_function(function=dumps(measure), wait=True)
        if response["status"] == "error":
            _, exc, tb = clean_exception(**response)
            raise exc.with_traceback(tb)
        return response["result"]

    async def target(self) -> int:
        """The policy's number of workers; workers asked for and not connected yet are starting."""
        load = await self.load()
        starting = len(self.requested - self.observed)
        return self.policy.target(load.backlog, len(load.workers), starting, tasks=load.tasks, threads=load.threads,
                                  pinned=load.pinned)

    async def workers_to_close(self, target: int) -> list[Hashable]:
        """Names of the connected workers to retire to reach ``target``, cheapest loss first."""
        return [w.name for w in workers_to_close((await self.load()).workers, target)]

    async def scale_down(self, workers: list[Hashable]) -> None:
        """Retire ``workers`` through the scheduler, then shut down those it retired (and those that
        never connected); a worker whose results could not be moved elsewhere keeps running."""
        if not workers:
            return
        connected = {str(name) for name in self.observed}
        names = [w for w in workers if str(w) in connected]
        retired = set()
        if names:
            info = await self.scheduler.retire_workers(names=names, remove=True, close_workers=True)
            retired = {str(worker["name"]) for worker in info.values()}
        closing = [w for w in workers if str(w) in retired or str(w) not in connected]
        if closing:
            closed = self.cluster.scale_down(closing)
            if isawaitable(closed):
                await closed
