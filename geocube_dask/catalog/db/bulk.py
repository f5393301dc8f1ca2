"""Backend-specific bulk writes for indexing: containers, dataset rows and band claims.

The same three operations on both backends, inside the caller's transaction:

- :func:`write_containers`: insert missing containers, return the uris inserted;
- :func:`write_datasets`: insert dataset rows, return their new ids in order;
- :func:`write_claims`: insert ``dataset_bands`` claims, skipping those already taken, and return the
  ``(dataset_id, band)`` pairs actually inserted.

SQLite uses multi-row INSERTs (``INSERT … ON CONFLICT DO NOTHING RETURNING``) for containers and claims
and plain ``executemany`` with explicit ids for dataset rows. PostgreSQL streams rows
with COPY (:mod:`.pgcopy`): dataset ids are reserved from the sequence first and written explicitly,
footprints as hex EWKB; containers and claims go through a temporary table, then
``INSERT … SELECT … ON CONFLICT DO NOTHING``.
Claims are inserted in key order so that concurrent writers lock rows in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..ingest.requests import PreparedDataset
from .coltypes import float_text
from .pgcopy import copy_lines, copy_rows, field, next_ids, temp_table_like
from .schema import containers, dataset_bands
from .spatial import insert_rtree
from .sqlutil import dialect_insert

# Columns of a dataset row, in COPY order.
DATASET_COLUMNS = (
    "id", "record_id", "instance_id", "container_uri", "subdir", "bands", "dtype", "nodata", "min", "max",
    "real_min", "real_max", "exponent", "status", "crs", "transform", "width", "height", "overviews",
    "footprint_wkt", "footprint_4326",
)
Claim = tuple[str, str, int, int]  # (container_uri, subdir, band, dataset_id)
Item = tuple[str, str, PreparedDataset]  # (record_id, instance_id, prepared)


def write_containers(conn: Connection, uris: Sequence[str], managed: bool) -> set[str]:
    """Insert the containers that do not exist yet (flagged ``managed``); return the uris inserted."""
    if not uris:
        return set()
    if conn.dialect.name == "postgresql":
        temp_table_like(conn, "gc_new_containers", "containers", ["uri", "managed"])
        copy_rows(conn, "gc_new_containers", ["uri", "managed"], ((u, managed) for u in uris))
        rows = conn.execute(
            sa.text(
                "INSERT INTO containers (uri, managed) SELECT uri, managed FROM gc_new_containers ORDER BY uri "
                "ON CONFLICT DO NOTHING RETURNING uri"
            )
        )
        return set(rows.scalars())
    stmt = dialect_insert(conn, containers).on_conflict_do_nothing().returning(containers.c.uri)
    return set(conn.execute(stmt, [{"uri": u, "managed": managed} for u in uris]).scalars())


def _json_ints(values: Sequence[int]) -> str:
    return "[" + ",".join(str(int(v)) for v in values) + "]"


def _json_floats(values: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(v)) for v in values) + "]"


def _distinct(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct, index)``: the distinct geometry objects of ``geoms`` (by identity: the datasets of one
    acquisition share theirs) and, per entry, its position in ``distinct``."""
    seen: dict[int, int] = {}
    index = np.fromiter((seen.setdefault(id(g), len(seen)) for g in geoms), dtype=np.intp, count=len(geoms))
    distinct = np.empty(len(seen), dtype=object)
    distinct[index] = geoms
    return distinct, index


def ewkb_hex(geoms: np.ndarray) -> list[str]:
    """Geometries as hex EWKB with SRID 4326, which PostGIS reads much faster than (E)WKT."""
    distinct, index = _distinct(geoms)
    wkbs = shapely.to_wkb(shapely.set_srid(distinct, 4326), output_dimension=2, include_srid=True)
    texts = np.array([w.hex() for w in wkbs], dtype=object)
    return texts[index].tolist()


def _copy_line(i: int, item: Item, status: str, ewkb: str) -> str:
    """One ``datasets`` row in COPY text format (the same text the column types would store)."""
    rec, inst, p = item
    f = p.dformat
    return "\t".join((
        str(i), rec, inst, field(p.uri), field(p.subdir), _json_ints(p.bands), f.dtype,
        "\\N" if f.nodata is None else float_text(f.nodata), repr(f.min), repr(f.max),
        repr(float(p.real_min)), repr(float(p.real_max)), repr(float(p.exponent)), status, field(p.crs),
        _json_floats(p.transform), str(int(p.width)), str(int(p.height)),
        "[" + ",".join(_json_ints(o) for o in p.overviews) + "]", field(p.footprint_wkt), ewkb,
    )) + "\n"


def write_datasets(conn: Connection, items: Sequence[Item], status: str, geoms: np.ndarray) -> list[int]:
    """Insert dataset rows for ``items`` with footprints ``geoms`` (validated, 2D) and return the new ids,
    in order."""
    if not items:
        return []
    if conn.dialect.name == "postgresql":
        ids = next_ids(conn, "datasets", "id", len(items))
        ewkbs = ewkb_hex(geoms)
        lines = (_copy_line(i, item, status, e) for i, item, e in zip(ids, items, ewkbs, strict=True))
        copy_lines(conn, "datasets", DATASET_COLUMNS, lines)
        return ids
    first = _sqlite_next_id(conn, "datasets")
    ids = list(range(first, first + len(items)))
    distinct, index = _distinct(geoms)
    wkbs = shapely.to_wkb(distinct, output_dimension=2)[index]
    rows = [_sqlite_row(i, item, status, wkb) for i, item, wkb in zip(ids, items, wkbs, strict=True)]
    marks = ", ".join("?" * len(DATASET_COLUMNS))
    conn.exec_driver_sql(f"INSERT INTO datasets ({', '.join(DATASET_COLUMNS)}) VALUES ({marks})", rows)
    insert_rtree(conn, "datasets", ids, geoms)
    return ids


def _sqlite_next_id(conn: Connection, table: str) -> int:
    """The next id of an AUTOINCREMENT table (never a deleted one's). Rows with explicit ids need no
    RETURNING, so they go through the driver's ``executemany`` instead of SQLAlchemy's multi-row statements,
    built parameter by parameter; the writer holds SQLite's write lock, so no one else takes these ids."""
    used = conn.exec_driver_sql(
        f"SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0), "
        f"coalesce((SELECT max(id) FROM {table}), 0))"
    ).scalar_one()
    return int(used) + 1


def _sqlite_row(i: int, item: Item, status: str, wkb: bytes) -> tuple[Any, ...]:
    """One ``datasets`` row as the column types would bind it on SQLite (uuids as 32 hex digits)."""
    rec, inst, p = item
    f = p.dformat
    return (
        i, rec.replace("-", ""), inst.replace("-", ""), p.uri, p.subdir, _json_ints(p.bands), f.dtype,
        None if f.nodata is None else float_text(f.nodata), float(f.min), float(f.max), float(p.real_min),
        float(p.real_max), float(p.exponent), status, p.crs, _json_floats(p.transform), int(p.width),
        int(p.height), "[" + ",".join(_json_ints(o) for o in p.overviews) + "]", p.footprint_wkt, wkb,
    )


def write_claims(conn: Connection, claims: Sequence[Claim]) -> set[tuple[int, int]]:
    """Insert band claims (skipping taken ones); returns the ``(dataset_id, band)`` pairs inserted."""
    if not claims:
        return set()
    ordered = sorted(claims)
    columns = ["container_uri", "subdir", "band", "dataset_id"]
    if conn.dialect.name == "postgresql":
        temp_table_like(conn, "gc_new_claims", "dataset_bands", columns)
        copy_rows(conn, "gc_new_claims", columns, ordered)
        rows = conn.execute(
            sa.text(
                "INSERT INTO dataset_bands (container_uri, subdir, band, dataset_id) "
                "SELECT container_uri, subdir, band, dataset_id FROM gc_new_claims "
                "ORDER BY container_uri, subdir, band, dataset_id "
                "ON CONFLICT DO NOTHING RETURNING dataset_id, band"
            )
        )
        return {(int(d), int(b)) for d, b in rows}
    stmt = (
        dialect_insert(conn, dataset_bands)
        .on_conflict_do_nothing()
        .returning(dataset_bands.c.dataset_id, dataset_bands.c.band)
    )
    params = [dict(zip(columns, c, strict=True)) for c in ordered]
    return {(int(d), int(b)) for d, b in conn.execute(stmt, params)}
