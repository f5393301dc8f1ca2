"""Batch submission: a job driven by a task on the cluster, so that the submitting process can leave.

``job.run(client=…)`` computes a job's graph on any cluster, but its bookkeeping (storing each
file's outcome, indexing the new files, the state transitions) happens in the process that called
it: that process must live until the job ends. :func:`submit_job` instead sends the cluster one
*driver* task, made to outlive the submitting client (``fire_and_forget``), which connects to the
catalogue from the worker it lands on and runs ``job.run`` there with the worker's client
(``worker_client``: the driver leaves its worker's thread pool while it waits, so that the job's own
tasks can run there too). The job keeps its state in the catalogue: ``geocube job show NAME``
follows it from anywhere.

The workers must reach the catalogue: they connect to the URL given (by default the submitter's,
password included: a URL the workers cannot reach, such as ``localhost`` seen from another machine,
must be replaced by ``worker_db=``), or with ``worker_db="env"`` to their own ``$GEOCUBE_DB`` (on
Kubernetes the workers get it from the ``geocube-db`` Secret, see :mod:`.scaling.kube`).

A worker running a driver is never retired by the Geocube scaling policy (it has a long-running
task). If it dies all the same, the scheduler runs the driver task again on another worker, which
takes the job over from the dead driver (the work done is kept; see :meth:`Job.retry`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .errors import CatalogConnectionError, InvalidArgument
from .jobs import RUNNING, this_process

if TYPE_CHECKING:
    from .jobs import Job

DRIVER_PREFIX = "geocube-job-driver"
WORKER_ENV = "env"  # worker_db=WORKER_ENV: the driver connects to its worker's $GEOCUBE_DB


def driver_key(job_id: str) -> str:
    """The dask key of a job's driver task (one per job: submitting twice runs it once)."""
    return f"{DRIVER_PREFIX}-{job_id}"


def _driver_variable(job_id: str) -> str:
    return f"{driver_key(job_id)}-attempt"


def drive(db_url: str, job_id: str) -> str:
    """(Runs on a worker) drive the job to its end, a failure or a wait; return its state's name.

    A second attempt of the same driver (the scheduler re-runs it when the worker of the first one
    died) takes the job over from the first attempt when that job is still marked as driven by it.
    """
    from distributed import Variable, get_worker, worker_client

    from .geocube import DEFAULT_DB_ENV, connect

    if db_url == WORKER_ENV:
        db_url = os.environ.get(DEFAULT_DB_ENV, "")
        if not db_url:
            raise CatalogConnectionError(
                f"job {job_id}: this worker has no ${DEFAULT_DB_ENV}: give its workers one, or submit with the "
                "catalogue's URL as the workers reach it (worker_db=URL, geocube submit --worker-db URL)"
            )
    me = {"owner": this_process(), "worker": get_worker().address}
    with connect(db_url) as gc, worker_client() as client:
        job = gc.get_job(job_id)
        attempt = Variable(_driver_variable(job_id), client=client)
        try:
            previous = attempt.get(timeout=0)
        except TimeoutError:
            previous = None  # the first attempt
        attempt.set(me)
        try:
            info = job.info
            gone = previous is not None and previous["worker"] not in client.scheduler_info()["workers"]
            if info.state in RUNNING and gone and info.owner == previous["owner"]:
                gc.log_job(info, f"the driver on {previous['worker']} is gone: taking the job over on {me['worker']}")
                job.retry(force=True, client=client)
            else:
                job.run(client=client)
            return job.state.value
        finally:
            attempt.delete()


def catalogue_url(gc: Any) -> str:
    """The full URL (password included) of the catalogue ``gc`` is connected to."""
    return gc._url.render_as_string(hide_password=False)


def submit_job(job: Job, client: Any, worker_db: str | None = None) -> str:
    """Send ``job``'s driver to ``client``'s cluster and return its dask key at once.

    The driver runs ``job.run`` on a worker, connected to ``worker_db`` (default: the catalogue of
    ``job``, as its URL says; ``"env"``: the worker's ``$GEOCUBE_DB``). The submitting process may then
    close its client and exit; follow the job with ``gc.get_job(name)`` or ``geocube job show NAME``.
    """
    from distributed import fire_and_forget

    if client is None or not hasattr(client, "submit"):
        raise InvalidArgument("submit_job needs a distributed.Client connected to the cluster's scheduler")
    url = worker_db or catalogue_url(job._gc)
    future = client.submit(drive, url, job.id, key=driver_key(job.id))
    fire_and_forget(future)
    return future.key
