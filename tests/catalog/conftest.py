"""Fixtures for the catalogue tests (every test runs on SQLite, on PostGIS and through the HTTP API via ``gc``).

``catalog_url`` overrides the suite-wide fixture of the same name with a faster way to an empty
catalogue, because this directory runs a few hundred tests per backend: SQLite databases are copied
from a file migrated once per session, and the PostGIS worker database is emptied with DELETEs (a
few milliseconds) rather than TRUNCATE (a hundred). Ids therefore do not restart at 1 between tests.

The third backend, ``remote``, is the remote client (``gd.connect("http://…")``) in front of one API server
per test process (a child process, over a SQLite file), emptied between tests from here; ``$GEOCUBE_TOKEN``
carries an admin token, so ``gd.connect(catalog_url)`` works as for the other backends. A test that needs
what only a local catalogue has (its SQL engine, job internals, processes sharing a database file…) is
marked ``local_only("why")`` and does not run for ``remote`` (it is deselected, and counted in the summary).

``spawn_pool`` is one pool of two spawned processes shared by the concurrency tests, so that the
interpreter start-up and imports are paid once.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import geocube_dask as gd
from geocube_dask.catalog.db.schema import metadata
from geocube_dask.entities import Instance, Record, Variable

from .helpers import REMOTE_DATABASES

POSTGIS_URL = os.environ.get("GEOCUBE_TEST_POSTGIS_URL")
REQUIRE_POSTGIS = os.environ.get("GEOCUBE_REQUIRE_POSTGIS") == "1"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite catalogue migrated once; tests start from copies of it."""
    path = tmp_path_factory.mktemp("template") / "catalog.db"
    gd.connect(f"sqlite:///{path}").close()  # closing checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def postgis_emptier(postgis_worker_url: str) -> Iterator[Callable[[], None]]:
    """Empties every catalogue table of the worker's PostGIS database (migrating it first if needed)."""
    gd.connect(postgis_worker_url).close()
    engine = sa.create_engine(postgis_worker_url)

    def empty() -> None:
        with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())

    yield empty
    engine.dispose()


@pytest.fixture(scope="session")
def remote_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The API in a child process over a SQLite file, for this test process's session."""
    from servers import api_server

    path = tmp_path_factory.mktemp("remote") / "catalog.db"
    with api_server(f"sqlite:///{path}") as server:
        yield server


@pytest.fixture(scope="session")
def remote_emptier(remote_server: Any) -> Iterator[Callable[[], None]]:
    """Empties every catalogue table of the remote server's database but its tokens."""
    engine = sa.create_engine(remote_server.db_url)

    def empty() -> None:
        with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                if table.name != "api_tokens":
                    conn.execute(table.delete())

    yield empty
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgis", "remote"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty, migrated catalogue, once per backend (``remote``: an API server's URL)."""
    if request.param == "remote":
        server = request.getfixturevalue("remote_server")
        request.getfixturevalue("remote_emptier")()
        request.getfixturevalue("monkeypatch").setenv("GEOCUBE_TOKEN", server.tokens["admin"])
        REMOTE_DATABASES[server.url] = server.db_url
        return server.url
    if request.param == "sqlite":
        path = tmp_path / "catalog.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    request.getfixturevalue("postgis_emptier")()
    return request.getfixturevalue("postgis_worker_url")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the ``remote`` runs of the tests marked ``local_only`` (deselected: they cannot apply)."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        remote = callspec is not None and callspec.params.get("catalog_url") == "remote"
        (drop if remote and item.get_closest_marker("local_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def spawn_pool() -> Iterator[tuple[Any, Any]]:
    """``(pool, manager)``: two spawned worker processes and a manager for barriers, for the session."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(2) as pool:
        yield pool, manager


@pytest.fixture
def variable(gc: Any) -> Variable:
    return gc.create_variable("reflectance", ("uint16", 0, 0, 10000), ["red"])


@pytest.fixture
def instance(gc: Any, variable: Variable) -> Instance:
    return gc.instantiate(variable, "master")


@pytest.fixture
def record(gc: Any) -> Record:
    return gc.create_record("S2A_T31TCJ_20240105", "2024-01-05T10:30:00Z", tags={"constellation": "S2"})


@pytest.fixture
def make_record(gc: Any) -> Callable[..., Record]:
    """Create records with distinct names by default."""

    def make(name: str | None = None, when: str = "2024-01-05T10:30:00Z", **kw: Any) -> Record:
        return gc.create_record(name or f"R{uuid.uuid4().hex[:8]}", when, **kw)

    return make


def _admin_url(database: str) -> sa.URL:
    assert POSTGIS_URL is not None
    return sa.make_url(POSTGIS_URL).set(database=database)


@pytest.fixture(params=["sqlite", "postgis"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """The URL of a brand-new database without any catalogue schema (for migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    if POSTGIS_URL is None:
        if REQUIRE_POSTGIS:
            pytest.fail("GEOCUBE_REQUIRE_POSTGIS=1 but GEOCUBE_TEST_POSTGIS_URL is not set")
        pytest.skip("PostGIS not configured")
    name = f"geocube_fresh_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(_admin_url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE geocube_template'))
    try:
        yield _admin_url(name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
