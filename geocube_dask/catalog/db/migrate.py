"""Bring a catalogue database to the schema this code expects, safely, on every connect.

The schema is versioned with Alembic (``migrations/``, shipped inside the package). On connect we read
the database's revision without any lock; if it is already the head revision nothing else happens.
Otherwise we take a database-wide lock (PostgreSQL: a transaction-scoped advisory lock; SQLite: a
``BEGIN EXCLUSIVE`` transaction), read the revision again (another process may have migrated
meanwhile) and run the missing migrations inside that same transaction, so that two processes opening
a fresh database at once create the schema exactly once. A revision this code does not know means the
database was written by a newer geocube_dask: :class:`SchemaVersionError`, nothing touched.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from ...errors import SchemaVersionError
from .engine import begin

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Key of the PostgreSQL advisory lock held while migrating (any constant shared by all versions).
ADVISORY_LOCK_KEY = 0x67656F63756265  # "geocube"


@lru_cache(maxsize=1)
def script_directory() -> ScriptDirectory:
    """The migration scripts shipped with this package."""
    return ScriptDirectory(str(MIGRATIONS_DIR))


def head_revision() -> str:
    """The newest schema revision this code knows."""
    head = script_directory().get_current_head()
    if not (head is not None):
        raise RuntimeError("no migration scripts found")
    return head


def current_revisions(conn: Connection) -> tuple[str, ...]:
    """The database's Alembic revision(s); empty for a database without a catalogue yet."""
    return tuple(MigrationContext.configure(conn).get_current_heads())


def _package_version() -> str:
    try:
        return metadata.version("geocube_dask")
    except metadata.PackageNotFoundError:
        return "unknown"


def _check_known(revisions: tuple[str, ...]) -> None:
    known = {script.revision for script in script_directory().walk_revisions()}
    unknown = [r for r in revisions if r not in known]
    if unknown:
        raise SchemaVersionError(
            f"the catalogue database has schema revision {', '.join(unknown)}, unknown to this geocube_dask "
            f"({_package_version()}, newest schema {head_revision()}): it was written by a newer "
            "geocube_dask. Upgrade geocube_dask (pip install -U geocube_dask) to open it."
        )


def _config(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    return config


def migrate(engine: Engine) -> None:
    """Upgrade the database to the head revision (no-op when it is there). See the module docstring."""
    head = head_revision()
    with begin(engine, write=False) as conn:
        revisions = current_revisions(conn)
    _check_known(revisions)
    if revisions == (head,):
        return
    with begin(engine, sqlite_mode="EXCLUSIVE") as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        revisions = current_revisions(conn)
        _check_known(revisions)
        if revisions != (head,):
            command.upgrade(_config(conn), "head")
