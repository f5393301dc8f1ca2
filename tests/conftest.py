"""Shared fixtures: catalogue backends (SQLite file and a real PostGIS database).

PostGIS comes from ``scripts/setup-postgis.sh`` (``scripts/test.sh`` runs it and exports
``GEOCUBE_TEST_POSTGIS_URL``). Each pytest-xdist worker clones its own database from the
``geocube_template`` database; every test starts from empty tables.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

if TYPE_CHECKING:
    from servers import HttpServer, S3Server

POSTGIS_URL = os.environ.get("GEOCUBE_TEST_POSTGIS_URL")
REQUIRE_POSTGIS = os.environ.get("GEOCUBE_REQUIRE_POSTGIS") == "1"
BACKENDS = ["sqlite", "postgis"]
# test databases are named after the checkout, so that two checkouts can run their suites at once
CHECKOUT_TAG = hashlib.sha1(str(Path(__file__).resolve().parent).encode()).hexdigest()[:8]


def _admin_url(url: str, database: str) -> sa.URL:
    return sa.make_url(url).set(database=database)


def create_postgis_database(name: str) -> str:
    """(Re)create database ``name`` from the PostGIS template and return its URL."""
    assert POSTGIS_URL is not None
    admin = sa.create_engine(_admin_url(POSTGIS_URL, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE geocube_template'))
    admin.dispose()
    return _admin_url(POSTGIS_URL, name).render_as_string(hide_password=False)


def drop_postgis_database(name: str) -> None:
    assert POSTGIS_URL is not None
    admin = sa.create_engine(_admin_url(POSTGIS_URL, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _need_postgis() -> None:
    if POSTGIS_URL is None:
        if REQUIRE_POSTGIS:
            pytest.fail("GEOCUBE_REQUIRE_POSTGIS=1 but GEOCUBE_TEST_POSTGIS_URL is not set")
        pytest.skip("PostGIS not configured: run ./scripts/test.sh (sets GEOCUBE_TEST_POSTGIS_URL)")


@pytest.fixture(scope="session")
def postgis_worker_url(worker_id: str) -> Iterator[str]:
    """A PostGIS database private to this pytest-xdist worker."""
    _need_postgis()
    name = f"geocube_test_{CHECKOUT_TAG}_{worker_id}"
    url = create_postgis_database(name)
    yield url
    drop_postgis_database(name)


def truncate_all(url: str) -> None:
    """Empty every table of the catalogue at ``url`` (PostGIS)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = conn.execute(
            sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename NOT IN ('spatial_ref_sys', 'alembic_version')"
            )
        ).scalars().all()
        if tables:
            names = ", ".join(f'"{t}"' for t in tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def catalog_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """URL of an empty catalogue database, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    url = request.getfixturevalue("postgis_worker_url")
    truncate_all(url)
    return url


@pytest.fixture
def gc(catalog_url: str):
    """A connected, empty catalogue (SQLite and PostGIS)."""
    import geocube_dask as gd

    cube = gd.connect(catalog_url)
    yield cube
    cube.close()


# --- rasters and storage servers ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The scenes of ``scenes.SCENES`` around (5.95°E, 45.08°N) in five CRSs, plus a 6-band and an int16 file."""
    from scenes import make_scenes

    return make_scenes(tmp_path_factory.mktemp("cube-scenes"))


@pytest.fixture(scope="session")
def scene_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small COG per scene of ``rasters.SCENES`` (UTM 31N/32N, Lambert-93, lon/lat), read-only."""
    from rasters import write_all_scenes

    return write_all_scenes(tmp_path_factory.mktemp("scenes"))


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """A static HTTP server with byte-range support in a child process; unpacks as (base_url, directory).

    GDAL caches what it learnt about a URL (size, blocks, a 404) for the life of the process: give each
    test its own file names (e.g. under a uuid folder) rather than rewriting a served file.
    """
    from servers import http_server as serve

    with serve(tmp_path_factory.mktemp("www")) as server:
        yield server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A local S3-compatible server (moto) in a child process: ``.endpoint``, ``.create_bucket``,
    ``.upload(local, bucket, key)``, ``.gdal_env()``, ``.env()``. Same caching caveat as ``http_server``."""
    from servers import s3_server as serve

    with serve() as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point GDAL's /vsis3/ (and so ``s3://`` uris) at ``s3_server`` for one test, via environment variables."""
    settings = s3_server.gdal_env()
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    return settings
