"""URLs, engines, per-connection settings and the one-transaction-per-operation rule."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import geocube_dask as gd
from geocube_dask.catalog.db.engine import begin, database_url

pytestmark = pytest.mark.local_only("the SQL layer under the catalogue: a remote client has none")


def test_url_forms(tmp_path) -> None:
    assert database_url(str(tmp_path / "a.db")).render_as_string() == f"sqlite+pysqlite:///{tmp_path / 'a.db'}"
    assert database_url("sqlite:///x.db").drivername == "sqlite+pysqlite"
    for scheme in ("postgresql", "postgres", "postgresql+psycopg2"):
        assert database_url(f"{scheme}://u:p@h:5432/db").drivername == "postgresql+psycopg2"


@pytest.mark.parametrize("url", ["mysql://u:p@h/db", "sqlite://", "sqlite:///:memory:", ":memory:", "http://x"])
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(gd.CatalogConnectionError, match="sqlite|postgresql|in-memory"):
        database_url(url)


def test_unreachable_postgres_says_what_to_check() -> None:
    with pytest.raises(gd.CatalogConnectionError) as err:
        gd.connect("postgresql+psycopg2://someone:secret@127.0.0.1:9/nothing")
    message = str(err.value)
    assert "127.0.0.1:9" in message and "server is running" in message
    assert "secret" not in message


def test_unopenable_sqlite_file(tmp_path) -> None:
    with pytest.raises(gd.CatalogConnectionError, match="directory exists"):
        gd.connect(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")


def test_sqlite_connection_settings(tmp_path) -> None:
    gc = gd.connect(f"sqlite:///{tmp_path / 'c.db'}")
    with gc._tx(write=False) as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        # case_sensitive_like cannot be read back: check its effect
        assert conn.exec_driver_sql("SELECT 'A' LIKE 'a'").scalar() == 0
        assert conn.exec_driver_sql("SELECT gc_lower('ÉCOLE')").scalar() == "école"
    gc.close()


def test_a_failing_operation_rolls_back_everything(gc) -> None:
    with pytest.raises(RuntimeError), gc._tx() as conn:
        conn.execute(sa.text("INSERT INTO palettes (name, points) VALUES ('p', '[]')"))
        raise RuntimeError("boom")
    assert gc.list_palettes() == []


def test_transactions_see_a_consistent_state(gc) -> None:
    with begin(gc._engine, write=False) as conn:
        assert conn.in_transaction()
    assert gc.backend in ("sqlite", "postgresql")


def test_catalog_is_a_context_manager(catalog_url: str) -> None:
    with gd.connect(catalog_url) as gc:
        assert "***" in gc.url or gc.url.startswith("sqlite")
        assert repr(gc).startswith("Geocube(")


def test_postgres_sessions_compile_no_queries(postgis_worker_url: str) -> None:
    """JIT compilation is off on catalogue connections: it costs more than any catalogue query takes, and
    PostGIS's declared function costs put ordinary spatial queries above jit_above_cost."""
    gc = gd.connect(postgis_worker_url)
    try:
        for _ in range(2):  # a new connection, then one back from the pool
            with gc._tx(write=False) as conn:
                assert conn.exec_driver_sql("SHOW jit").scalar_one() == "off"
            with gc._tx() as conn:
                conn.exec_driver_sql("SELECT 1")
    finally:
        gc.close()
