"""Scaling the workers of a Geocube with its backlog: one machine, any distributed cluster, Kubernetes.

- :class:`GeocubeAdaptive` (``cluster.adapt(Adaptive=GeocubeAdaptive, …)``) adapts any distributed
  cluster with the Geocube policy (:mod:`.policy`, pure functions).
- As a scheduler preload (``dask scheduler --preload geocube_dask.scaling``) this module makes the
  scheduler answer ``/api/v1/adaptive_target``, the ``adaptive_target`` RPC and worker retirement with
  the same policy: that is what the dask-kubernetes operator's ``DaskAutoscaler`` asks (:mod:`.scheduler`).
- :func:`local_cluster` starts one on this machine; :func:`kube_cluster_spec`/:func:`kube_cluster`
  describe and start one on Kubernetes (the same spec as ``cluster/`` in the repository).
- :class:`WorkersTrace` records a cluster's workers over time while it adapts.
"""

from .adaptive import GeocubeAdaptive
from .kube import autoscaler_spec, kube_cluster, kube_cluster_spec
from .load import Load, measure
from .local import local_cluster
from .policy import Policy, WorkerLoad, retirement_order, workers_to_close
from .scheduler import dask_setup, install
from .trace import Sample, WorkersTrace

__all__ = [
    "GeocubeAdaptive", "Load", "Policy", "Sample", "WorkerLoad", "WorkersTrace", "autoscaler_spec", "dask_setup",
    "install", "kube_cluster", "kube_cluster_spec", "local_cluster", "measure", "retirement_order", "workers_to_close",
]
