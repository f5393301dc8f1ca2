"""The API against its own OpenAPI schema, with schemathesis: no request gives a 500, and every answer is one
the schema documents (status, content type, body, headers).

Every operation of the schema is a test (``schema.parametrize()``), run in-process against the ASGI app, once
over a SQLite catalogue and once over PostGIS (each backend's errors must reach the caller as documented 4xx
answers), that holds a variable, an instance, a record and an indexed dataset, so that listings answer real
entities for the response checks. The
requests carry an admin token, so that every route is reached past its auth; schemathesis also sends cases
without it (a missing ``Authorization`` must give a documented 401). Bounded and deterministic: a few examples
per operation, derandomized. Destructive operations (delete, tidy, token revoke) may empty the catalogue for
the operations after them: their 404s are documented answers too.

Two of schemathesis's default checks are left out: ``positive_data_acceptance`` (a request valid by the schema
must succeed) and ``negative_data_rejection`` (one invalid by it must fail). The catalogue checks names, geometries,
data formats and references beyond what JSON Schema says, and answers them with documented 4xx errors; the
fields it checks are passed through as sent (``api.wire.loose``), so that an HTTP caller gets the same error
as a Python one.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from conftest import BACKENDS, truncate_all
from fastapi.testclient import TestClient

import geocube_dask as gd
from geocube_dask.api import create_app
from geocube_dask.api.errors import CLIENT_ERRORS
from geocube_dask.catalog.ingest.requests import NewRecord

EXAMPLES_PER_OPERATION = 5


# the schema, read from an app when the tests are collected (schemathesis needs it then); the requests go to the
# app of the ``backend_app`` fixture, over the backend of each run
_ROOT = Path(tempfile.mkdtemp(prefix="geocube-schema-"))
atexit.register(shutil.rmtree, _ROOT, True)
_SCHEMA_GC = gd.connect(f"sqlite:///{_ROOT / 'schema.db'}")
OPENAPI = create_app(_SCHEMA_GC).openapi()

# POST routes whose path a GET route with a parameter also matches: GET /records/batch is the record "batch"
# (a 404), GET /jobs/x/run the job named "x/run" (job names may hold "/"), so the server's 405 rightly lists
# GET in Allow where the schema, which has no such overlap, expects only POST
OVERLAPPED = r"^/records/(batch|search|delete)$|^/jobs/(consolidation|deletion|clean|\{job\}/(run|next|retry|cancel))$"
CONFIG = schemathesis.Config.from_dict({
    "generation": {"max-examples": EXAMPLES_PER_OPERATION, "deterministic": True, "database": "none"},
    "checks": {"positive_data_acceptance": {"enabled": False}, "negative_data_rejection": {"enabled": False}},
    "operations": [{"include-path-regex": OVERLAPPED, "checks": {"allow_header_conformance": {"enabled": False}}}],
})
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", create_app(_SCHEMA_GC), config=CONFIG)


@pytest.fixture(scope="module", params=BACKENDS)
def backend_app(request: pytest.FixtureRequest, scenes: dict) -> Iterator[tuple[Any, str]]:
    """The app over an empty catalogue of one backend, now holding a variable, an instance, a record with a
    dataset and an AOI, and an admin token of it."""
    if request.param == "sqlite":
        url = f"sqlite:///{_ROOT / 'catalog.db'}"
    else:
        url = request.getfixturevalue("postgis_worker_url")
        truncate_all(url)
    gc = gd.connect(url)
    var = gc.create_variable("reflectance", dformat=("uint16", 0, 0, 10000), bands=["B2", "B3", "B4", "B8"])
    inst = gc.instantiate(var, "master")
    gc.index_dataset(scenes["utm31"].path, record=NewRecord("utm31", "2024-03-01T10:00:00Z", {"sat": "s2"}),
                     instance=inst)
    gc.create_aoi("POLYGON((5 45, 6 45, 6 46, 5 46, 5 45))")
    _, token = gc.create_token("admin", name="schemathesis")
    yield create_app(gc), token
    gc.close()


@SCHEMA.parametrize()
def test_answers_follow_the_schema(case: Any, backend_app: tuple[Any, str]) -> None:
    app, token = backend_app
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {token}"})


# --- what schemathesis found, each pinned -----------------------------------------------------------------


def test_every_operation_documents_its_error_answers() -> None:
    for path, operations in OPENAPI["paths"].items():
        for method, operation in operations.items():
            for status in CLIENT_ERRORS:
                answer = operation["responses"].get(str(status))
                assert answer is not None, (method, path, status)
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert OPENAPI["components"]["schemas"][ref.rsplit("/", 1)[1]]["required"] == ["error", "detail"]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    import geocube_dask as gd

    with gd.connect(f"sqlite:///{tmp_path / 'catalog.db'}") as gc:
        _, token = gc.create_token("admin")
        with TestClient(create_app(gc)) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            yield client


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("OPTIONS", "/tokens", "GET, POST"),  # two routes at one path: starlette named only the first one's method
    ("PUT", "/variables/some/name", "DELETE, GET, PATCH"),
    ("GET", "/aois/search", "POST"),  # was routed to GET /aois/{aoi_id} and refused as a bad id (422)
    ("GET", "/datasets/mapping", "POST"),
])
def test_a_method_not_served_gets_405_with_every_method_of_the_path(
        client: TestClient, method: str, path: str, allowed: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["Allow"] == allowed
    assert response.json()["error"] == "InvalidArgument" and allowed in response.json()["detail"]


def test_an_unknown_path_is_404_saying_where_the_routes_are(client: TestClient) -> None:
    response = client.get("/aois/-1")  # ids are positive integers: no route matches
    assert response.status_code == 404
    assert response.json()["error"] == "NotFound" and "/docs" in response.json()["detail"]


def test_an_app_served_twice_still_computes(tmp_path: Path) -> None:
    """The bounded pool belongs to one serving: a second one (a test client opened again) gets its own."""
    import geocube_dask as gd

    with gd.connect(f"sqlite:///{tmp_path / 'catalog.db'}") as gc:
        _, token = gc.create_token("read")
        app = create_app(gc)
        for _ in range(2):
            with TestClient(app) as client:
                response = client.get("/viewer/footprints/0a8b1a0e-0000-4000-8000-000000000000",
                                      headers={"Authorization": f"Bearer {token}"})
                assert response.status_code == 404, response.text
