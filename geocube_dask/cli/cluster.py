"""``geocube cluster local|manifest``: a dask cluster on this machine, or the Kubernetes resources of one."""

from __future__ import annotations

import signal
import time
from typing import Annotated

import typer

from ..errors import InvalidArgument
from .common import Json
from .output import Output

cluster_app = typer.Typer(no_args_is_help=True, help=(
    "Dask clusters for the Geocube's work: one on this machine, or the resources of one on Kubernetes."))

Adapt = Annotated[str | None, typer.Option(metavar="MIN:MAX", help=(
    "Adapt between MIN and MAX workers with the Geocube policy (more workers while work is waiting, "
    "none when idle)."))]
Ratio = Annotated[float, typer.Option(metavar="SECONDS", help=(
    "Seconds of expected work per worker above which workers are added (with --adapt)."))]
Step = Annotated[int, typer.Option(metavar="N", help="Workers added or removed per decision at most (with --adapt).")]


def parse_bounds(text: str, option: str = "--adapt") -> tuple[int, int]:
    """``"MIN:MAX"`` → ``(MIN, MAX)``, whole numbers with 0 <= MIN <= MAX and MAX >= 1."""
    low, sep, high = text.partition(":")
    try:
        bounds = (int(low), int(high))
    except ValueError:
        bounds = None
    if not sep or bounds is None or not 0 <= bounds[0] <= bounds[1] or bounds[1] < 1:
        raise InvalidArgument(f"{option} {text!r}: use MIN:MAX, whole numbers of workers with 0 <= MIN <= MAX, "
                              "MAX >= 1 (e.g. 0:8)")
    return bounds


@cluster_app.command("local")
def cluster_local(
    workers: Annotated[int | None, typer.Option("--workers", metavar="N", help=(
        "Worker processes (default: one per core; with --adapt: MIN to start with)."))] = None,
    threads: Annotated[int | None, typer.Option(metavar="N", help="Threads per worker.")] = None,
    memory_limit: Annotated[str, typer.Option(metavar="BYTES", help=(
        "Memory limit per worker, e.g. 4GiB ('auto': the machine's memory shared out)."))] = "auto",
    adapt: Adapt = None,
    interval: Annotated[str, typer.Option(metavar="DURATION", help="Time between decisions (with --adapt).")]
    = "2s",
    ratio: Ratio = 10.0,
    step: Step = 3,
    host: Annotated[str, typer.Option(metavar="HOST", help="Interface the scheduler listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Scheduler port (0: any free port).")] = 8786,
    dashboard_address: Annotated[str, typer.Option(metavar="[HOST]:PORT", help="Dashboard address.")] = ":8787",
    as_json: Json = False,
) -> None:
    """Start a scheduler, workers and the dashboard on this machine; print the scheduler address (for
    `distributed.Client(...)`) and the dashboard URL; run until Ctrl-C (or SIGTERM: `kill`, `docker stop`,
    systemd), then close the workers."""
    from ..scaling import local_cluster

    bounds = parse_bounds(adapt) if adapt is not None else None
    out = Output(as_json)
    cluster = local_cluster(workers, threads, memory_limit, bounds, interval=interval, ratio=ratio, step=step,
                            host=host, scheduler_port=port, dashboard_address=dashboard_address, quiet=True)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        info = {"scheduler": cluster.scheduler_address, "dashboard": cluster.dashboard_link,
                "workers": len(cluster.workers), "adapt": None if bounds is None else list(bounds)}
        out.emit(info)
        out.show(f"Scheduler: {info['scheduler']}")
        out.show(f"Dashboard: {info['dashboard']}")
        scaling = f"adapting between {bounds[0]} and {bounds[1]}" if bounds else f"{info['workers']} fixed"
        out.show(f"Workers:   {scaling}. Press Ctrl-C to stop.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        out.show("Stopping the cluster.")
    finally:
        cluster.close()
        signal.signal(signal.SIGTERM, previous)


def _stop(signum: int, frame: object) -> None:
    """SIGTERM stops ``cluster local`` as Ctrl-C does: its workers are closed, not left behind."""
    raise KeyboardInterrupt


@cluster_app.command("manifest")
def cluster_manifest(
    name: Annotated[str, typer.Option(metavar="NAME", help="Name of the DaskCluster (and of its autoscaler).")]
    = "geocube",
    image: Annotated[str, typer.Option(metavar="IMAGE", help="Container image with geocube_dask installed.")]
    = "geocube-dask:latest",
    namespace: Annotated[str | None, typer.Option(metavar="NS", help="Namespace (default: none set).")] = None,
    workers: Annotated[int, typer.Option("--workers", metavar="N", help="Workers to start with.")] = 0,
    adapt: Adapt = "0:15",
    ratio: Ratio = 10.0,
    min_ratio: Annotated[float, typer.Option(metavar="SECONDS", help=(
        "Seconds of work per worker below which busy workers are removed (0: never)."))] = 0.0,
    step: Step = 3,
    threads: Annotated[int, typer.Option(metavar="N", help="Threads per worker.")] = 2,
    worker_cpu: Annotated[str, typer.Option(metavar="CPU", help="CPU requested per worker.")] = "2",
    worker_memory: Annotated[str, typer.Option(metavar="BYTES", help="Memory per worker (request and limit).")]
    = "8Gi",
    db_secret: Annotated[str, typer.Option(metavar="SECRET", help=(
        "The Secret whose 'url' becomes GEOCUBE_DB on the scheduler and workers, for the drivers of jobs "
        "submitted to the cluster ('geocube submit'); '' for none."))] = "geocube-db",
    as_json: Json = False,
) -> None:
    """Print the Kubernetes resources of a Geocube dask cluster (a DaskCluster whose scheduler answers the
    autoscaler with the Geocube policy, and a DaskAutoscaler), for the dask-kubernetes operator."""
    import yaml

    from ..scaling.kube import autoscaler_spec, kube_cluster_spec

    bounds = parse_bounds(adapt) if adapt is not None else None
    resources = {"requests": {"cpu": worker_cpu, "memory": worker_memory}, "limits": {"memory": worker_memory}}
    docs = [kube_cluster_spec(name, image, namespace, workers, resources, None, bounds, ratio=ratio,
                              min_ratio=min_ratio, step=step, threads_per_worker=threads, db_secret=db_secret or None)]
    if bounds is not None:
        docs.append(autoscaler_spec(name, *bounds, namespace=namespace))
    if as_json:
        Output(True).emit(docs)
    else:
        typer.echo(yaml.safe_dump_all(docs, sort_keys=False), nl=False)
