"""Tidying the catalogue: delete what nothing uses any more, in one transaction.

What "used" means is :data:`USES`: the columns whose rows refer to a row of each table. :data:`PARTS`
lists the tables whose rows belong to a row of another (tags of a record, cells of a grid) and go with
it. A test checks that together they cover every foreign key of the schema, so a table added later that
refers to one of these must be classified here.

The kinds run in an order where one can free another: records, then AOIs (an AOI whose last record went
is unused); containers; instances, then variables (a variable without instances); layouts, then grids.
Each kind is one ``SELECT`` of the unused keys and one deletion through :func:`.db.sqlutil.delete_rows`,
so a row that another transaction starts using meanwhile (a dataset indexed for a record) is skipped,
not an error. A dry run makes the same deletions and rolls them back, so its report is exactly what a
real run would have done at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import InvalidArgument
from .db import schema
from .db.engine import Connected
from .db.sqlutil import chunks, delete_rows

# Per tidied table, in tidying order: its key and the columns whose rows use it.
USES: dict[str, tuple[sa.Column[Any], tuple[sa.Column[Any], ...]]] = {
    "records": (schema.records.c.id, (schema.datasets.c.record_id,)),
    "aois": (schema.aois.c.id, (schema.records.c.aoi_id,)),
    "containers": (schema.containers.c.uri, (schema.datasets.c.container_uri,)),
    "instances": (schema.instances.c.id, (schema.datasets.c.instance_id,)),
    "variables": (schema.variables.c.id, (schema.instances.c.variable_id,)),
    "layouts": (schema.layouts.c.name, (schema.layout_files.c.layout_name,)),
    "grids": (schema.grids.c.name, (schema.layouts.c.grid_name,)),
}
# Columns of rows that are part of the row they refer to (deleted with it by ON DELETE CASCADE).
PARTS: dict[str, tuple[sa.Column[Any], ...]] = {
    "records": (schema.record_tags.c.record_id,),
    "grids": (schema.grid_cells.c.grid_name,),
    # which layout cell a consolidated file holds goes with the file; its instance is gone by then
    "containers": (schema.layout_files.c.container_uri,),
    "instances": (schema.layout_files.c.instance_id,),
    # a variable's consolidation settings go with it
    "variables": (schema.consolidation_params.c.variable_id,),
}


@dataclass(frozen=True)
class TidyReport:
    """What :meth:`TidyMixin.tidy` deleted (or, with ``dry_run``, would delete), as keys.

    ``containers`` are the *managed* containers (files written by the geocube) left without dataset:
    their catalogue rows are gone and their files should be deleted by the caller.
    ``unmanaged_containers`` lost their rows only: their files are the user's and are never touched.
    """

    dry_run: bool
    records: tuple[str, ...] = ()
    aois: tuple[int, ...] = ()
    containers: tuple[str, ...] = ()
    unmanaged_containers: tuple[str, ...] = ()
    instances: tuple[str, ...] = ()
    variables: tuple[str, ...] = ()
    layouts: tuple[str, ...] = ()
    grids: tuple[str, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        """Number of deleted rows per kind."""
        return {f.name: len(getattr(self, f.name)) for f in fields(self) if f.name != "dry_run"}

    @property
    def total(self) -> int:
        """Number of deleted rows."""
        return sum(self.counts.values())


def _unused(conn: Connection, kind: str) -> list[Any]:
    key, users = USES[kind]
    stmt = sa.select(key).where(*(~sa.exists().where(column == key) for column in users)).order_by(key)
    return list(conn.execute(stmt).scalars())


def _managed(conn: Connection, uris: list[str]) -> set[str]:
    """Those of ``uris`` that are managed containers."""
    table = schema.containers
    out: set[str] = set()
    for part in chunks(uris):
        out.update(conn.execute(sa.select(table.c.uri).where(table.c.uri.in_(part), table.c.managed)).scalars())
    return out


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"tidy: {name} must be True or False, not {value!r}")
    return value


class TidyMixin(Connected):
    """tidy: delete orphan AOIs, records without datasets, empty containers and, on request, unused
    instances, variables, layouts and grids."""

    def tidy(
        self,
        dry_run: bool = False,
        *,
        aois: bool = True,
        records: bool = True,
        containers: bool = True,
        instances: bool = False,
        variables: bool = False,
        layouts: bool = False,
        grids: bool = False,
    ) -> TidyReport:
        """Delete what nothing uses, in one transaction, and report it (see :class:`TidyReport`).

        ``records``: records without datasets; ``aois``: AOIs no record uses (after the records went);
        ``containers``: containers without datasets — the report's ``containers`` are the managed ones,
        whose files the caller should delete (unmanaged files are never deleted); ``instances``:
        instances without datasets; ``variables``: variables without instances (after the instances
        went); ``layouts``: layouts nothing refers to; ``grids``: stored grids no layout uses (after the
        layouts went). ``dry_run=True`` reports what would be deleted and changes nothing.
        """
        dry = _flag(dry_run, "dry_run")
        wanted = {
            "records": _flag(records, "records"), "aois": _flag(aois, "aois"),
            "containers": _flag(containers, "containers"), "instances": _flag(instances, "instances"),
            "variables": _flag(variables, "variables"), "layouts": _flag(layouts, "layouts"),
            "grids": _flag(grids, "grids"),
        }
        found: dict[str, tuple[Any, ...]] = {}
        with self._tx() as conn:
            for kind, (key, _) in USES.items():
                if not wanted[kind]:
                    continue
                unused = _unused(conn, kind)
                managed = _managed(conn, unused) if kind == "containers" else set()
                deleted = delete_rows(conn, key, unused)[0]
                if kind == "containers":
                    found["containers"] = tuple(u for u in deleted if u in managed)
                    found["unmanaged_containers"] = tuple(u for u in deleted if u not in managed)
                else:
                    found[kind] = tuple(deleted)
            if dry:
                conn.rollback()
        return TidyReport(dry_run=dry, **found)
