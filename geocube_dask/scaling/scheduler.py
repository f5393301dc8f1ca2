"""The Geocube policy answering from inside a dask scheduler: ``dask scheduler --preload geocube_dask.scaling``.

The dask-kubernetes operator adapts a ``DaskCluster`` by asking its scheduler, every 5 s, how many
workers it wants — ``GET /api/v1/adaptive_target`` on the dashboard port, falling back to the
``adaptive_target`` RPC — and retires workers through ``POST /api/v1/retire_workers`` (falling back to
the ``workers_to_close`` and ``retire_workers`` RPCs). It takes no policy of its own, so this preload
makes the scheduler answer with ours:

- ``scheduler.adaptive_target`` and the ``adaptive_target`` RPC return the policy's target. The
  scheduler does not see pods still pending, so workers asked for by its previous answer and not
  connected yet count as starting (no growth until they arrive, the reference's rule).
- ``scheduler.workers_to_close`` and its RPC, asked for ``n`` workers or a ``target``, name the
  cheapest workers to lose first (other uses keep distributed's behaviour).
- The HTTP routes of ``distributed.http.scheduler.api`` (not in distributed's defaults) are added to
  the dashboard's server when ``distributed.scheduler.http.routes`` lacks them.

The settings come from dask's configuration, ``geocube.scaling.{ratio, min-ratio, step, minimum,
maximum}``, e.g. the environment variables ``DASK_GEOCUBE__SCALING__RATIO=10``. Keep ``minimum`` and
``maximum`` equal to the ``DaskAutoscaler``'s: the operator clamps our answer to its own bounds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import dask.config

from .load import measure
from .policy import Policy, starting_workers, workers_to_close

if TYPE_CHECKING:
    from distributed import Scheduler

logger = logging.getLogger(__name__)

API_ROUTES = "distributed.http.scheduler.api"
CONFIG_KEY = "geocube.scaling"


def policy_from_config() -> Policy:
    """The policy set by dask's configuration (``geocube.scaling.*``), the defaults elsewhere."""
    defaults = Policy()
    get = dask.config.get
    return Policy(
        ratio=get(f"{CONFIG_KEY}.ratio", defaults.ratio),
        min_ratio=get(f"{CONFIG_KEY}.min-ratio", defaults.min_ratio),
        step=get(f"{CONFIG_KEY}.step", defaults.step),
        minimum=get(f"{CONFIG_KEY}.minimum", defaults.minimum),
        maximum=get(f"{CONFIG_KEY}.maximum", defaults.maximum),
    )


class SchedulerPolicy:
    """The policy bound to one scheduler, remembering its previous answer (to know who is starting)."""

    def __init__(self, scheduler: Scheduler, policy: Policy) -> None:
        self.scheduler = scheduler
        self.policy = policy
        self.previous: int | None = None
        self._workers_to_close: Callable[..., list[Hashable]] = scheduler.workers_to_close

    def adaptive_target(self, target_duration: Any = None) -> int:
        """The number of workers the policy wants now (``target_duration`` is distributed's, unused)."""
        load = measure(self.scheduler)
        workers = len(load.workers)
        target = self.policy.target(load.backlog, workers, starting_workers(self.previous, workers),
                                    tasks=load.tasks, threads=load.threads, pinned=load.pinned)
        self.previous = target
        return target

    def workers_to_close(
        self,
        memory_ratio: float | None = None,
        n: int | None = None,
        key: Any = None,
        minimum: int | None = None,
        target: int | None = None,
        attribute: str = "address",
    ) -> list[Hashable]:
        """``Scheduler.workers_to_close``: for ``n`` workers or a ``target``, the cheapest to lose first;
        otherwise (memory-based, or grouped by ``key``) distributed's own choice."""
        if (n is None and target is None) or memory_ratio is not None or key is not None:
            return self._workers_to_close(memory_ratio=memory_ratio, n=n, key=key, minimum=minimum,
                                          target=target, attribute=attribute)
        workers = measure(self.scheduler).workers
        keep = target if target is not None else len(workers) - max(0, n or 0)
        keep = max(keep, minimum or 0)
        return [getattr(self.scheduler.workers[w.address], attribute) for w in workers_to_close(workers, keep)
                if w.address in self.scheduler.workers]


def add_api_routes(scheduler: Scheduler) -> bool:
    """Serve ``distributed.http.scheduler.api`` (``/api/v1/…``) on the scheduler's dashboard server
    unless its configuration already does; True when added."""
    from distributed.http.utils import get_handlers

    application = getattr(scheduler, "http_application", None)
    if application is None or API_ROUTES in dask.config.get("distributed.scheduler.http.routes", []):
        return False
    application.add_handlers(r".*$", get_handlers(server=scheduler, modules=[API_ROUTES], prefix="/"))
    return True


def install(scheduler: Scheduler, policy: Policy | None = None) -> SchedulerPolicy:
    """Make ``scheduler`` answer ``adaptive_target`` and ``workers_to_close`` (methods, RPCs and the
    HTTP API) with ``policy`` (default: :func:`policy_from_config`)."""
    bound = SchedulerPolicy(scheduler, policy or policy_from_config())
    scheduler.adaptive_target = bound.adaptive_target
    scheduler.handlers["adaptive_target"] = bound.adaptive_target
    scheduler.workers_to_close = bound.workers_to_close
    scheduler.handlers["workers_to_close"] = bound.workers_to_close
    added = add_api_routes(scheduler)
    logger.info("Geocube scaling policy installed: %s%s", bound.policy, " (added the /api/v1 routes)" if added else "")
    return bound


def dask_setup(scheduler: Scheduler) -> None:
    """The preload hook dask calls with the scheduler it starts."""
    install(scheduler)
