"""Records: a named, dated acquisition (a scene, a product), with str→str tags and an optional AOI.

A record is unique on (name, tags, datetime): the table has a unique constraint on
``(name, datetime, tags_hash)`` where ``tags_hash`` is the sha256 of the tags as sorted JSON. Inserts
use ``ON CONFLICT DO NOTHING`` and then look up what already held the identity, so ``exist_ok=True``
returns the existing record even when another process created it at the same moment.

Time filters are ``(start, end)``: start inclusive, end exclusive, either None for an open bound.
Datetimes are stored in UTC and returned as aware UTC datetimes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from shapely.geometry import MultiPolygon
from sqlalchemy.engine import Connection

from ..entities import Record, check_name, new_id, utc_datetime
from ..errors import AlreadyExists, DependencyError, InvalidArgument, NotFound
from .aois import aoi_id_arg, ensure_aois
from .db.engine import Connected
from .db.filters import (
    check_paging,
    check_pattern,
    check_tag_filters,
    check_time_range,
    match,
    paged,
    tag_clauses,
    time_clauses,
)
from .db.schema import aois, datasets, record_tags, records
from .db.spatial import intersects
from .db.sqlutil import chunks, delete_rows, dialect_insert, in_values, integrity_kind
from .geometry import as_multipolygons, query_area
from .ingest.requests import NewRecord
from .refs import record_id, record_ids

RECORD_COLUMNS = (records.c.id, records.c.name, records.c.datetime, records.c.tags, records.c.aoi_id)


def check_tags(tags: Any, what: str = "tags") -> dict[str, str]:
    """Validate record tags: a mapping of non-empty str keys to str values, no ``*``/``?`` anywhere."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidArgument(f"{what} must be a mapping of str to str, not {tags!r}")
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"{what}: keys must be non-empty strings, not {key!r}")
        if not isinstance(value, str):
            raise InvalidArgument(f"{what}: the value of {key!r} must be a string, not {value!r}")
        for text in (key, value):
            if "*" in text or "?" in text:
                raise InvalidArgument(
                    f"{what}: {text!r} contains '*' or '?', which are reserved for search patterns"
                )
        out[key] = value
    return out


def tags_hash(tags: Mapping[str, str]) -> str:
    """The identity of a tag set: sha256 of its sorted JSON (the same text the tags column holds)."""
    text = json.dumps(dict(tags), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RecordSpec:
    """A validated record to create: ``aoi`` is a MultiPolygon to store, or ``aoi_id`` an existing AOI."""

    name: str
    datetime: datetime
    tags: dict[str, str]
    aoi: MultiPolygon | None = None
    aoi_id: int | None = None

    @property
    def key(self) -> tuple[str, datetime, str]:
        """The record identity: (name, datetime, hash of the tags)."""
        return self.name, self.datetime, tags_hash(self.tags)


def record_specs(items: Sequence[Mapping[str, Any] | NewRecord]) -> list[RecordSpec]:
    """Validate records to create (mappings with name, datetime, tags, aoi — or NewRecords)."""
    raw = []
    for i, item in enumerate(items):
        if isinstance(item, NewRecord):
            fields = {"name": item.name, "datetime": item.datetime, "tags": item.tags, "aoi": item.aoi}
        elif isinstance(item, Mapping):
            unknown = set(item) - {"name", "datetime", "tags", "aoi"}
            if unknown:
                raise InvalidArgument(f"record #{i}: unknown field(s) {sorted(unknown)}; use name, datetime, tags, aoi")
            fields = dict(item)
        else:
            raise InvalidArgument(f"record #{i} must be a mapping or a NewRecord, not {type(item).__name__}")
        if "name" not in fields or "datetime" not in fields:
            raise InvalidArgument(f"record #{i} needs a name and a datetime")
        name = check_name(fields["name"], "record name")
        when = utc_datetime(fields["datetime"], f"datetime of record {name!r}")
        tags = check_tags(fields.get("tags"), f"tags of record {name!r}")
        raw.append((name, when, tags, fields.get("aoi")))
    geometric = [i for i, r in enumerate(raw) if r[3] is not None and not isinstance(r[3], int)]
    geoms = as_multipolygons([raw[i][3] for i in geometric], "record AOI")
    shapes = dict(zip(geometric, geoms, strict=True))
    specs = []
    for i, (name, when, tags, aoi) in enumerate(raw):
        if i in shapes:
            specs.append(RecordSpec(name, when, tags, aoi=shapes[i]))
        else:
            specs.append(RecordSpec(name, when, tags, aoi_id=None if aoi is None else aoi_id_arg(aoi)))
    return specs


def record_from_row(row: Any) -> Record:
    """A Record from a row selected with RECORD_COLUMNS."""
    return Record(id=row.id, name=row.name, datetime=row.datetime, tags=row.tags, aoi_id=row.aoi_id)


def _describe(spec: RecordSpec) -> str:
    return f"{spec.name!r} at {spec.datetime.isoformat()} with tags {spec.tags}"


def insert_records(conn: Connection, specs: Sequence[RecordSpec], *, exist_ok: bool) -> list[Record]:
    """Create records in bulk (inside the caller's transaction); see the module docstring."""
    if not specs:
        return []
    aoi_ids: list[int | None] = [s.aoi_id for s in specs]
    with_geom = [i for i, s in enumerate(specs) if s.aoi is not None]
    new_aois: set[int] = set()
    if with_geom:
        arr = np.empty(len(with_geom), dtype=object)
        arr[:] = [specs[i].aoi for i in with_geom]
        found_aois, new_aois = ensure_aois(conn, arr)
        for i, aoi in zip(with_geom, found_aois, strict=True):
            aoi_ids[i] = aoi
    wanted = sorted({a for s, a in zip(specs, aoi_ids, strict=True) if s.aoi_id is not None and a is not None})
    if wanted:
        found = set(conn.execute(sa.select(aois.c.id).where(in_values(aois.c.id, wanted, conn.dialect.name))).scalars())
        missing = [a for a in wanted if a not in found]
        if missing:
            raise NotFound(f"no AOI with id {missing[0]}: create it with create_aoi(geometry) or pass a geometry")

    keys = [s.key for s in specs]
    rows = [
        {"id": new_id(), "name": s.name, "datetime": s.datetime, "tags": s.tags, "tags_hash": k[2], "aoi_id": a}
        for s, k, a in zip(specs, keys, aoi_ids, strict=True)
    ]
    stmt = dialect_insert(conn, records).on_conflict_do_nothing().returning(records.c.id)
    # Sorted by identity: concurrent writers of overlapping record sets take locks in the same order.
    ordered = sorted(rows, key=lambda r: (r["name"], r["datetime"], r["tags_hash"]))
    inserted = {str(i) for i in conn.execute(stmt, ordered).scalars()}
    # AOIs created for records that already existed (the existing record keeps its own AOI) go again.
    unused = new_aois - {r["aoi_id"] for r in rows if r["id"] in inserted}
    for part in chunks(sorted(unused)):
        conn.execute(aois.delete().where(aois.c.id.in_(part), ~sa.exists().where(records.c.aoi_id == aois.c.id)))
    tag_rows = [
        {"record_id": r["id"], "key": k, "value": v} for r in rows if r["id"] in inserted for k, v in r["tags"].items()
    ]
    if tag_rows:
        conn.execute(record_tags.insert(), tag_rows)

    result: list[Record | None] = [
        Record(r["id"], r["name"], r["datetime"], r["tags"], r["aoi_id"]) if r["id"] in inserted else None
        for r in rows
    ]
    first_new = {keys[i]: i for i in range(len(rows) - 1, -1, -1) if result[i] is not None}
    pending = [i for i, rec in enumerate(result) if rec is None]
    if pending:
        existing = _existing_by_key(conn, [keys[i] for i in pending])
        for i in pending:
            if not exist_ok:
                found = existing.get(keys[i])
                what = f" (id {found.id})" if found is not None else " earlier in this request"
                raise AlreadyExists(
                    f"record {_describe(specs[i])} already exists{what}: pass exist_ok=True to reuse it"
                )
            if keys[i] in existing:
                result[i] = existing[keys[i]]
            else:  # the same record twice in this request: the first one was inserted above
                result[i] = result[first_new[keys[i]]]
    return [r for r in result if r is not None]


RecordKey = tuple[str, datetime, str]


def _existing_by_key(conn: Connection, keys: list[RecordKey]) -> dict[RecordKey, Record]:
    wanted = set(keys)
    names = sorted({k[0] for k in keys})
    out = {}
    for part in chunks(names):
        stmt = sa.select(*RECORD_COLUMNS, records.c.tags_hash).where(records.c.name.in_(part))
        for row in conn.execute(stmt):
            key = (row.name, row.datetime, row.tags_hash)
            if key in wanted:
                out[key] = record_from_row(row)
    return out


def record_clauses(
    conn: Connection,
    *,
    name: Any = None,
    tags: Any = None,
    time: Any = None,
    case_insensitive: bool = False,
    area_driven: bool = False,
) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses on ``records`` for the name, tag and time filters (validated here; see list_records).

    ``area_driven``: an area narrows the query, so tags are looked up per record the area keeps (see
    :func:`.db.filters.tag_clauses`).
    """
    if not isinstance(case_insensitive, bool):
        raise InvalidArgument(f"case_insensitive must be True or False, not {case_insensitive!r}")
    clauses: list[sa.ColumnElement[bool]] = []
    if name is not None:
        clauses.append(match(records.c.name, check_pattern(name, "record name pattern"), case_insensitive))
    clauses += tag_clauses(record_tags, records.c.id, check_tag_filters(tags), case_insensitive, area_driven)
    clauses += time_clauses(records.c.datetime, check_time_range(time))
    return clauses


def records_in_area(conn: Connection, clauses: Sequence[sa.ColumnElement[bool]], area: Any) -> sa.Select[Any]:
    """The records matching ``clauses`` whose AOI intersects ``area``, ordered by datetime then id.

    The area drives: the AOIs it meets are found through their spatial index, then each AOI's records
    through the ``(aoi_id, datetime)`` index. On PostgreSQL a LATERAL subquery per AOI says so (left to its
    default costs, the planner reads every record of the time window and hashes them against the AOIs).
    """
    in_area = intersects(conn, aois, area)
    if conn.dialect.name != "postgresql":
        stmt = sa.select(*RECORD_COLUMNS).where(records.c.aoi_id.in_(sa.select(aois.c.id).where(in_area)), *clauses)
        return stmt.order_by(records.c.datetime, records.c.id)
    per_aoi = sa.select(*RECORD_COLUMNS).where(records.c.aoi_id == aois.c.id, *clauses).offset(0).lateral("r")
    stmt = sa.select(*per_aoi.c).select_from(aois.join(per_aoi, sa.true())).where(in_area)
    return stmt.order_by(per_aoi.c.datetime, per_aoi.c.id)


def load_record(conn: Connection, rid: str, *, for_update: bool = False) -> Record:
    """The record ``rid`` (locked for update on PostgreSQL if asked), or NotFound."""
    stmt = sa.select(*RECORD_COLUMNS).where(records.c.id == rid)
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(f"no record with id {rid!r}")
    return record_from_row(row)


class RecordMixin(Connected):
    """Records: create, read, search, tag, delete."""

    def create_record(
        self,
        name: str,
        datetime: Any,
        tags: Mapping[str, str] | None = None,
        aoi: Any = None,
        exist_ok: bool = False,
    ) -> Record:
        """Create a record. ``aoi``: a (Multi)Polygon in EPSG:4326 (stored de-duplicated) or an AOI id.

        Raises AlreadyExists if a record with the same name, datetime and tags exists. With
        ``exist_ok=True`` that record is returned instead, as it is: a record's identity is its name, tags
        and datetime, its AOI is not part of it, so an ``aoi`` differing from the existing record's is not
        stored (no AOI is left behind) and the existing AOI is kept.
        """
        item = {"name": name, "datetime": datetime, "tags": tags, "aoi": aoi}
        return self.create_records([item], exist_ok=exist_ok)[0]

    def create_records(
        self, items: Sequence[Mapping[str, Any] | NewRecord], exist_ok: bool = False
    ) -> list[Record]:
        """Create many records in one transaction (all or nothing), in the order given.

        Items are mappings with ``name``, ``datetime``, optional ``tags`` and ``aoi`` — or NewRecords.
        ``exist_ok`` as in create_record (a record given twice is created once, with the first one's AOI).
        """
        if isinstance(items, Mapping | str) or not isinstance(items, Iterable):
            raise InvalidArgument("create_records takes a list of records (mappings or NewRecord)")
        specs = record_specs(list(items))
        with self._tx() as conn:
            return insert_records(conn, specs, exist_ok=bool(exist_ok))

    def get_record(self, record: Record | str) -> Record:
        """The record with this id. Raises NotFound."""
        rid = record_id(record)
        with self._tx(write=False) as conn:
            return load_record(conn, rid)

    def list_records(
        self,
        name: str | None = None,
        tags: Mapping[str, str | None] | None = None,
        time: tuple[Any, Any] | None = None,
        aoi: Any = None,
        case_insensitive: bool = False,
        limit: int | None = None,
        page: int = 0,
    ) -> list[Record]:
        """Records matching every filter given, ordered by datetime then id.

        ``name``: pattern with ``*``/``?``; ``tags``: ``{key: value-or-pattern}``, ``{key: None}`` for "has
        key", keys ANDed; ``time``: ``(start, end)`` start inclusive, end exclusive, None = open;
        ``aoi``: geometry in EPSG:4326 that the record's AOI must intersect (records without AOI never
        match); ``case_insensitive`` applies to the name and the tag value patterns (tag keys match exactly);
        ``limit``/``page``: page ``page`` (0-based) of
        ``limit`` records.
        """
        lim, offset = check_paging(limit, page)
        area = None if aoi is None else query_area(aoi)
        with self._tx(write=False) as conn:
            clauses = record_clauses(
                conn, name=name, tags=tags, time=time, case_insensitive=case_insensitive, area_driven=area is not None
            )
            if area is None:
                stmt = sa.select(*RECORD_COLUMNS).where(*clauses).order_by(records.c.datetime, records.c.id)
            else:
                stmt = records_in_area(conn, clauses, area)
            return [record_from_row(r) for r in conn.execute(paged(stmt, lim, offset))]

    def get_record_aoi(self, record: Record | str) -> MultiPolygon | None:
        """The AOI of a record (EPSG:4326), or None if it has none. Raises NotFound."""
        rid = record_id(record)
        with self._tx(write=False) as conn:
            row = conn.execute(
                sa.select(records.c.aoi_id, aois.c.geom)
                .select_from(records.outerjoin(aois, aois.c.id == records.c.aoi_id))
                .where(records.c.id == rid)
            ).first()
        if row is None:
            raise NotFound(f"no record with id {rid!r}")
        return row.geom

    def add_record_tags(self, record: Record | str, tags: Mapping[str, str]) -> Record:
        """Add tags to a record (a key it already has gets the new value). Returns the updated record.

        Raises AlreadyExists if another record then has the same name, datetime and tags.
        """
        rid = record_id(record)
        new = check_tags(tags)
        with self._tx() as conn:
            rec = load_record(conn, rid, for_update=True)
            merged = {**rec.tags, **new}
            if merged == rec.tags:
                return rec
            self._set_tags(conn, rec, merged)
            if new:
                mine = record_tags.c.record_id == rid
                conn.execute(record_tags.delete().where(mine, record_tags.c.key.in_(list(new))))
                conn.execute(record_tags.insert(), [{"record_id": rid, "key": k, "value": v} for k, v in new.items()])
            return load_record(conn, rid)

    def remove_record_tags(self, record: Record | str, keys: Iterable[str]) -> Record:
        """Remove tag keys from a record (absent keys are ignored). Returns the updated record."""
        rid = record_id(record)
        if isinstance(keys, str) or not isinstance(keys, Iterable):
            raise InvalidArgument(f"keys must be a list of tag keys, not {keys!r}")
        keys = list(keys)
        for key in keys:
            if not isinstance(key, str):
                raise InvalidArgument(f"tag keys are strings, not {key!r}")
        with self._tx() as conn:
            rec = load_record(conn, rid, for_update=True)
            remaining = {k: v for k, v in rec.tags.items() if k not in keys}
            if remaining == rec.tags:
                return rec
            self._set_tags(conn, rec, remaining)
            conn.execute(record_tags.delete().where(record_tags.c.record_id == rid, record_tags.c.key.in_(keys)))
            return load_record(conn, rid)

    @staticmethod
    def _set_tags(conn: Connection, rec: Record, tags: dict[str, str]) -> None:
        try:
            with conn.begin_nested():
                conn.execute(
                    records.update().where(records.c.id == rec.id).values(tags=tags, tags_hash=tags_hash(tags))
                )
        except sa.exc.IntegrityError as exc:
            if integrity_kind(exc) != "unique":
                raise
            raise AlreadyExists(
                f"another record named {rec.name!r} at {rec.datetime.isoformat()} already has the tags {tags}:"
                " records are unique on (name, tags, datetime)"
            ) from None

    def delete_records(self, ids: Iterable[Record | str], no_fail: bool = False) -> list[str]:
        """Delete records (and their tags) and return the ids deleted.

        A record some dataset refers to cannot be deleted: DependencyError naming them, nothing deleted —
        or, with ``no_fail=True``, the other records are deleted and those (and unknown ids) skipped, also
        when a dataset is indexed for one of them by another process while this call runs.
        Unknown ids raise NotFound unless ``no_fail``.
        """
        if no_fail:
            wanted = []
            for r in _iterable(ids):
                try:
                    wanted.append(record_id(r))
                except NotFound:
                    continue
            wanted = list(dict.fromkeys(wanted))
        else:
            wanted = record_ids(ids)
        if not wanted:
            return []
        with self._tx() as conn:
            existing: set[str] = set()
            used: set[str] = set()
            for part in chunks(wanted):
                found = sa.select(records.c.id).where(records.c.id.in_(part))
                existing.update(str(i) for i in conn.execute(found).scalars())
                users = sa.select(datasets.c.record_id).distinct().where(datasets.c.record_id.in_(part))
                used.update(str(i) for i in conn.execute(users).scalars())
            missing = [i for i in wanted if i not in existing]
            if missing and not no_fail:
                raise NotFound(f"no record with id {missing[0]!r}: nothing was deleted")
            blocked = [i for i in wanted if i in used]
            if blocked and not no_fail:
                shown = ", ".join(blocked[:5]) + (f" and {len(blocked) - 5} more" if len(blocked) > 5 else "")
                raise DependencyError(
                    f"{len(blocked)} record(s) are used by datasets and cannot be deleted: {shown}. Delete their "
                    "datasets first, or pass no_fail=True to delete the others. Nothing was deleted."
                )
            deletable = [i for i in wanted if i in existing and i not in used]
            deleted, raced = delete_rows(conn, records.c.id, deletable)
            if raced and not no_fail:
                raise DependencyError(
                    f"a dataset was just indexed for record {raced[0]} while deleting it: nothing was deleted. Delete "
                    "its datasets first and try again, or pass no_fail=True to delete the others."
                )
            return deleted


def _iterable(values: Any) -> list[Any]:
    if isinstance(values, str | Record) or not isinstance(values, Iterable):
        raise InvalidArgument(f"give a list of records or record ids, not {values!r}")
    return list(values)
