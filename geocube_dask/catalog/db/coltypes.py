"""Column types that store the same Python values on SQLite and PostGIS.

- :class:`Geometry4326`: shapely geometries in EPSG:4326. On PostgreSQL a PostGIS ``geometry(…, 4326)``
  column, written with ``ST_GeomFromWKB`` and read with ``ST_AsBinary``; on SQLite a WKB blob (the
  bounding boxes live in R*Tree tables, see :mod:`.spatial`). Callers only ever see shapely objects.
- :class:`UTCDateTime`: aware UTC datetimes in, aware UTC datetimes out. SQLite keeps naive UTC text
  (``YYYY-MM-DD HH:MM:SS.ffffff``, which sorts chronologically); PostgreSQL a ``timestamptz``.
- :class:`FloatText`: a float that may be NaN, kept as its ``repr`` text (``'nan'``, ``'-10000.0'``).
  SQLite silently turns a NaN REAL into NULL, and NULL already means "no nodata", so the nodata
  values of data formats are stored as text on both backends. ``repr`` round-trips every float exactly.
- :class:`JSONText`: JSON in a TEXT column (keys sorted), for small lists and str→str mappings that are
  read whole and never filtered on in SQL.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType


class PostGISGeometry(UserDefinedType[Any]):
    """DDL-only PostGIS column type ``geometry(<kind>, 4326)``; values are converted by Geometry4326."""

    cache_ok = True

    def __init__(self, kind: str = "GEOMETRY") -> None:
        self.kind = kind

    def get_col_spec(self, **kw: Any) -> str:
        return f"geometry({self.kind},4326)"


class _GeomFromWKB(GenericFunction[Any]):
    """WKB parameter → geometry: ``ST_GeomFromWKB(x, 4326)`` on PostgreSQL, the blob itself on SQLite."""

    inherit_cache = True
    name = "gc_geom_from_wkb"


class _GeomAsWKB(GenericFunction[Any]):
    """Geometry column → WKB: ``ST_AsBinary(x)`` on PostgreSQL, the blob itself on SQLite."""

    inherit_cache = True
    name = "gc_geom_as_wkb"


@compiles(_GeomFromWKB)
def _from_wkb_default(element: _GeomFromWKB, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_GeomFromWKB, "postgresql")
def _from_wkb_pg(element: _GeomFromWKB, compiler: SQLCompiler, **kw: Any) -> str:
    return f"ST_GeomFromWKB({compiler.process(element.clauses, **kw)}, 4326)"


@compiles(_GeomAsWKB)
def _as_wkb_default(element: _GeomAsWKB, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_GeomAsWKB, "postgresql")
def _as_wkb_pg(element: _GeomAsWKB, compiler: SQLCompiler, **kw: Any) -> str:
    return f"ST_AsBinary({compiler.process(element.clauses, **kw)})"


class Geometry4326(TypeDecorator[BaseGeometry]):
    """A shapely geometry in EPSG:4326 (PostGIS geometry on PostgreSQL, WKB blob on SQLite)."""

    impl = sa.LargeBinary
    cache_ok = True

    def __init__(self, kind: str = "GEOMETRY") -> None:
        super().__init__()
        self.kind = kind

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(PostGISGeometry(self.kind))
        return dialect.type_descriptor(sa.LargeBinary())

    def bind_expression(self, bindvalue: Any) -> Any:
        return _GeomFromWKB(bindvalue, type_=sa.LargeBinary())

    def column_expression(self, colexpr: Any) -> Any:
        return _GeomAsWKB(colexpr, type_=self)

    def process_bind_param(self, value: BaseGeometry | bytes | None, dialect: Dialect) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        return shapely.to_wkb(value, output_dimension=2)

    def process_result_value(self, value: Any, dialect: Dialect) -> BaseGeometry | None:
        if value is None:
            return None
        return shapely.from_wkb(bytes(value))


class Geometry4326WKB(Geometry4326):
    """A :class:`Geometry4326` column read as its WKB bytes, for callers that parse many rows at once."""

    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:  # type: ignore[override]
        return None if value is None else bytes(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (naive UTC text on SQLite, timestamptz on PostgreSQL)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class FloatText(TypeDecorator[float]):
    """A float (NaN allowed) stored as its exact ``repr`` text; ``None`` stays NULL."""

    impl = sa.String(40)
    cache_ok = True

    def process_bind_param(self, value: float | None, dialect: Dialect) -> str | None:
        return None if value is None else float_text(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> float | None:
        return None if value is None else float(value)


def json_text(value: Any) -> str:
    """The text :class:`JSONText` stores for ``value`` (also used by bulk COPY writes)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def float_text(value: float) -> str:
    """The text :class:`FloatText` stores for ``value``."""
    value = float(value)
    return "nan" if math.isnan(value) else repr(value)


class JSONText(TypeDecorator[Any]):
    """A JSON document in a TEXT column, written with sorted keys (so equal values give equal text)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json_text(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)
