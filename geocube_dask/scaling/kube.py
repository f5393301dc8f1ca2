"""The Geocube's dask cluster on Kubernetes, run by the dask-kubernetes operator.

:func:`kube_cluster_spec` builds the ``DaskCluster`` resource (dask-kubernetes' ``make_cluster_spec``,
then ours on top): the scheduler loads the scaling preload (``--preload geocube_dask.scaling``) and
serves the ``/api/v1`` routes the operator's autoscaler polls, with the policy's settings in its
environment; the workers get the GDAL settings for cloud-optimised reads, the storage settings from
the ``geocube-config`` ConfigMap and the ``geocube-storage`` Secret (both optional), and resource
requests. ``cluster/base/dask.yaml`` in the repository is exactly ``geocube cluster manifest``'s output.

The database: the consolidation graphs the workers run touch no database, but the driver of a job
submitted to the cluster (``geocube submit``, :mod:`geocube_dask.submit`) runs on a worker and keeps
the job's state in the catalogue. Scheduler and workers therefore get ``GEOCUBE_DB`` from the ``url`` of
the Secret ``db_secret=`` (default ``geocube-db``, the one ``cluster/`` makes; optional: pods start
without it; ``db_secret=None``: no database access at all).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import dask.config

from ..errors import InvalidArgument, MissingDependency
from .local import check_bounds
from .policy import Policy
from .scheduler import API_ROUTES

DEFAULT_IMAGE = "geocube-dask:latest"
CONFIG_MAP = "geocube-config"
STORAGE_SECRET = "geocube-storage"
DB_SECRET = "geocube-db"
LABELS = {"app.kubernetes.io/name": "geocube", "app.kubernetes.io/component": "dask"}

# GDAL settings for reading cloud-optimised files over HTTP/S3 (a user's env= overrides them)
GDAL_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "VSI_CACHE": "TRUE",
}
WORKER_RESOURCES = {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi"}}
SCHEDULER_RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}


def _dask_kubernetes() -> Any:
    try:
        import dask_kubernetes.operator as operator
    except ImportError:
        raise MissingDependency(
            "Kubernetes support needs dask-kubernetes: pip install 'geocube_dask[kube]'"
        ) from None
    return operator


def drop_nulls(value: Any) -> Any:
    """``value`` without the ``None`` fields of its mappings (the API server drops them too)."""
    if isinstance(value, Mapping):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def scheduler_routes() -> list[str]:
    """distributed's HTTP route modules plus ``distributed.http.scheduler.api`` (``/api/v1/…``)."""
    routes = list(dask.config.get("distributed.scheduler.http.routes"))
    return routes if API_ROUTES in routes else [*routes, API_ROUTES]


def _env_list(env: Mapping[str, str] | Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    if env is None:
        return []
    if isinstance(env, Mapping):
        return [{"name": str(k), "value": str(v)} for k, v in env.items()]
    return [dict(item) for item in env]


def _merge_env(*envs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Environment lists merged by name, later ones winning, first-seen order kept."""
    merged: dict[str, dict[str, Any]] = {}
    for env in envs:
        for item in env:
            merged[item["name"]] = item
    return list(merged.values())


def kube_cluster_spec(
    name: str = "geocube",
    image: str = DEFAULT_IMAGE,
    namespace: str | None = None,
    n_workers: int = 0,
    resources: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | Sequence[Mapping[str, Any]] | None = None,
    adapt: tuple[int, int] | None = (0, 15),
    *,
    ratio: float = 10.0,
    min_ratio: float = 0.0,
    step: int = 3,
    threads_per_worker: int = 2,
    scheduler_resources: Mapping[str, Any] | None = None,
    db_secret: str | None = DB_SECRET,
    idle_timeout: int = 0,
) -> dict[str, Any]:
    """The ``DaskCluster`` resource (a dict, no ``None`` field) for the Geocube's workers.

    ``resources``: the workers' requests/limits (default 2 CPUs, 8 GiB); ``env``: more worker
    environment (a mapping or a list of Kubernetes ``EnvVar``s, overriding the GDAL defaults);
    ``adapt=(minimum, maximum)`` with ``ratio``/``min_ratio``/``step``: the scheduler's scaling policy
    (give the ``DaskAutoscaler`` the same bounds: :func:`autoscaler_spec`); ``db_secret``: a Secret
    whose ``url`` becomes ``GEOCUBE_DB`` on scheduler and workers (``None``: none).
    """
    operator = _dask_kubernetes()
    minimum, maximum = check_bounds(adapt) if adapt is not None else (0, Policy().maximum)
    policy = Policy(ratio=ratio, min_ratio=min_ratio, step=step, minimum=minimum, maximum=maximum)
    if not (isinstance(n_workers, int) and n_workers >= 0):
        raise InvalidArgument(f"n_workers must be a whole number of workers >= 0, not {n_workers!r}")
    if not (isinstance(threads_per_worker, int) and threads_per_worker >= 1):
        raise InvalidArgument(f"threads_per_worker must be a whole number >= 1, not {threads_per_worker!r}")
    spec = operator.make_cluster_spec(
        name=name, image=image, n_workers=n_workers, resources=None, env=None, worker_command="dask worker",
        idle_timeout=idle_timeout,
    )
    spec["metadata"]["labels"] = dict(LABELS)
    if namespace:
        spec["metadata"]["namespace"] = namespace
    db_env = [] if db_secret is None else [
        {"name": "GEOCUBE_DB", "valueFrom": {"secretKeyRef": {"name": db_secret, "key": "url", "optional": True}}}
    ]

    scheduler = spec["spec"]["scheduler"]["spec"]["containers"][0]
    # distributed's command line is `dask scheduler` (dask-kubernetes still writes `dask-scheduler`)
    args = scheduler["args"]
    options = args[1:] if args[0] == "dask-scheduler" else args[2:]
    scheduler["args"] = ["dask", "scheduler", *options, "--preload", "geocube_dask.scaling"]
    scheduler["env"] = _merge_env([
        {"name": "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES", "value": json.dumps(scheduler_routes())},
        {"name": "DASK_GEOCUBE__SCALING__RATIO", "value": str(policy.ratio)},
        {"name": "DASK_GEOCUBE__SCALING__MIN_RATIO", "value": str(policy.min_ratio)},
        {"name": "DASK_GEOCUBE__SCALING__STEP", "value": str(policy.step)},
        {"name": "DASK_GEOCUBE__SCALING__MINIMUM", "value": str(policy.minimum)},
        {"name": "DASK_GEOCUBE__SCALING__MAXIMUM", "value": str(policy.maximum)},
    ], db_env)
    scheduler["resources"] = dict(scheduler_resources or SCHEDULER_RESOURCES)

    worker = spec["spec"]["worker"]["spec"]["containers"][0]
    worker["args"] = [*worker["args"], "--nthreads", str(threads_per_worker)]
    worker["env"] = _merge_env(_env_list(GDAL_ENV), db_env, _env_list(env))
    worker["envFrom"] = [
        {"configMapRef": {"name": CONFIG_MAP, "optional": True}},
        {"secretRef": {"name": STORAGE_SECRET, "optional": True}},
    ]
    worker["resources"] = dict(resources or WORKER_RESOURCES)
    return drop_nulls(spec)


def autoscaler_spec(name: str = "geocube", minimum: int = 0, maximum: int = 15,
                    namespace: str | None = None) -> dict[str, Any]:
    """The ``DaskAutoscaler`` resource making the operator adapt cluster ``name`` within the bounds."""
    minimum, maximum = check_bounds((minimum, maximum))
    metadata: dict[str, Any] = {"name": name, "labels": dict(LABELS)}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "kubernetes.dask.org/v1", "kind": "DaskAutoscaler", "metadata": metadata,
        "spec": {"cluster": name, "minimum": minimum, "maximum": maximum},
    }


def kube_cluster(
    name: str = "geocube",
    image: str = DEFAULT_IMAGE,
    namespace: str | None = None,
    n_workers: int = 0,
    resources: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | Sequence[Mapping[str, Any]] | None = None,
    adapt: tuple[int, int] | None = (0, 15),
    *,
    quiet: bool = False,
    spec_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Start the Geocube's dask cluster on Kubernetes (the operator must be installed there): a
    dask-kubernetes ``KubeCluster`` from :func:`kube_cluster_spec` (``spec_options`` are its other
    keywords), adapting within ``adapt`` through the operator's ``DaskAutoscaler``; its dashboard URL
    printed. Other keywords go to ``KubeCluster`` (e.g. ``shutdown_on_close``)."""
    operator = _dask_kubernetes()
    spec = kube_cluster_spec(name, image, namespace, n_workers, resources, env, adapt, **(spec_options or {}))
    cluster = operator.KubeCluster(custom_cluster_spec=spec, namespace=namespace, **kwargs)
    if adapt is not None:
        cluster.adapt(minimum=adapt[0], maximum=adapt[1])
    if not quiet:
        print(f"Dask dashboard: {cluster.dashboard_link}")
    return cluster
