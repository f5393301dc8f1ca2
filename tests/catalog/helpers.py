"""Plain helpers shared by the catalogue tests and their child processes (no fixtures here)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from shapely.geometry import box

from geocube_dask.catalog.db.schema import metadata
from geocube_dask.catalog.ingest.requests import PreparedDataset
from geocube_dask.entities import DFormat

# the database behind a remote catalogue's server, by API URL (set by the ``remote`` catalog_url fixture)
REMOTE_DATABASES: dict[str, str] = {}


def engine_of(gc: Any) -> sa.Engine:
    """The SQLAlchemy engine of a catalogue's database (for a remote catalogue, the server's database)."""
    url = REMOTE_DATABASES.get(getattr(gc, "url", ""))
    return gc._engine if url is None else _engine(url)


_engines: dict[str, sa.Engine] = {}


def _engine(url: str) -> sa.Engine:
    if url not in _engines:
        _engines[url] = sa.create_engine(url)
    return _engines[url]


def sql(gc: Any, write: bool = True) -> Any:
    """A transaction on the catalogue's database, for tests that look (or write) under the API."""
    if getattr(gc, "url", "") in REMOTE_DATABASES:
        return engine_of(gc).begin()
    return gc._tx(write=write)


def table_counts(gc: Any) -> dict[str, int]:
    """Rows per catalogue table: compare before/after a failing call to prove nothing changed."""
    with engine_of(gc).connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


def prepared(
    uri: str = "/data/file.tif",
    footprint: Any = None,
    *,
    bands: tuple[int, ...] = (1,),
    dformat: DFormat | None = None,
    subdir: str = "",
    real_min: float = 0.0,
    real_max: float = 1.0,
    exponent: float = 1.0,
    transform: tuple[float, ...] = (0.01, 0.0, 0.0, 0.0, -0.01, 1.0),
) -> PreparedDataset:
    """A PreparedDataset as indexing would produce it (no file behind it)."""
    fp = box(0, 0, 1, 1) if footprint is None else footprint
    return PreparedDataset(
        uri=uri, subdir=subdir, bands=bands, dformat=dformat or DFormat("uint16", 0.0, 0.0, 10000.0),
        real_min=real_min, real_max=real_max, exponent=exponent, crs="EPSG:4326", transform=transform,
        width=100, height=100, overviews=((50, 50), (25, 25)), footprint_wkt=fp.wkt, footprint_4326_wkt=fp.wkt,
    )


def last_statement_plan(gc: Any, call: Any) -> Any:
    """Run ``call()`` and return the plan of the last statement it executed: PostgreSQL's ``EXPLAIN (FORMAT
    JSON)`` tree (after ``ANALYZE``, so that the estimates are those of the data), or SQLite's ``EXPLAIN
    QUERY PLAN`` lines joined by newlines."""
    statements = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        statements.append((statement, params))

    if gc.backend == "postgresql":
        with gc._tx() as conn:
            conn.exec_driver_sql("ANALYZE")
    sa.event.listen(gc._engine, "before_cursor_execute", grab)
    try:
        call()
    finally:
        sa.event.remove(gc._engine, "before_cursor_execute", grab)
    statement, params = statements[-1]
    with gc._tx(write=False) as conn:
        if gc.backend == "postgresql":
            cursor = conn.connection.dbapi_connection.cursor()
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, params)
            return cursor.fetchone()[0][0]["Plan"]
        return "\n".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))


def plan_nodes(node: dict[str, Any], parent: dict[str, Any] | None = None) -> list[tuple[dict[str, Any], Any]]:
    """Every node of a PostgreSQL JSON plan, with its parent (None for the root)."""
    out = [(node, parent)]
    for child in node.get("Plans", []):
        out += plan_nodes(child, node)
    return out
