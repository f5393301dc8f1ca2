"""Inserting datasets: checks, band claims, and what happens when a file band is already indexed.

One file band belongs to at most one dataset: ``dataset_bands (container_uri, subdir, band)`` is a
primary key. Inserting datasets claims their bands with ``ON CONFLICT DO NOTHING``; a band already
claimed means either the very same dataset was indexed before (same record, instance, bands, data format,
real range, exponent and file geometry — :data:`IDENTITY_FIELDS`: the existing dataset is returned and
nothing is added) or a conflicting one (:class:`IncompatibleDataset`, naming it; nothing is added).
Under concurrency the primary key decides, so two processes indexing the same files end with exactly
one dataset per file. The status of an existing identical dataset is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..entities import Dataset, DatasetStatus
from ..errors import IncompatibleDataset, InvalidArgument, NotFound
from .db.bulk import write_claims, write_containers, write_datasets
from .db.dataset_rows import load_datasets
from .db.schema import containers, dataset_bands, datasets, instances, records, variables
from .db.sqlutil import chunks
from .geometry import unique_footprints_4326
from .ingest.prepared import check_all_prepared
from .ingest.requests import PreparedDataset

# Fields that make two datasets of the same file bands "the same dataset" (see the module docstring).
IDENTITY_FIELDS = (
    "record_id", "instance_id", "bands", "dformat", "real_min", "real_max", "exponent",
    "crs", "transform", "width", "height",
)


def _identity(record: str, instance: str, x: Dataset | PreparedDataset) -> tuple[Any, ...]:
    """The IDENTITY_FIELDS of a dataset, comparable between a stored Dataset and a PreparedDataset."""
    return (
        record, instance, tuple(int(b) for b in x.bands), tuple(x.dformat.to_json().values()),
        float(x.real_min), float(x.real_max), float(x.exponent), x.crs, tuple(float(t) for t in x.transform),
        int(x.width), int(x.height),
    )


def _dataset_identity(d: Dataset) -> tuple[Any, ...]:
    return _identity(d.record_id, d.instance_id, d)


def _prepared_identity(record: str, instance: str, p: PreparedDataset) -> tuple[Any, ...]:
    return _identity(record, instance, p)


def _where(uri: str, subdir: str) -> str:
    return f"{uri}" + (f" ({subdir})" if subdir else "")


def _check_instances(conn: Connection, items: Sequence[tuple[str, str, PreparedDataset]]) -> None:
    """Every instance exists; each dataset has as many bands as its variable and meets its value range."""
    wanted = sorted({i for _, i, _ in items})
    found = {}
    for part in chunks(wanted):
        stmt = (
            sa.select(instances.c.id, variables.c.name, variables.c.bands, variables.c.min, variables.c.max)
            .select_from(instances.join(variables, variables.c.id == instances.c.variable_id))
            .where(instances.c.id.in_(part))
        )
        if conn.dialect.name == "postgresql":  # kept until commit: see check_ids_exist(key_share=True)
            stmt = stmt.with_for_update(read=True, key_share=True, of=instances)
        found.update({str(r.id): r for r in conn.execute(stmt)})
    for _, inst, p in items:
        var = found.get(inst)
        if var is None:
            raise NotFound(f"no instance with id {inst!r}: see list_instances()")
        if len(p.bands) != len(var.bands):
            raise IncompatibleDataset(
                f"{_where(p.uri, p.subdir)}: {len(p.bands)} band(s) {tuple(p.bands)} given for variable "
                f"{var.name!r}, which has {len(var.bands)} ({', '.join(var.bands) or 'unnamed'})"
            )
        if max(p.real_min, p.real_max) < var.min or min(p.real_min, p.real_max) > var.max:
            raise IncompatibleDataset(
                f"{_where(p.uri, p.subdir)}: real range [{p.real_min}, {p.real_max}] does not meet the range "
                f"[{var.min}, {var.max}] of variable {var.name!r}: check real_min/real_max"
            )


def _record_datetimes(conn: Connection, ids: Sequence[str]) -> dict[str, datetime]:
    """The datetime of each record, which its datasets copy; NotFound naming a missing one. On PostgreSQL
    the records stay locked ``FOR KEY SHARE`` until the commit (see :func:`.db.sqlutil.check_ids_exist`)."""
    found: dict[str, datetime] = {}
    for part in chunks(list(ids)):
        stmt = sa.select(records.c.id, records.c.datetime).where(records.c.id.in_(part))
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(read=True, key_share=True)
        found.update((str(r.id), r.datetime) for r in conn.execute(stmt))
    missing = [i for i in ids if i not in found]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise NotFound(f"no record with id {missing[0]!r}{more}")
    return found


def _ensure_containers(conn: Connection, uris: Sequence[str], managed: bool) -> None:
    """Create the containers that do not exist; on PostgreSQL lock the others ``FOR KEY SHARE`` until the
    commit, so that tidy cannot delete one between now and the insert of the datasets that refer to it
    (one it deleted meanwhile is created again)."""
    inserted = write_containers(conn, uris, managed)
    others = [u for u in uris if u not in inserted]
    if conn.dialect.name == "postgresql":
        for _ in range(3):
            locked: set[str] = set()
            for part in chunks(others):
                stmt = sa.select(containers.c.uri).where(containers.c.uri.in_(part))
                locked.update(conn.execute(stmt.with_for_update(read=True, key_share=True)).scalars())
            gone = [u for u in others if u not in locked]
            if not gone:
                break
            others = [u for u in others if u in locked]
            write_containers(conn, gone, managed)
    for part in chunks(others):
        clash = conn.execute(
            sa.select(containers.c.uri).where(containers.c.uri.in_(part), containers.c.managed != managed)
        ).scalars().first()
        if clash is not None:
            kind = "managed (written by the geocube)" if not managed else "unmanaged (the user's)"
            raise InvalidArgument(
                f"container {clash!r} is already indexed as {kind}: a file cannot be both; "
                f"index it with managed={not managed}"
            )


def insert_datasets(
    conn: Connection,
    items: Sequence[tuple[str, str, PreparedDataset]],
    status: DatasetStatus,
    managed: bool,
) -> list[Dataset]:
    """Insert ``(record_id, instance_id, prepared)`` rows in bulk, inside the caller's transaction.

    Returns one Dataset per item, in order: the new dataset, or the existing identical one. Raises
    NotFound (record/instance), IncompatibleDataset (bands claimed by a different dataset, band count,
    value range). See the module docstring for the rules.
    """
    if not items:
        return []
    check_all_prepared([p for _, _, p in items])
    shapes, index = unique_footprints_4326([p.footprint_4326_wkt for _, _, p in items], "footprint_4326_wkt")
    when = _record_datetimes(conn, list(dict.fromkeys(r for r, _, _ in items)))
    _check_instances(conn, items)
    _ensure_containers(conn, list(dict.fromkeys(p.uri for _, _, p in items)), managed)

    geoms, wkts = shapes[index], shapely.to_wkt(shapes, rounding_precision=-1)[index]
    new_ids = write_datasets(conn, items, status.value, geoms, [when[r] for r, _, _ in items])
    claims = [(p.uri, p.subdir, int(b), i) for (_, _, p), i in zip(items, new_ids, strict=True) for b in p.bands]
    claimed = write_claims(conn, claims)
    result: list[Dataset | None] = [None] * len(items)
    if len(claimed) < len(claims):
        _resolve_conflicts(conn, items, new_ids, claimed, result)
    for n, ((rec, inst, p), new_id) in enumerate(zip(items, new_ids, strict=True)):
        if result[n] is None:
            result[n] = Dataset(
                id=new_id, record_id=rec, instance_id=inst, uri=p.uri, subdir=p.subdir,
                bands=tuple(int(b) for b in p.bands), dformat=p.dformat, real_min=float(p.real_min),
                real_max=float(p.real_max), exponent=float(p.exponent), status=status, crs=p.crs,
                transform=tuple(float(t) for t in p.transform), width=int(p.width), height=int(p.height),
                overviews=tuple((int(w), int(h)) for w, h in p.overviews), footprint_wkt=p.footprint_wkt,
                footprint_4326_wkt=str(wkts[n]),
            )
    return [d for d in result if d is not None]


def _resolve_conflicts(
    conn: Connection,
    items: Sequence[tuple[str, str, PreparedDataset]],
    new_ids: list[int],
    claimed: set[tuple[int, int]],
    result: list[Dataset | None],
) -> None:
    """Items whose bands were already claimed: identical → reuse the owner (drop ours); else raise."""
    losers = [
        n for n, ((_, _, p), new_id) in enumerate(zip(items, new_ids, strict=True))
        if any((new_id, int(b)) not in claimed for b in p.bands)
    ]
    owners: dict[tuple[str, str, int], int] = {}  # file band → dataset holding it
    for part in chunks(sorted({items[n][2].uri for n in losers})):
        for row in conn.execute(sa.select(dataset_bands).where(dataset_bands.c.container_uri.in_(part))):
            owners[(row.container_uri, row.subdir, row.band)] = int(row.dataset_id)

    def holders(n: int) -> set[int | None]:
        p = items[n][2]
        return {owners.get((p.uri, p.subdir, int(b))) for b in p.bands}

    others = {n: sorted(h for h in holders(n) if h is not None and h != new_ids[n]) for n in losers}
    existing = {d.id: d for d in load_datasets(conn, sorted({h for hs in others.values() for h in hs}))}
    drop = []
    for n in losers:
        rec, inst, p = items[n]
        owner = existing.get(others[n][0]) if others[n] else None
        if owner is None:  # cannot happen while the claims table is consistent
            raise IncompatibleDataset(f"{_where(p.uri, p.subdir)}: some of bands {tuple(p.bands)} are already indexed")
        identical = (
            len(others[n]) == 1
            and new_ids[n] not in holders(n)
            and set(owner.bands) == {int(b) for b in p.bands}
            and _dataset_identity(owner) == _prepared_identity(rec, inst, p)
        )
        if identical:
            result[n] = owner
            drop.append(new_ids[n])
            continue
        ours, theirs = _prepared_identity(rec, inst, p), _dataset_identity(owner)
        differ = [f for f, a, b in zip(IDENTITY_FIELDS, theirs, ours, strict=True) if a != b]
        raise IncompatibleDataset(
            f"{_where(p.uri, p.subdir)}: band(s) {tuple(p.bands)} overlap dataset {owner.id} (bands "
            f"{owner.bands}, record {owner.record_id}, instance {owner.instance_id}), which differs in "
            f"{', '.join(differ) or 'its band selection'}. Delete dataset {owner.id} first, or index other bands."
        )
    for part in chunks(drop):
        conn.execute(datasets.delete().where(datasets.c.id.in_(part)))
