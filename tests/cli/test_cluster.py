"""``geocube cluster local`` (run for real in a subprocess, stopped with Ctrl-C) and ``geocube cluster manifest``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from distributed import Client

from .test_commands import as_json, error, ok, run

ROOT = Path(__file__).resolve().parents[2]


def _read_json_document(stream) -> dict:
    lines = []
    while True:
        line = stream.readline()
        assert line, "the command ended before printing its addresses"
        lines.append(line)
        if line.rstrip() == "}":
            return json.loads("".join(lines))


# as started from a terminal: a shell running a script starts background commands (and so this test suite, when
# run that way) with Ctrl-C ignored, which Python's children inherit
AS_FROM_A_TERMINAL = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cluster_local_adapts_and_stops_on_ctrl_c_or_sigterm(stop: signal.Signals) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-c", AS_FROM_A_TERMINAL + "from geocube_dask.cli import app; app()", "cluster", "local",
         "--workers", "0", "--adapt", "0:2", "--interval", "200ms", "--threads", "1", "--port", "0",
         "--dashboard-address", "127.0.0.1:0", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    children: list[psutil.Process] = []
    try:
        info = _read_json_document(proc.stdout)
        assert info["scheduler"].startswith("tcp://127.0.0.1:") and info["dashboard"].startswith("http://127.0.0.1:")
        assert info["adapt"] == [0, 2] and info["workers"] == 0
        with Client(info["scheduler"], timeout=30) as client:
            assert client.scheduler_info()["workers"] == {}
            futures = client.map(time.sleep, [0.2] * 12, pure=False)
            client.gather(futures)
            seen = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.workers))
            assert 1 <= seen <= 2  # workers came for the work, no more than the maximum
        children = psutil.Process(proc.pid).children(recursive=True)
    finally:
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err  # stopped by closing the cluster, not killed by the signal
    psutil.wait_procs(children, timeout=10)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def test_cluster_local_refuses_bad_bounds() -> None:
    assert "--adapt '3:1': use MIN:MAX" in error(run(None, "cluster", "local", "--adapt", "3:1"))
    assert "--adapt 'x': use MIN:MAX" in error(run(None, "cluster", "local", "--adapt", "x"))


def test_cluster_manifest() -> None:
    docs = as_json(run(None, "cluster", "manifest", "--name", "c1", "--image", "reg/img:2", "--namespace", "ns",
                       "--workers", "2", "--adapt", "1:5", "--worker-memory", "2Gi", "--json"))
    cluster, autoscaler = docs
    assert cluster["kind"] == "DaskCluster" and cluster["metadata"] == {
        "name": "c1", "labels": cluster["metadata"]["labels"], "namespace": "ns"}
    assert cluster["spec"]["worker"]["replicas"] == 2
    worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    assert worker["image"] == "reg/img:2" and worker["resources"]["limits"] == {"memory": "2Gi"}
    env = {e["name"]: e.get("value") for e in cluster["spec"]["scheduler"]["spec"]["containers"][0]["env"]}
    assert (env["DASK_GEOCUBE__SCALING__MINIMUM"], env["DASK_GEOCUBE__SCALING__MAXIMUM"]) == ("1", "5")
    assert autoscaler["kind"] == "DaskAutoscaler" and autoscaler["spec"] == {"cluster": "c1", "minimum": 1,
                                                                            "maximum": 5}
    text = ok(run(None, "cluster", "manifest"))
    assert [d["kind"] for d in yaml.safe_load_all(text)] == ["DaskCluster", "DaskAutoscaler"]
