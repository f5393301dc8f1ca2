"""Datasets and containers: reading, listing, status, deletion, and the query behind every cube.

A *container* is a file (``uri``); a *dataset* is some bands of one subdir of a container, indexed for
one record and one instance. Containers are created with their first dataset; a *managed* container
(written by consolidation) whose last dataset is deleted is removed and reported so that its file can be
deleted; an unmanaged container's row goes too, its file is never ours to touch. Inserting is
:mod:`.insertion`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..entities import Container, Dataset, DatasetStatus, Instance, Record
from ..errors import InvalidArgument, NotFound
from .db import schema
from .db.dataset_rows import DATASET_COLUMNS, check_status, dataset_columns, datasets_from_rows, load_datasets
from .db.engine import Connected
from .db.filters import check_paging, check_pattern, check_time_range, match, paged, time_clauses
from .db.schema import containers, datasets
from .db.schema import records as records_table
from .db.spatial import exact_last, intersects
from .db.sqlutil import check_ids_exist, chunks, in_values
from .geometry import query_area
from .ingest.requests import PreparedDataset
from .insertion import insert_datasets
from .jobs import refuse_locked
from .records import RECORD_COLUMNS, record_clauses
from .refs import dataset_ids, instance_id, record_id, record_ids


def _statuses(status: Any) -> list[str] | None:
    if status is None:
        return None
    if isinstance(status, str | DatasetStatus):
        return [check_status(status).value]
    if not isinstance(status, Iterable):
        raise InvalidArgument(f"status must be a status, a list of statuses or None, not {status!r}")
    return [check_status(s).value for s in status]


def _instance_ids(value: Any) -> list[str]:
    if isinstance(value, Instance | str):
        return [instance_id(value)]
    if not isinstance(value, Iterable):
        raise InvalidArgument(f"give an instance, an instance id or a list of them, not {value!r}")
    out = list(dict.fromkeys(instance_id(v) for v in value))
    if not out:
        raise InvalidArgument("give at least one instance")
    return out


def _cached_id(cache: dict[Any, str], value: Any, resolve: Callable[[Any], str]) -> str:
    """``resolve(value)``, computed once per distinct id string (items often share records/instances)."""
    key = value.id if isinstance(value, Record | Instance) else value
    if type(key) is not str:
        return resolve(value)
    found = cache.get(key)
    if found is None:
        found = cache[key] = resolve(key)
    return found


# Record columns of find_datasets rows; tags as text, parsed once per record rather than once per row.
R_LABELS = tuple(
    (sa.type_coerce(c, sa.Text) if c.name == "tags" else c).label(f"r_{c.name}") for c in RECORD_COLUMNS
)


@lru_cache(maxsize=4096)
def _parsed_tags(text: str) -> dict[str, str]:
    """Record tags from their JSON text; records share a few tag sets, so each is parsed once (callers
    copy the dict: a Record's tags are its own)."""
    return json.loads(text)


def delete_dataset_rows(conn: Connection, ids: Sequence[int]) -> list[str]:
    """Delete datasets inside the caller's transaction, and the containers they leave empty; return the
    uris of the emptied *managed* containers (sorted), whose files are then the caller's to delete."""
    uris: set[str] = set()
    for part in chunks(ids):
        uris.update(
            conn.execute(sa.select(datasets.c.container_uri).distinct().where(datasets.c.id.in_(part))).scalars()
        )
        conn.execute(datasets.delete().where(datasets.c.id.in_(part)))
    emptied: list[str] = []
    for part in chunks(sorted(uris)):
        empty = ~sa.exists().where(datasets.c.container_uri == containers.c.uri)
        rows = conn.execute(
            containers.delete()
            .where(containers.c.uri.in_(part), empty)
            .returning(containers.c.uri, containers.c.managed)
        ).all()
        emptied += [r.uri for r in rows if r.managed]
    return sorted(emptied)


class DatasetMixin(Connected):
    """Containers and datasets: bulk add, read, list, status, delete, and find_datasets for cubes."""

    def add_datasets(
        self,
        items: Sequence[tuple[Record | str, Instance | str, PreparedDataset]],
        status: DatasetStatus | str = DatasetStatus.ACTIVE,
        managed: bool = False,
    ) -> list[Dataset]:
        """Insert already-prepared datasets in one transaction (no file access), in order.

        Each item is ``(record, instance, PreparedDataset)`` (entities or ids). Re-adding an identical
        dataset returns the existing one; bands claimed by a different dataset raise IncompatibleDataset.
        Containers are created as ``managed`` (written by the geocube) or not. All or nothing.
        """
        st = check_status(status)
        if not isinstance(managed, bool):
            raise InvalidArgument(f"managed must be True or False, not {managed!r}")
        if isinstance(items, str) or not isinstance(items, Iterable):
            raise InvalidArgument("add_datasets takes a list of (record, instance, PreparedDataset)")
        resolved = []
        canonical: dict[str, str] = {}  # many items share a record/instance: check each id once
        for n, item in enumerate(items):
            if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 3:
                raise InvalidArgument(f"dataset #{n} must be a (record, instance, PreparedDataset) triple")
            rec = _cached_id(canonical, item[0], record_id)
            inst = _cached_id(canonical, item[1], instance_id)
            resolved.append((rec, inst, item[2]))
        with self._tx() as conn:
            return insert_datasets(conn, resolved, st, managed)

    def get_dataset(self, dataset: Dataset | int) -> Dataset:
        """The dataset with this id. Raises NotFound."""
        ids = dataset_ids([dataset])
        with self._tx(write=False) as conn:
            found = load_datasets(conn, ids)
        if not found:
            raise NotFound(f"no dataset with id {ids[0]}")
        return found[0]

    def list_datasets(
        self,
        instance: Instance | str | None = None,
        records: Iterable[Record | str] | None = None,
        status: DatasetStatus | str | Iterable[DatasetStatus | str] | None = None,
        uri: str | None = None,
        aoi: Any = None,
        limit: int | None = None,
        page: int = 0,
    ) -> list[Dataset]:
        """Datasets matching every filter given, ordered by id.

        ``uri``: exact container uri, or a pattern with ``*``/``?``; ``aoi``: EPSG:4326 geometry the
        footprint must intersect; ``status``: one status or a list.
        """
        lim, offset = check_paging(limit, page)
        stmt = sa.select(*DATASET_COLUMNS).order_by(datasets.c.id)
        if instance is not None:
            stmt = stmt.where(datasets.c.instance_id == instance_id(instance))
        statuses = _statuses(status)
        if statuses is not None:
            stmt = stmt.where(datasets.c.status.in_(statuses))
        if uri is not None:
            stmt = stmt.where(match(datasets.c.container_uri, check_pattern(uri, "uri")))
        area = None if aoi is None else query_area(aoi)
        with self._tx(write=False) as conn:
            if records is not None:
                stmt = stmt.where(in_values(datasets.c.record_id, record_ids(records), conn.dialect.name))
            if area is not None:
                stmt = stmt.where(intersects(conn, datasets, area))
            return datasets_from_rows(conn.execute(paged(stmt, lim, offset)).all())

    def set_datasets_status(self, ids: Iterable[Dataset | int], status: DatasetStatus | str) -> None:
        """Set the status of datasets (all or nothing; unknown ids raise NotFound)."""
        wanted = dataset_ids(ids)
        st = check_status(status)
        with self._tx() as conn:
            check_ids_exist(conn, datasets.c.id, wanted, "dataset", ": nothing was changed")
            for part in chunks(wanted):
                conn.execute(datasets.update().where(datasets.c.id.in_(part)).values(status=st.value))

    def delete_datasets(self, ids: Iterable[Dataset | int]) -> list[str]:
        """Delete datasets; return the uris of the *managed* containers left without dataset.

        Those containers are removed from the catalogue; deleting their files is the caller's (the
        consolidation clean-up's) job. Emptied unmanaged containers are removed too, their files untouched.
        Unknown ids raise NotFound and datasets a job holds (a consolidation running over them) raise
        JobConflict naming the job; nothing is deleted then.
        """
        wanted = dataset_ids(ids)
        if not wanted:
            return []
        with self._tx() as conn:
            check_ids_exist(conn, datasets.c.id, wanted, "dataset", ": nothing was changed")
            refuse_locked(conn, wanted, "delete these datasets")
            return delete_dataset_rows(conn, wanted)

    def get_container(self, uri: str) -> Container:
        """The container (file) ``uri``. Raises NotFound."""
        if not isinstance(uri, str):
            raise InvalidArgument(f"a container uri is a string, not {uri!r}")
        with self._tx(write=False) as conn:
            row = conn.execute(sa.select(containers).where(containers.c.uri == uri)).first()
        if row is None:
            raise NotFound(f"no container {uri!r}: containers are created by indexing datasets")
        return Container(row.uri, bool(row.managed))

    def list_containers(
        self, uri: str | None = None, managed: bool | None = None, limit: int | None = None, page: int = 0
    ) -> list[Container]:
        """Containers (uri pattern with ``*``/``?``; managed or not), ordered by uri."""
        lim, offset = check_paging(limit, page)
        stmt = sa.select(containers).order_by(containers.c.uri)
        if uri is not None:
            stmt = stmt.where(match(containers.c.uri, check_pattern(uri, "uri")))
        if managed is not None:
            if not isinstance(managed, bool):
                raise InvalidArgument(f"managed must be True, False or None, not {managed!r}")
            stmt = stmt.where(containers.c.managed == managed)
        with self._tx(write=False) as conn:
            return [Container(r.uri, bool(r.managed)) for r in conn.execute(paged(stmt, lim, offset))]

    def find_datasets(
        self,
        instances: Instance | str | Iterable[Instance | str],
        *,
        records: Iterable[Record | str] | None = None,
        tags: Any = None,
        time: Any = None,
        aoi: Any = None,
        status: DatasetStatus | str | Iterable[DatasetStatus | str] | None = DatasetStatus.ACTIVE,
        case_insensitive: bool = False,
        name: str | None = None,
        footprints: bool = True,
    ) -> list[tuple[Record, Dataset]]:
        """The datasets behind a cube: ``(record, dataset)`` pairs ordered by record datetime, record id, dataset id.

        Datasets of ``instances`` (one or several instances of the same variable) whose record is in
        ``records`` (if given) and matches ``name``/``tags``/``time`` (as in list_records), whose
        footprint intersects ``aoi`` (EPSG:4326; exact test) and whose status is ``status`` (None: any).
        ``footprints=False`` leaves the footprints out (``footprint_wkt`` and ``footprint_4326_wkt`` are
        empty): what a cube plan asks for, as it needs neither and they are most of a row's bytes.
        """
        if not isinstance(footprints, bool):
            raise InvalidArgument(f"footprints must be True or False, not {footprints!r}")
        inst_ids = _instance_ids(instances)
        statuses = _statuses(status)
        window = check_time_range(time)
        area = None if aoi is None else query_area(aoi)
        with self._tx(write=False) as conn:
            found = conn.execute(
                sa.select(schema.instances.c.id, schema.instances.c.variable_id)
                .where(schema.instances.c.id.in_(inst_ids))
            ).all()
            missing = set(inst_ids) - {str(r.id) for r in found}
            if missing:
                raise NotFound(f"no instance with id {sorted(missing)[0]!r}: see list_instances()")
            if len({r.variable_id for r in found}) > 1:
                raise InvalidArgument("find_datasets: the instances must all belong to the same variable")
            clauses = record_clauses(
                conn, name=name, tags=tags, case_insensitive=case_insensitive, area_driven=area is not None
            )
            # with an area, on the datasets' copy of their record's datetime, which the spatial index tests
            # (see db.schema); else on the records', whose index can drive a short window
            when = records_table.c.datetime if area is None else datasets.c.record_datetime
            clauses += time_clauses(when, window)
            stmt = (
                sa.select(*R_LABELS, *dataset_columns(footprints))
                .select_from(datasets.join(records_table, records_table.c.id == datasets.c.record_id))
                .where(datasets.c.instance_id.in_(inst_ids), *clauses)
            )
            if records is not None:
                stmt = stmt.where(in_values(datasets.c.record_id, record_ids(records), conn.dialect.name))
            if statuses is not None:
                stmt = stmt.where(datasets.c.status.in_(statuses))
            if area is not None:
                stmt = exact_last(conn, stmt, datasets, area, ("r_datetime", "r_id", "id"))
            else:
                stmt = stmt.order_by(records_table.c.datetime, records_table.c.id, datasets.c.id)
            rows = conn.execute(stmt).all()
        found = datasets_from_rows(rows, len(R_LABELS), footprints)
        recs: dict[str, Record] = {}
        out = []
        for row, ds in zip(rows, found, strict=True):
            rec = recs.get(row[0])
            if rec is None:
                rid, rname, when, tags, aoi_id = row[: len(R_LABELS)]
                rec = recs[rid] = Record(rid, rname, when, dict(_parsed_tags(tags)), aoi_id)
            out.append((rec, ds))
        return out
