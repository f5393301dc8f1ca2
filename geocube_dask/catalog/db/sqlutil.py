"""Small SQL helpers that hide backend differences: upsert-style inserts, long IN lists, error kinds."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ...errors import NotFound

_SQLITE = sqlite.dialect()


def dialect_insert(conn: Connection, table: sa.Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing`` on the connection's backend."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


T = TypeVar("T")


def chunks(values: Sequence[T], size: int = 5000) -> Iterable[Sequence[T]]:
    """Split ``values`` so that IN lists stay far below SQLite's bound-parameter limit."""
    for i in range(0, len(values), size):
        yield values[i : i + size]


def check_ids_exist(
    conn: Connection, column: sa.Column[Any], ids: Sequence[Any], what: str, hint: str = "", *, key_share: bool = False
) -> None:
    """NotFound naming the first of ``ids`` that ``column`` (a table's id) does not hold.

    ``key_share``: on PostgreSQL, also lock the rows ``FOR KEY SHARE`` until the transaction ends, for a
    caller about to insert rows that refer to them. A transaction deleting one of them (tidy) then either
    waits for the caller's commit and sees the references, or has deleted it already: the lock waits for
    that deletion to commit and the row is reported missing here, rather than the caller's insert failing
    later on the foreign key with a raw IntegrityError.
    """
    found: set[str] = set()  # compared as text: ids may come back as UUID objects or strings
    for part in chunks(list(ids)):
        stmt = sa.select(column).where(column.in_(part))
        if key_share and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(read=True, key_share=True)
        found.update(str(v) for v in conn.execute(stmt).scalars())
    missing = [i for i in ids if str(i) not in found]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise NotFound(f"no {what} with id {missing[0]!r}{more}{hint}")


def in_values(column: sa.ColumnElement[Any], values: Sequence[Any], dialect_name: str) -> sa.ColumnElement[bool]:
    """``column IN values`` for lists of any length (SQLite: through ``json_each`` beyond a few thousand)."""
    if dialect_name != "sqlite" or len(values) <= 5000:
        return column.in_(list(values))
    encode = column.type.bind_processor(_SQLITE)  # json_each yields the values as the column stores them
    if encode is not None:
        values = [encode(v) for v in values]
    table = sa.func.json_each(sa.literal(json.dumps(list(values)))).table_valued("value")
    return column.in_(sa.select(table.c.value))


def integrity_kind(exc: sa.exc.IntegrityError) -> str:
    """``"unique"``, ``"foreign_key"`` or ``"other"`` for an IntegrityError on either backend."""
    code = getattr(exc.orig, "pgcode", None)
    if code == "23505":
        return "unique"
    if code == "23503":
        return "foreign_key"
    text = str(exc.orig).upper()
    if "UNIQUE" in text or "PRIMARY KEY" in text:
        return "unique"
    if "FOREIGN KEY" in text:
        return "foreign_key"
    return "other"


def constraint_name(exc: sa.exc.IntegrityError) -> str:
    """The violated constraint's name on PostgreSQL (or the SQLite message, which names the columns)."""
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return name or str(exc.orig)


def delete_rows(conn: Connection, key: sa.Column[Any], keys: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Delete the rows of ``key``'s table whose key is in ``keys``: ``(deleted, refused)``, in ``keys`` order.

    The caller has checked that nothing refers to these rows, but on PostgreSQL another transaction may
    have added a reference since (a dataset indexed for a record being deleted): the foreign key then
    refuses the DELETE. So each chunk is deleted inside a SAVEPOINT and a refused chunk is retried row by
    row, each in its own SAVEPOINT: the rows a foreign key still refuses are reported, not raised. Keys
    that no row holds (any more) are in neither list.
    """
    deleted: set[Any] = set()
    refused: set[Any] = set()
    table = key.table
    for part in chunks(list(keys)):
        try:
            with conn.begin_nested():
                deleted.update(conn.execute(table.delete().where(key.in_(part)).returning(key)).scalars())
            continue
        except sa.exc.IntegrityError as exc:
            if integrity_kind(exc) != "foreign_key":
                raise
        for one in part:
            try:
                with conn.begin_nested():
                    deleted.update(conn.execute(table.delete().where(key == one).returning(key)).scalars())
            except sa.exc.IntegrityError as exc:
                if integrity_kind(exc) != "foreign_key":
                    raise
                refused.add(one)
    return [k for k in keys if k in deleted], [k for k in keys if k in refused]
