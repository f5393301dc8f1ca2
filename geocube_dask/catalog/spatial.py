"""Spatial predicates in SQL, the same question on both backends.

PostgreSQL answers ``ST_Intersects(geom, area)``, which uses the GiST index. SQLite has no spatial
functions (no SpatiaLite), so a query keeps the rows whose R*Tree bounding box meets the area's, then
tests them exactly with ``gc_intersects(wkb, area_wkb)``: a Python function (shapely, prepared area)
registered on every SQLite connection. Both count touching geometries as intersecting.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from .coltypes import Geometry4326
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


def intersects(conn: Connection, table: sa.Table, area: BaseGeometry) -> sa.ColumnElement[bool]:
    """A WHERE clause: the spatially indexed geometry of ``table`` intersects ``area`` (EPSG:4326)."""
    column = table.c[GEOMETRY_COLUMNS[table.name]]
    if conn.dialect.name == "postgresql":
        return sa.func.ST_Intersects(column, sa.bindparam(None, area, type_=Geometry4326()))
    rtree = RTREES[table.name]
    minx, miny, maxx, maxy = shapely.bounds(area).tolist()
    candidates = sa.select(rtree.c.id).where(
        rtree.c.minx <= maxx, rtree.c.maxx >= minx, rtree.c.miny <= maxy, rtree.c.maxy >= miny
    )
    area_wkb = sa.literal(shapely.to_wkb(area, output_dimension=2), sa.LargeBinary)
    return sa.and_(
        table.c.id.in_(candidates),
        sa.func.gc_intersects(sa.type_coerce(column, sa.LargeBinary), area_wkb) == 1,
    )


def insert_rtree(conn: Connection, table_name: str, ids: Sequence[int], geoms: Sequence[BaseGeometry]) -> None:
    """Add the bounding boxes of new rows to the SQLite R*Tree of ``table_name`` (no-op on PostgreSQL)."""
    if conn.dialect.name != "sqlite" or not len(ids):
        return
    bounds = shapely.bounds(np.asarray(geoms, dtype=object))
    rows = [
        {"id": int(i), "minx": b[0], "maxx": b[2], "miny": b[1], "maxy": b[3]}
        for i, b in zip(ids, bounds.tolist(), strict=True)
    ]
    conn.execute(RTREES[table_name].insert(), rows)
