"""Changing the value mapping of indexed datasets: internal dformat, real range, exponent.

A dataset's values map to its variable's as ``ve = real_min + (real_max − real_min)·((vi − min)/(max −
min))^exponent`` (GEOCUBE.md), with ``min``/``max``/nodata from its internal dformat. When a collection
was indexed with the wrong scaling, :meth:`MappingMixin.update_dataset_mapping` corrects it in place,
under the rules indexing applies (:mod:`.ingest.requests`): the internal dformat is valid in the file's
dtype (a dformat naming another dtype has the file's dtype substituted — the file's dtype wins),
``[real_min, real_max]`` is not empty and meets the variable's range, the exponent is > 0. Cubes planned
afterwards use the new mapping; the files are not touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from ..entities import Dataset, DFormat, Instance, Record
from ..errors import InvalidArgument, NotFound
from .db import schema
from .db.dataset_rows import load_datasets
from .db.engine import Connected
from .db.sqlutil import in_values
from .ingest.requests import check_exponent, check_real_range, finite_number, internal_dformat
from .jobs import refuse_locked
from .refs import dataset_ids, instance_id, record_ids
from .variables import load_variable


def _where(ds: Dataset) -> str:
    return f"dataset {ds.id} ({ds.uri}" + (f", {ds.subdir})" if ds.subdir else ")")


class MappingMixin(Connected):
    """update_dataset_mapping."""

    def update_dataset_mapping(
        self,
        datasets: Iterable[Dataset | int] | None = None,
        *,
        instance: Instance | str | None = None,
        records: Iterable[Record | str] | None = None,
        dformat: Any = None,
        real_min: float | None = None,
        real_max: float | None = None,
        exponent: float | None = None,
    ) -> list[Dataset]:
        """Change how existing datasets' stored values map to their variable's; return them, by id.

        Select the datasets by id (``datasets``: ids or Datasets) or as those of ``instance`` (and of
        ``records`` if given). ``dformat``: the new internal (dtype, nodata, min, max) — the file's dtype
        wins over the one given; ``real_min``/``real_max``/``exponent``: the new values; anything left None
        is kept per dataset. Every dataset is checked as indexing would check it (see the module
        docstring) before any is changed: all or nothing. Unknown ids raise NotFound; datasets a job holds
        (a consolidation running over them) raise JobConflict naming the job.

        An administrator's operation (the HTTP API will restrict it): it changes the values every cube
        computed afterwards returns, and re-indexing a file with its old mapping then conflicts with it.
        """
        if (datasets is None) == (instance is None):
            raise InvalidArgument(
                "update_dataset_mapping: give either datasets (ids or Datasets) or an instance (and optionally "
                "records), not both or neither"
            )
        if records is not None and instance is None:
            raise InvalidArgument("update_dataset_mapping: records select datasets of an instance: give instance=")
        if dformat is None and real_min is None and real_max is None and exponent is None:
            raise InvalidArgument(
                "update_dataset_mapping: nothing to change; give dformat, real_min, real_max and/or exponent"
            )
        given_fmt = None if dformat is None else DFormat.parse(dformat, nodata_required=False)
        rmin = None if real_min is None else finite_number(real_min, "real_min")
        rmax = None if real_max is None else finite_number(real_max, "real_max")
        exp = None if exponent is None else check_exponent(exponent)
        ids = None if datasets is None else dataset_ids(datasets)
        iid = None if instance is None else instance_id(instance)
        rids = None if records is None else record_ids(records)

        table, instances = schema.datasets, schema.instances
        with self._tx() as conn:
            if ids is None:
                if conn.execute(sa.select(instances.c.id).where(instances.c.id == iid)).first() is None:
                    raise NotFound(f"no instance with id {iid!r}: see list_instances()")
                stmt = sa.select(table.c.id).where(table.c.instance_id == iid)
                if rids is not None:
                    stmt = stmt.where(in_values(table.c.record_id, rids, conn.dialect.name))
                ids = list(conn.execute(stmt).scalars())
            # locks the rows on PostgreSQL: no concurrent change between our checks and our writes
            refuse_locked(conn, ids, "change the mapping of these datasets")
            found = sorted(load_datasets(conn, ids), key=lambda d: d.id)
            missing = sorted(set(ids) - {d.id for d in found})
            if missing:
                raise NotFound(f"no dataset with id {missing[0]}: nothing was changed")
            variables = {
                i: load_variable(conn, conn.execute(
                    sa.select(instances.c.variable_id).where(instances.c.id == i)).scalar_one())
                for i in {d.instance_id for d in found}
            }
            rows = []
            for ds in found:
                fmt = ds.dformat if given_fmt is None else internal_dformat(given_fmt, ds.dformat.dtype, _where(ds))
                lo = ds.real_min if rmin is None else rmin
                hi = ds.real_max if rmax is None else rmax
                check_real_range(lo, hi, variables[ds.instance_id], _where(ds))
                rows.append({
                    "b_id": ds.id, "dtype": fmt.dtype, "nodata": fmt.nodata, "min": fmt.min, "max": fmt.max,
                    "real_min": lo, "real_max": hi, "exponent": ds.exponent if exp is None else exp,
                })
            if rows:
                stmt = table.update().where(table.c.id == sa.bindparam("b_id")).values(
                    {c: sa.bindparam(c) for c in ("dtype", "nodata", "min", "max", "real_min", "real_max", "exponent")}
                )
                conn.execute(stmt, rows)
            return sorted(load_datasets(conn, ids), key=lambda d: d.id)
