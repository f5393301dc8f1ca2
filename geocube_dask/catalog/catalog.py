"""The catalogue: every entity of GEOCUBE.md on SQLite or PostGIS, one transaction per operation.

:class:`Catalog` is assembled from one mixin per entity family; each public method opens its own
transaction (``_tx``), so a method that raises leaves the catalogue as it was. Opening a catalogue
migrates its schema to this version (see :mod:`.db.migrate`).
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import sqlalchemy as sa

from ..errors import CatalogConnectionError
from .aois import AoiMixin
from .consolidation import ConsolidationMixin
from .datasets import DatasetMixin
from .db.engine import connection_error, database_url, make_engine
from .db.migrate import migrate
from .indexing import IndexMixin
from .ingest.stac import StacMixin
from .instances import InstanceMixin
from .jobs import JobMixin
from .layouts import LayoutMixin
from .mapping import MappingMixin
from .palettes import PaletteMixin
from .records import RecordMixin
from .tidy import TidyMixin
from .tokens import TokenMixin
from .variables import VariableMixin


class Catalog(
    AoiMixin,
    RecordMixin,
    PaletteMixin,
    VariableMixin,
    InstanceMixin,
    DatasetMixin,
    MappingMixin,
    IndexMixin,
    LayoutMixin,
    StacMixin,
    TidyMixin,
    JobMixin,
    ConsolidationMixin,
    TokenMixin,
):
    """A connection to a catalogue database (``sqlite:///file.db`` or ``postgresql+psycopg2://…``).

    Raises CatalogConnectionError when the database cannot be reached, SchemaVersionError when it was
    written by a newer geocube_dask.
    """

    def __init__(self, url: str | sa.URL) -> None:
        self._url = database_url(url)
        self.url = self._url.render_as_string(hide_password=True)
        self._engine = make_engine(self._url)
        try:
            migrate(self._engine)
        except sa.exc.OperationalError as exc:
            self._engine.dispose()
            raise connection_error(self._url, exc) from exc
        except sa.exc.DBAPIError as exc:
            self._engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise CatalogConnectionError(
                f"cannot prepare the catalogue schema in {self.url}: {reason}. The database user must be allowed "
                "to create tables, and the PostGIS and btree_gist extensions must be available on PostgreSQL (CREATE "
                "EXTENSION postgis; btree_gist is part of PostgreSQL's contrib modules)."
            ) from exc
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
