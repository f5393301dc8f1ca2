"""Bulk writes on PostgreSQL through ``COPY … FROM STDIN``, inside the caller's transaction.

Multi-row INSERTs spend most of their time building, sending and parsing statements with tens of
thousands of parameters; COPY streams rows in PostgreSQL's text format instead and is several times
faster, which is what indexing a million datasets needs. Values are written as PostgreSQL reads them:
``None`` → ``\\N``, text escaped, floats by ``repr`` (exact), geometries as EWKT (``SRID=4326;…``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def field(value: Any) -> str:
    """One value in COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``COPY table (columns) FROM STDIN`` with ``rows`` (already in column order)."""
    copy_lines(conn, table, columns, ("\t".join(map(field, row)) + "\n" for row in rows))


def copy_lines(conn: Connection, table: str, columns: Sequence[str], lines: Iterable[str]) -> None:
    """``COPY table (columns) FROM STDIN`` with ready-made lines (tab-separated, newline-terminated)."""
    buffer = io.StringIO()
    buffer.writelines(lines)
    buffer.seek(0)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
    finally:
        cursor.close()


def temp_table_like(conn: Connection, name: str, source: str, columns: Sequence[str]) -> None:
    """A temporary table with some columns of ``source``, dropped at the end of the transaction."""
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    conn.execute(
        sa.text(f"CREATE TEMP TABLE {name} ON COMMIT DROP AS SELECT {', '.join(columns)} FROM {source} WITH NO DATA")
    )


def next_ids(conn: Connection, table: str, column: str, n: int) -> list[int]:
    """Reserve ``n`` values of the sequence behind ``table.column`` (an autoincrement key)."""
    if n == 0:
        return []
    rows = conn.execute(
        sa.text("SELECT nextval(pg_get_serial_sequence(:table, :column)) FROM generate_series(1, :n)"),
        {"table": table, "column": column, "n": n},
    )
    return [int(i) for i in rows.scalars()]
