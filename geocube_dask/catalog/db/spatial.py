"""Spatial predicates in SQL, the same question on both backends.

PostgreSQL answers ``ST_Intersects(geom, area)``, which uses the GiST index. SQLite has no spatial
functions (no SpatiaLite), so a query keeps the rows whose R*Tree bounding box meets the area's, then
tests them exactly with ``gc_intersects(wkb, area_wkb)``: a Python function (shapely, prepared area)
registered on every SQLite connection. Both count touching geometries as intersecting.

:func:`exact_last` splits the test for queries that join and filter a lot: the index search (bounding
boxes) stays with the other filters and the exact test runs on the rows they keep. On SQLite that saves
a Python call per candidate that the other filters would have dropped. On PostgreSQL it saves plans:
PostGIS declares ``ST_Intersects`` very expensive, and the planner charges that cost to every row of the
scan it is attached to, whatever cheaper filters run first, so it prefers plans (bitmap ANDs with large
indexes, parallel workers) that cost far more than the exact tests they would save.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from .coltypes import Geometry4326, geometries_ewkb
from .schema import GEOMETRY_COLUMNS, RTREES


@lru_cache(maxsize=32)
def _prepared(wkb: bytes) -> BaseGeometry:
    geom = shapely.from_wkb(wkb)
    shapely.prepare(geom)
    return geom


def sqlite_intersects(wkb: bytes | None, area_wkb: bytes | None) -> int | None:
    """SQLite function ``gc_intersects``: 1 if the two WKB geometries intersect, else 0 (NULL in → NULL)."""
    if wkb is None or area_wkb is None:
        return None
    return int(shapely.intersects(_prepared(bytes(area_wkb)), shapely.from_wkb(bytes(wkb))))


def _boxes_meet(conn: Connection, table: sa.Table, area: BaseGeometry) -> sa.ColumnElement[bool]:
    """The index search: the bounding box of ``table``'s geometry meets the area's."""
    column = table.c[GEOMETRY_COLUMNS[table.name]]
    if conn.dialect.name == "postgresql":
        return column.op("&&")(sa.bindparam(None, area, type_=Geometry4326()))
    rtree = RTREES[table.name]
    minx, miny, maxx, maxy = shapely.bounds(area).tolist()
    candidates = sa.select(rtree.c.id).where(
        rtree.c.minx <= maxx, rtree.c.maxx >= minx, rtree.c.miny <= maxy, rtree.c.maxy >= miny
    )
    return table.c.id.in_(candidates)


def _exact(conn: Connection, column: sa.ColumnElement[Any], area: BaseGeometry) -> sa.ColumnElement[bool]:
    """The exact test of a geometry column against the area."""
    if conn.dialect.name == "postgresql":
        return sa.func.ST_Intersects(column, sa.bindparam(None, area, type_=Geometry4326()))
    area_wkb = sa.literal(geometries_ewkb([area])[0], sa.LargeBinary)
    return sa.func.gc_intersects(sa.type_coerce(column, sa.LargeBinary), area_wkb) == 1


def intersects(conn: Connection, table: sa.Table, area: BaseGeometry) -> sa.ColumnElement[bool]:
    """A WHERE clause: the spatially indexed geometry of ``table`` intersects ``area`` (EPSG:4326)."""
    column = table.c[GEOMETRY_COLUMNS[table.name]]
    if conn.dialect.name == "postgresql":  # ST_Intersects searches the GiST index itself
        return _exact(conn, column, area)
    return sa.and_(_boxes_meet(conn, table, area), _exact(conn, column, area))


_EXACT_GEOMETRY = "gc_exact_geometry"  # the candidates' geometry, tested by the outer query, not returned


def exact_last(
    conn: Connection, stmt: sa.Select[Any], table: sa.Table, area: BaseGeometry, order_by: Sequence[str]
) -> sa.Select[Any]:
    """``stmt`` (unordered, selecting from ``table``) restricted to the rows whose geometry intersects
    ``area``, ordered by the named output columns; its columns are returned, the geometry only if it selects it.

    The index search joins ``stmt``'s filters; the exact test runs on the rows they keep, in an outer query
    (``OFFSET 0`` keeps the planners from merging the two levels). See the module docstring.
    """
    column = table.c[GEOMETRY_COLUMNS[table.name]]
    inner = stmt.add_columns(column.label(_EXACT_GEOMETRY)).where(_boxes_meet(conn, table, area))
    candidates = inner.offset(0).subquery("candidates")
    exact = _exact(conn, candidates.c[_EXACT_GEOMETRY], area)
    returned = [c for c in candidates.c if c.name != _EXACT_GEOMETRY]
    return sa.select(*returned).where(exact).order_by(*(candidates.c[name] for name in order_by))


def insert_rtree(conn: Connection, table_name: str, ids: Sequence[int], geoms: Sequence[BaseGeometry]) -> None:
    """Add the bounding boxes of new rows to the SQLite R*Tree of ``table_name`` (no-op on PostgreSQL)."""
    if conn.dialect.name != "sqlite" or not len(ids):
        return
    bounds = shapely.bounds(np.asarray(geoms, dtype=object))
    rows = [(int(i), b[0], b[2], b[1], b[3]) for i, b in zip(ids, bounds.tolist(), strict=True)]
    table = RTREES[table_name].name
    conn.exec_driver_sql(f"INSERT INTO {table} (id, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)", rows)
