"""Bulk writes on PostgreSQL through ``COPY … FROM STDIN``, inside the caller's transaction.

Multi-row INSERTs spend most of their time building, sending and parsing statements with tens of
thousands of parameters; COPY streams rows in PostgreSQL's text format instead and is several times
faster, which is what indexing a million datasets needs. Rows are formatted as COPY reads them
(:class:`LineReader`). Values, once encoded by their column types, are written as PostgreSQL reads them:
``None`` → ``\\N``, text escaped, floats by ``repr`` (exact); geometries go as hex EWKB (see :mod:`.bulk`).
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
        # translate() maps character by character: ten times the cost of looking for the four first,
        # and text values (uris, WKT, JSON) almost never hold one
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return value.translate(_ESCAPES)
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def copy_line(values: Iterable[Any]) -> str:
    """Values in COPY text format, tab-separated (no line end)."""
    return "\t".join(map(field, values))


def copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``COPY table (columns) FROM STDIN`` with ``rows`` (already in column order)."""
    copy_lines(conn, table, columns, (copy_line(row) + "\n" for row in rows))


class LineReader(io.RawIOBase):
    """A read-only binary stream over text lines, made as they are read.

    COPY pulls the stream chunk by chunk, so lines are formatted while the server parses the previous
    chunk (on another core), and a million rows never sit in memory at once.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        super().__init__()
        self._lines = iter(lines)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        parts, n = [], len(self._pending)
        while n < size:  # characters: a lower bound of the bytes they encode to
            line = next(self._lines, None)
            if line is None:
                break
            parts.append(line)
            n += len(line)
        data = self._pending + "".join(parts).encode()
        got = min(len(data), size)
        buffer[:got] = data[:got]
        self._pending = data[got:]
        return got


COPY_CHUNK = 1 << 18  # bytes per read of the COPY stream


def copy_lines(conn: Connection, table: str, columns: Sequence[str], lines: Iterable[str]) -> None:
    """``COPY table (columns) FROM STDIN`` with ready-made lines (tab-separated, newline-terminated)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", LineReader(lines), size=COPY_CHUNK)
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
