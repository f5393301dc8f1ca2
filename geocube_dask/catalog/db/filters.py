"""Search filters shared by the catalogue's list/find operations: names, tags, time ranges, paging.

Name and tag-value patterns use ``*`` (any run of characters) and ``?`` (exactly one character); every
other character matches itself, including SQL's ``%``, ``_`` and the escape character, which are escaped
before the pattern becomes a ``LIKE``. A pattern without wildcards is a plain equality (index-friendly).

``case_insensitive`` compares ``lower(value)`` with ``lower(pattern)``. PostgreSQL's ``lower`` follows the
database's ctype; SQLite's built-in ``lower`` only knows ASCII, so SQLite connections get ``gc_lower``
(Python's ``str.lower``) and :func:`ci_lower` compiles to it there. LIKE itself is case-sensitive on both
(SQLite runs with ``PRAGMA case_sensitive_like=ON``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction

from ...entities import utc_datetime
from ...errors import InvalidArgument

LIKE_ESCAPE = "!"
MAX_LIMIT = 1_000_000
MAX_OFFSET = 2**53

S = TypeVar("S", bound=sa.Select[Any])


class ci_lower(GenericFunction[str]):  # noqa: N801 - SQL function naming
    """Unicode-aware ``lower()``: ``lower`` on PostgreSQL, the registered ``gc_lower`` on SQLite."""

    type = sa.Text()
    inherit_cache = True
    name = "ci_lower"


@compiles(ci_lower)
def _ci_lower_default(element: ci_lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(ci_lower, "sqlite")
def _ci_lower_sqlite(element: ci_lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"gc_lower({compiler.process(element.clauses, **kw)})"


def unicode_lower(value: str | None) -> str | None:
    """SQLite function ``gc_lower``: ``str.lower`` (SQLite's own ``lower`` ignores non-ASCII letters)."""
    return None if value is None else str(value).lower()


def check_pattern(value: Any, what: str = "name pattern") -> str:
    """A name pattern must be a string; anything else is a caller mistake."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string (with optional * and ? wildcards), not {value!r}")
    return value


def has_wildcards(pattern: str) -> bool:
    """True when the pattern needs LIKE (contains ``*`` or ``?``)."""
    return "*" in pattern or "?" in pattern


def like_pattern(pattern: str) -> str:
    """Translate a ``*``/``?`` pattern into a LIKE pattern escaped with :data:`LIKE_ESCAPE`."""
    out = []
    for ch in pattern:
        if ch in (LIKE_ESCAPE, "%", "_"):
            out.append(LIKE_ESCAPE + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


def match(column: sa.ColumnElement[str], pattern: str, case_insensitive: bool = False) -> sa.ColumnElement[bool]:
    """``column`` matches ``pattern`` (wildcards ``*``/``?``; everything else literal)."""
    if case_insensitive:
        return ci_lower(column).like(ci_lower(like_pattern(pattern)), escape=LIKE_ESCAPE)
    if not has_wildcards(pattern):
        return column == pattern
    return column.like(like_pattern(pattern), escape=LIKE_ESCAPE)


def check_tag_filters(tags: Any) -> dict[str, str | None]:
    """Validate ``{key: value-pattern | None}`` (``None``: the key exists, whatever its value)."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidArgument(f"tag filters must be a mapping {{key: value pattern or None}}, not {tags!r}")
    out: dict[str, str | None] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"tag filter keys must be non-empty strings, not {key!r}")
        if value is not None and not isinstance(value, str):
            raise InvalidArgument(f"tag filter {key!r}: the value must be a string pattern or None, not {value!r}")
        out[key] = value
    return out


def tag_clauses(
    tags_table: sa.Table,
    record_id: sa.ColumnElement[Any],
    filters: Mapping[str, str | None],
    case_insensitive: bool = False,
    per_record: bool = False,
) -> list[sa.ColumnElement[bool]]:
    """One EXISTS per key (so several keys are ANDed), answered by the ``(key, value, record)`` index. Keys
    match exactly; ``case_insensitive`` applies to the value patterns.

    By default the planner may turn each EXISTS into a join: the right plan when the tags are what narrows
    the search. ``per_record`` keeps each a probe of the index per record that the other filters keep
    (``OFFSET 0`` in the subquery: PostgreSQL does not flatten it), for queries that an area narrows:
    PostgreSQL would otherwise read and hash every record holding a common tag value (tens of thousands
    in a large catalogue) for each query, as its default costs rate an index probe far above what it
    costs on a catalogue held in memory.
    """
    clauses = []
    for key, value in filters.items():
        cond = [tags_table.c.record_id == record_id, tags_table.c.key == key]
        if value is not None:
            cond.append(match(tags_table.c.value, value, case_insensitive))
        if per_record:
            clauses.append(sa.select(sa.literal(1)).where(*cond).offset(0).exists())
        else:
            clauses.append(sa.exists().where(*cond))
    return clauses


def check_time_range(time: Any) -> tuple[datetime | None, datetime | None]:
    """``(start, end)``: start inclusive, end exclusive, either may be None (open)."""
    if time is None:
        return None, None
    if isinstance(time, str | bytes) or not isinstance(time, Sequence) or len(time) != 2:
        raise InvalidArgument(
            f"time must be a (start, end) pair (start inclusive, end exclusive, None for open), not {time!r}"
        )
    start = None if time[0] is None else utc_datetime(time[0], "time range start")
    end = None if time[1] is None else utc_datetime(time[1], "time range end")
    if start is not None and end is not None and start >= end:
        raise InvalidArgument(f"time range start {start.isoformat()} must be before its end {end.isoformat()}")
    return start, end


def time_clauses(
    column: sa.ColumnElement[datetime], time: tuple[datetime | None, datetime | None]
) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses for a validated ``(start, end)`` range: start inclusive, end exclusive."""
    start, end = time
    clauses = []
    if start is not None:
        clauses.append(column >= start)
    if end is not None:
        clauses.append(column < end)
    return clauses


def check_paging(limit: Any, page: Any) -> tuple[int | None, int]:
    """Validate ``limit`` (None or 1..MAX_LIMIT) and ``page`` (0-based) → (limit, offset)."""
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT
    ):
        raise InvalidArgument(f"limit must be None or an integer from 1 to {MAX_LIMIT}, not {limit!r}")
    if isinstance(page, bool) or not isinstance(page, int) or page < 0:
        raise InvalidArgument(f"page must be an integer >= 0, not {page!r}")
    if page and limit is None:
        raise InvalidArgument(f"page={page} needs a limit (the page size)")
    offset = page * (limit or 0)
    if offset > MAX_OFFSET:
        raise InvalidArgument(f"page {page} of {limit} rows is beyond any catalogue: ask for an earlier page")
    return limit, offset


def paged(stmt: S, limit: int | None, offset: int) -> S:
    """Apply a validated limit/offset to a SELECT."""
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return stmt
