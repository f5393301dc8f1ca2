"""The user-facing handle: the catalogue plus cube and timeseries requests over it."""

from __future__ import annotations

import os

from .catalog.catalog import Catalog

DEFAULT_DB_ENV = "GEOCUBE_DB"


class Geocube(Catalog):
    """A catalogue connection that also answers cube, plan and timeseries requests."""


def default_url() -> str:
    """``$GEOCUBE_DB`` (a URL or a SQLite file path), else the SQLite file ``./geocube.db``."""
    value = os.environ.get(DEFAULT_DB_ENV, "geocube.db")
    if "://" in value:
        return value
    return f"sqlite:///{os.path.abspath(value)}"


def connect(url: str | None = None) -> Geocube:
    """Open (and migrate) a catalogue.

    ``None`` → SQLite file ``./geocube.db`` (or ``$GEOCUBE_DB``); ``sqlite:///path`` → that file;
    ``postgresql+psycopg2://user:pw@host:port/db`` → PostGIS.
    """
    return Geocube(url or default_url())
