"""Database URLs, engines and the one-transaction-per-operation rule.

Supported URLs:

- ``sqlite:///path/to/file.db`` (or a bare file path): an embedded catalogue. Every connection runs with
  ``journal_mode=WAL`` (readers never block the writer), ``busy_timeout`` (a second process waits for
  the writer instead of failing), ``foreign_keys=ON``, ``case_sensitive_like=ON`` and the Python
  functions ``gc_lower`` and ``gc_intersects``. Transactions are started by us (the sqlite3 module's own
  transaction handling is switched off): ``BEGIN IMMEDIATE`` for operations that write, so two writers
  queue on the lock instead of failing when one upgrades a read transaction; plain ``BEGIN`` for reads.
- ``postgresql+psycopg2://user:password@host:port/db`` (``postgresql://`` and ``postgres://`` are read as
  psycopg2 too): PostGIS, with ``pool_pre_ping`` so that a restarted server costs no failed operation.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2.extensions
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ...errors import CatalogConnectionError
from .filters import unicode_lower
from .spatial import sqlite_intersects

SQLITE_BUSY_TIMEOUT_MS = 60_000
PG_CONNECT_TIMEOUT_S = 10
_BEGIN_OPTION = "geocube_sqlite_begin"


def database_url(url: str | sa.URL) -> sa.URL:
    """Parse and normalise a catalogue URL (see the module docstring). Raises CatalogConnectionError."""
    if isinstance(url, str) and "://" not in url:
        if not url or url == ":memory:":
            raise CatalogConnectionError(
                "an in-memory SQLite catalogue is not supported: give a file path, e.g. 'geocube.db'"
            )
        url = f"sqlite:///{os.path.abspath(os.path.expanduser(url))}"
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise CatalogConnectionError(f"invalid catalogue URL {url!r}: {exc}") from None
    driver = parsed.drivername
    if driver in ("postgresql", "postgres", "postgresql+psycopg2"):
        return parsed.set(drivername="postgresql+psycopg2")
    if driver in ("sqlite", "sqlite+pysqlite"):
        if not parsed.database or parsed.database == ":memory:":
            raise CatalogConnectionError(
                "an in-memory SQLite catalogue is not supported: give a file, e.g. 'sqlite:///geocube.db'"
            )
        return parsed.set(drivername="sqlite+pysqlite")
    raise CatalogConnectionError(
        f"unsupported catalogue URL scheme {driver!r}: use 'sqlite:///path/file.db' or "
        "'postgresql+psycopg2://user:password@host:port/database'"
    )


def _set_wal(cursor: Any) -> None:
    """Switch the file to WAL (persistent). Switching needs a moment alone with the file and SQLite
    answers "locked" at once, without its busy handler, when another process opens it at the same
    time; so retry for as long as the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module: we emit BEGIN ourselves (see _on_sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _set_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA case_sensitive_like = ON")
    finally:
        cursor.close()
    dbapi_connection.create_function("gc_lower", 1, unicode_lower, deterministic=True)
    dbapi_connection.create_function("gc_intersects", 2, sqlite_intersects, deterministic=True)


def _on_sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())


_PG_UUID_OID = 2950
_UUID_AS_TEXT = psycopg2.extensions.new_type((_PG_UUID_OID,), "GC_UUID_TEXT", psycopg2.extensions.UNICODE)


# Session settings of every catalogue connection. JIT compilation costs 20-30 ms per query, more than any
# catalogue query takes, and PostGIS declares its spatial functions so costly that an ordinary cube query
# over a few hundred km (a plan cost above jit_above_cost) would pay it.
PG_SESSION_SETTINGS = {"jit": "off"}


def _on_pg_connect(dbapi_connection: Any, _record: Any) -> None:
    # Our uuid columns are strings in Python (``Uuid(as_uuid=False)``): read them as text instead of
    # building a uuid.UUID per value that SQLAlchemy turns back into text (a cube query returns
    # thousands). Registered after SQLAlchemy's own uuid type caster, so this one wins.
    psycopg2.extensions.register_type(_UUID_AS_TEXT, dbapi_connection)
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # SET outside any transaction: it lasts for the session
    try:
        with dbapi_connection.cursor() as cursor:
            for name, value in PG_SESSION_SETTINGS.items():
                cursor.execute("SELECT set_config(%s, %s, false)", (name, value))
    finally:
        dbapi_connection.autocommit = autocommit


def make_engine(url: sa.URL) -> Engine:
    """A pooled engine for a URL returned by :func:`database_url`."""
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    engine = sa.create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S, "application_name": "geocube_dask"},
    )
    event.listen(engine, "connect", _on_pg_connect)
    return engine


def connection_error(url: sa.URL, exc: BaseException) -> CatalogConnectionError:
    """A CatalogConnectionError naming the database (password hidden) and the driver's reason."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    where = url.render_as_string(hide_password=True)
    if "locked" in reason:
        hint = f"another process kept it locked for more than {SQLITE_BUSY_TIMEOUT_MS // 1000} s: try again"
    elif url.get_backend_name() == "sqlite":
        hint = "check that the directory exists and is writable"
    else:
        hint = "check that the server is running, and the host, port, database, user and password"
    return CatalogConnectionError(f"cannot open the catalogue {where}: {reason} ({hint})")


@contextmanager
def begin(engine: Engine, *, write: bool = True, sqlite_mode: str | None = None) -> Iterator[Connection]:
    """A connection inside one transaction: committed on success, rolled back on any exception.

    On SQLite ``write`` starts the transaction with ``BEGIN IMMEDIATE`` (``sqlite_mode`` overrides it,
    e.g. ``EXCLUSIVE`` for migrations). Failing to connect raises CatalogConnectionError.
    """
    try:
        conn = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise connection_error(engine.url, exc) from exc
    with conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(**{_BEGIN_OPTION: sqlite_mode or ("IMMEDIATE" if write else "")})
        try:
            with conn.begin():
                yield conn
        except sa.exc.OperationalError as exc:
            if _is_connection_problem(exc):
                raise connection_error(engine.url, exc) from exc
            raise


def _is_connection_problem(exc: sa.exc.DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower()
    return any(s in text for s in ("database is locked", "unable to open", "server closed", "could not connect"))


class Connected:
    """Base of the catalogue mixins: owns the engine and hands out one transaction per operation."""

    _engine: Engine

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[Connection]:
        with begin(self._engine, write=write) as conn:
            yield conn

    def close(self) -> None:
        """Release the database connections (the catalogue object is unusable afterwards)."""
        self._engine.dispose()
