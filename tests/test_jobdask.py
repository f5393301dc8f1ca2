"""jobdask: a job's tasks are found on the workers by its token (in their keys or their annotation) and
waited for until none runs or is queued; errors as a job records them; the client a step computes on."""

from __future__ import annotations

import threading

import dask
import pytest
from distributed import Client, LocalCluster

from geocube_dask.errors import InvalidArgument
from geocube_dask.jobdask import JOB_ANNOTATION, error_text, job_client, wait_until_idle

TOKEN = "0123456789abcdef"
let_go, running = threading.Event(), threading.Event()


def held() -> str:
    """A task of the job (this process's threads run it): it runs until let go."""
    running.set()
    let_go.wait(60)
    return "ended"


@pytest.fixture
def client():
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as c:
        yield c


@pytest.mark.parametrize("marked_by", ["annotation", "key"])
def test_wait_until_idle_waits_for_the_job_s_running_tasks(client, marked_by: str) -> None:
    let_go.clear()
    running.clear()
    if marked_by == "annotation":
        with dask.annotate(**{JOB_ANNOTATION: TOKEN}):
            future = client.submit(held, pure=False)
    else:
        future = client.submit(held, key=f"consolidate-{TOKEN}-0")
    assert running.wait(60)
    waiter = threading.Thread(target=wait_until_idle, args=(client, TOKEN))
    waiter.start()
    waiter.join(1.0)
    assert waiter.is_alive(), "wait_until_idle returned while a task of the job ran"
    let_go.set()
    waiter.join(60)
    assert not waiter.is_alive() and future.result(60) == "ended"


def test_wait_until_idle_ignores_other_jobs_tasks(client) -> None:
    let_go.clear()
    running.clear()
    with dask.annotate(**{JOB_ANNOTATION: "another-job"}):
        future = client.submit(held, pure=False)
    assert running.wait(60)
    try:
        waiter = threading.Thread(target=wait_until_idle, args=(client, TOKEN))
        waiter.start()
        waiter.join(30)
        assert not waiter.is_alive()
    finally:
        let_go.set()
    assert future.result(60) == "ended"


def test_error_text() -> None:
    assert error_text(None) == "cancelled"
    assert error_text(OSError("No space left on device")) == "OSError: No space left on device"
    assert error_text(InvalidArgument("give a layout")) == "give a layout"
    assert error_text(KeyError()) == "KeyError: KeyError()"


def test_job_client_is_the_given_client_else_an_in_process_cluster(client) -> None:
    with job_client(client) as given:
        assert given is client
    with job_client(None) as own:
        assert own is not client and own.submit(sum, [1, 2]).result(60) == 3
        assert own.dashboard_link
