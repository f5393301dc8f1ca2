"""Backend-specific bulk writes for indexing: containers, dataset rows and band claims.

The same three operations on both backends, inside the caller's transaction:

- :func:`write_containers`: insert missing containers, return the uris inserted;
- :func:`write_datasets`: insert dataset rows, return their new ids in order;
- :func:`write_claims`: insert ``dataset_bands`` claims, skipping those already taken, and return the
  ``(dataset_id, band)`` pairs actually inserted.

SQLite uses multi-row INSERTs (``INSERT … ON CONFLICT DO NOTHING RETURNING``) for containers and claims
and plain ``executemany`` with explicit ids for dataset rows. PostgreSQL streams rows
with COPY (:mod:`.pgcopy`): dataset ids are reserved from the sequence first and written explicitly;
containers and claims go through a temporary table, then ``INSERT … SELECT … ON CONFLICT DO NOTHING``.
Dataset rows bypass SQLAlchemy's statements but not its column types: values are encoded by the columns'
own bind processing (:func:`.coltypes.row_encoder`) and footprints by :func:`.coltypes.geometries_ewkb`
(in hex for COPY), the encoders that plain INSERTs use.
Claims are inserted in key order so that concurrent writers lock rows in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..ingest.requests import PreparedDataset
from .coltypes import geometries_ewkb, row_encoder
from .pgcopy import copy_line, copy_lines, copy_rows, next_ids, temp_table_like
from .schema import containers, dataset_bands, datasets
from .spatial import insert_rtree
from .sqlutil import dialect_insert

# Columns of a dataset row, in COPY order.
DATASET_COLUMNS = (
    "id", "record_id", "instance_id", "container_uri", "subdir", "bands", "dtype", "nodata", "min", "max",
    "real_min", "real_max", "exponent", "status", "crs", "transform", "width", "height", "overviews",
    "footprint_wkt", "record_datetime", "footprint_4326",
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


def _dataset_values(item: Item, status: str, when: datetime) -> tuple[Any, ...]:
    """The Python values of one ``datasets`` row (DATASET_COLUMNS without id and footprint), as a plain
    INSERT would receive them; the column types encode them (:func:`.coltypes.row_encoder`)."""
    rec, inst, p = item
    f = p.dformat
    return (
        rec, inst, p.uri, p.subdir, [int(b) for b in p.bands], f.dtype, f.nodata, f.min, f.max,
        float(p.real_min), float(p.real_max), float(p.exponent), status, p.crs, [float(t) for t in p.transform],
        int(p.width), int(p.height), [[int(w), int(h)] for w, h in p.overviews], p.footprint_wkt, when,
    )


_VALUE_COLUMNS = DATASET_COLUMNS[1:-1]  # what _dataset_values gives


def write_datasets(
    conn: Connection, items: Sequence[Item], status: str, geoms: np.ndarray, datetimes: Sequence[datetime]
) -> list[int]:
    """Insert dataset rows for ``items`` with footprints ``geoms`` (validated, 2D) and their records'
    ``datetimes``, and return the new ids, in order."""
    if not items:
        return []
    encode = row_encoder(datasets, _VALUE_COLUMNS, conn.dialect)
    footprints = geometries_ewkb(geoms)
    values = (_dataset_values(item, status, when) for item, when in zip(items, datetimes, strict=True))
    if conn.dialect.name == "postgresql":
        ids = next_ids(conn, "datasets", "id", len(items))
        lines = (
            f"{i}\t{copy_line(encode(v))}\t{wkb.hex()}\n" for i, v, wkb in zip(ids, values, footprints, strict=True)
        )
        copy_lines(conn, "datasets", DATASET_COLUMNS, lines)
        return ids
    first = _sqlite_next_id(conn, "datasets")
    ids = list(range(first, first + len(items)))
    rows = [(i, *encode(v), wkb) for i, v, wkb in zip(ids, values, footprints, strict=True)]
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
