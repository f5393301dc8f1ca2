"""Consolidation's bookkeeping: per-variable settings, the files written for a layout, and the dataset
steps of a job, each done together with the job's change of state in one transaction.

- ``consolidation_params``: how a variable's consolidated files store it (:class:`ConsolidationParams`);
  a variable without a row is consolidated in its own data format, lossless.
- ``layout_files``: every file consolidation wrote, with its layout, instance, cell and a *signature* of
  the settings it was written with, so that a later consolidation recognises an unchanged file. Rows go
  with their container (``ON DELETE CASCADE``).
- Job steps: index the new files (datasets INACTIVE, containers managed, locked by the job), swap
  statuses (old TODELETE, new ACTIVE), delete datasets. A step that raises changes nothing, and a job
  changed meanwhile by another process makes the step raise JobConflict (see :mod:`.jobs`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from ..entities import ConsolidationParams, Dataset, DatasetStatus, DFormat, Instance, JobInfo, check_resampling
from ..errors import InvalidArgument
from .datasets import delete_dataset_rows
from .db.dataset_rows import load_datasets
from .db.engine import Connected
from .db.schema import consolidation_params, containers, datasets, layout_files
from .db.sqlutil import chunks, dialect_insert
from .ingest.requests import PreparedDataset
from .insertion import insert_datasets
from .jobs import lock_rows, transition
from .refs import instance_id, name_arg
from .variables import load_variable

COMPRESSION_KINDS = ("lossless", "lossy", "none", "custom")


@dataclass(frozen=True)
class LayoutFile:
    """A file consolidation wrote for a layout: where, which cell, with which settings, and its datasets."""

    uri: str
    cell_id: str
    signature: str
    datasets: tuple[Dataset, ...]


def _cell_ids(cells: Any) -> list[str]:
    """Cell ids (strings), sorted, each once; InvalidArgument for anything else."""
    items = list(cells) if isinstance(cells, Iterable) and not isinstance(cells, str | bytes | dict) else None
    if items is None or not all(isinstance(c, str) for c in items):
        raise InvalidArgument(f"cells must be a list of cell ids (strings), not {cells!r}")
    return sorted(set(items))


def check_params(params: ConsolidationParams) -> ConsolidationParams:
    """Validate consolidation settings (creation options are checked by the COG writer's rules elsewhere)."""
    dformat = DFormat.parse(params.dformat)
    exponent = params.exponent
    if isinstance(exponent, bool) or not isinstance(exponent, int | float) or not (
        math.isfinite(exponent) and exponent > 0
    ):
        raise InvalidArgument(f"exponent must be a number > 0, not {exponent!r}")
    if params.compression not in COMPRESSION_KINDS:
        raise InvalidArgument(f"compression must be one of {', '.join(COMPRESSION_KINDS)}, not {params.compression!r}")
    max_error = params.max_error
    if params.compression == "lossy":
        if isinstance(max_error, bool) or not isinstance(max_error, int | float) or not (
            math.isfinite(max_error) and max_error > 0
        ):
            raise InvalidArgument(
                f"lossy compression needs max_error > 0 (the largest error allowed, in stored units), not {max_error!r}"
            )
        max_error = float(max_error)
    elif max_error is not None:
        raise InvalidArgument("max_error only goes with compression='lossy'")
    options = params.creation_options or {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise InvalidArgument(f"creation_options must be a mapping of GDAL option names to values, not {options!r}")
    if params.compression == "custom" and not options:
        raise InvalidArgument("compression='custom' needs creation_options={...} (GDAL COG driver options)")
    if params.compression != "custom" and options:
        raise InvalidArgument("creation_options only go with compression='custom'")
    resampling = None if params.resampling is None else check_resampling(params.resampling)
    return ConsolidationParams(params.variable_id, dformat, float(exponent), params.compression, max_error,
                               {k.upper(): str(v) for k, v in options.items()}, resampling)


class ConsolidationMixin(Connected):
    """Consolidation settings, layout files and the dataset steps of jobs."""

    def set_consolidation_params(self, params: ConsolidationParams) -> ConsolidationParams:
        """Store (replace) a variable's consolidation settings. Raises NotFound, InvalidArgument."""
        with self._tx() as conn:
            var = load_variable(conn, params.variable_id)
            p = check_params(replace(params, variable_id=var.id))
            values = {
                "dtype": p.dformat.dtype, "nodata": p.dformat.nodata, "min": p.dformat.min, "max": p.dformat.max,
                "exponent": p.exponent, "compression": p.compression, "max_error": p.max_error,
                "creation_options": dict(p.creation_options), "resampling": p.resampling,
            }
            stmt = dialect_insert(conn, consolidation_params).values(variable_id=var.id, **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["variable_id"], set_=values))
        return p

    def get_consolidation_params(self, variable: Any) -> ConsolidationParams:
        """A variable's consolidation settings (its own data format, lossless, if never configured)."""
        with self._tx(write=False) as conn:
            var = load_variable(conn, variable)
            row = conn.execute(
                sa.select(consolidation_params).where(consolidation_params.c.variable_id == var.id)
            ).first()
        if row is None:
            return ConsolidationParams(var.id, var.dformat)
        return ConsolidationParams(
            var.id, DFormat(row.dtype, row.nodata, row.min, row.max), row.exponent, row.compression, row.max_error,
            dict(row.creation_options), row.resampling,
        )

    def layout_files(
        self, layout: str, instance: Instance | str, cells: Iterable[str] | None = None
    ) -> list[LayoutFile]:
        """The files written for ``layout`` and ``instance`` (in ``cells`` if given), each with its datasets
        of any status, by cell then uri."""
        inst = instance_id(instance)
        stmt = sa.select(layout_files).where(layout_files.c.layout_name == name_arg(layout, "layout"),
                                             layout_files.c.instance_id == inst)
        wanted = None if cells is None else _cell_ids(cells)
        with self._tx(write=False) as conn:
            rows = []
            if wanted is None:
                rows = conn.execute(stmt).all()
            else:
                for part in chunks(wanted):
                    rows += conn.execute(stmt.where(layout_files.c.cell_id.in_(part))).all()
            by_uri: dict[str, list[int]] = {r.container_uri: [] for r in rows}
            for part in chunks(sorted(by_uri)):
                for ds_id, uri in conn.execute(
                    sa.select(datasets.c.id, datasets.c.container_uri).where(datasets.c.container_uri.in_(part))
                ):
                    by_uri[uri].append(int(ds_id))
            loaded = {d.id: d for d in load_datasets(conn, sorted(i for ids in by_uri.values() for i in ids))}
        out = [
            LayoutFile(r.container_uri, r.cell_id, r.signature,
                       tuple(loaded[i] for i in sorted(by_uri[r.container_uri])))
            for r in rows
        ]
        return sorted(out, key=lambda f: (f.cell_id, f.uri))

    def index_job_files(
        self,
        job: JobInfo,
        items: Sequence[tuple[str, str, PreparedDataset]],
        files: Sequence[tuple[str, str, str, str, str]],
        **change: Any,
    ) -> tuple[JobInfo, list[Dataset]]:
        """Index a job's new files in one transaction with the job's ``change`` (as ``update_job``).

        ``items``: ``(record_id, instance_id, PreparedDataset)``, stored INACTIVE in managed containers and
        locked by the job; ``files``: ``(uri, layout, instance_id, cell_id, signature)`` rows of
        ``layout_files``. Indexing the same files again changes nothing (identical datasets are reused).
        """
        with self._tx() as conn:
            out = transition(conn, job, **change)
            found = insert_datasets(conn, list(items), DatasetStatus.INACTIVE, True)
            rows = [{"container_uri": u, "layout_name": lay, "instance_id": inst, "cell_id": cell, "signature": sig}
                    for u, lay, inst, cell, sig in files]
            if rows:
                conn.execute(dialect_insert(conn, layout_files).on_conflict_do_nothing(), rows)
            lock_rows(conn, job, [d.id for d in found])
            return out, found

    def swap_job_datasets(self, job: JobInfo, retire: Sequence[int], activate: Sequence[int], **change: Any) -> JobInfo:
        """In one transaction: ``retire`` → TODELETE, ``activate`` → ACTIVE, and the job's ``change``."""
        with self._tx() as conn:
            out = transition(conn, job, **change)
            for ids, status in ((retire, DatasetStatus.TODELETE), (activate, DatasetStatus.ACTIVE)):
                for part in chunks(sorted(set(ids))):
                    conn.execute(datasets.update().where(datasets.c.id.in_(part)).values(status=status.value))
            return out

    def delete_job_datasets(self, job: JobInfo, ids: Sequence[int], **change: Any) -> tuple[JobInfo, list[str]]:
        """Delete datasets (those already gone are skipped) with the job's ``change``, in one transaction;
        return the uris of the managed containers left empty (their files are the caller's to delete)."""
        with self._tx() as conn:
            out = transition(conn, job, **change)
            existing: list[int] = []
            for part in chunks(sorted(set(ids))):
                existing += conn.execute(sa.select(datasets.c.id).where(datasets.c.id.in_(part))).scalars().all()
            return out, delete_dataset_rows(conn, existing)

    def managed_containers_of(self, dataset_ids: Sequence[int]) -> list[str]:
        """The uris of the managed containers holding any of these datasets, sorted."""
        out: set[str] = set()
        with self._tx(write=False) as conn:
            for part in chunks(sorted({int(i) for i in dataset_ids})):
                out.update(conn.execute(
                    sa.select(containers.c.uri).distinct()
                    .select_from(datasets.join(containers, containers.c.uri == datasets.c.container_uri))
                    .where(datasets.c.id.in_(part), containers.c.managed.is_(True))
                ).scalars())
        return sorted(out)

    def set_job_datasets_status(self, job: JobInfo, ids: Sequence[int], status: DatasetStatus | str,
                                **change: Any) -> JobInfo:
        """Set the status of datasets (those gone are skipped) with the job's ``change``, in one transaction."""
        st = DatasetStatus(status)
        with self._tx() as conn:
            out = transition(conn, job, **change)
            for part in chunks(sorted(set(ids))):
                conn.execute(datasets.update().where(datasets.c.id.in_(part)).values(status=st.value))
            return out
