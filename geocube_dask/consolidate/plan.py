"""Which files a consolidation writes: cells × records, cut into files, and what they replace.

Pure planning (no database, no file access): the job gives the cells of the layout that cover its
datasets, the datasets as plan rows (``(PlanRecord, Source)`` in paint order), and the files already
written for this layout and instance in those cells. For every cell:

1. The records that have a source touching the cell (the test the cube planner uses).
2. An existing file of the cell is *clean* when it was written with the same settings (signature), all
   its datasets are still ACTIVE (the job gives only those), and none of its records has a dataset
   touching the cell that is newer than the file (a larger id: it would be painted over the file's
   pixels). A clean file is kept as it is; its records are settled in this cell.
3. The other records of the cell, if any, are joined by the records of the cell's clean files that are
   not full (fewer than ``max_records``): those files are rewritten with all their records. Stale files
   are rewritten too (their records are not settled).
4. The records to write are sorted by datetime then id and cut into files of at most ``max_records``:
   one file per cut, written under a new uri (never over a file the catalogue knows).

Datasets retired when the job becomes effective: those of the files rewritten, and the other sources
whose every cell is one of the job's (``covered``): a source reaching outside the job's cells (an AOI
cut it) stays ACTIVE, under the new files, which hold the same values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..entities import utc_datetime
from ..graph.grid import GridSpec
from ..graph.plan import PlanRecord, Source, source_touches_grid


@dataclass(frozen=True)
class CellSpec:
    """A layout cell as consolidation needs it: id and pixel grid."""

    id: str
    grid: GridSpec

    @classmethod
    def of(cls, cell: Any) -> CellSpec:
        """From any cell with ``id``, ``crs``, ``transform`` and ``shape`` (height, width)."""
        if isinstance(cell, CellSpec):
            return cell
        height, width = cell.shape
        return cls(str(cell.id), GridSpec(str(cell.crs), tuple(cell.transform)[:6], int(width), int(height)))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "grid": self.grid.to_json()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CellSpec:
        return cls(d["id"], GridSpec.from_json(d["grid"]))


@dataclass(frozen=True)
class ExistingFile:
    """A file written earlier for this layout and instance, all of whose datasets are ACTIVE (files in
    another state belong to a job under way and must not be given to the planner)."""

    uri: str
    cell_id: str
    signature: str
    dataset_ids: tuple[int, ...]
    record_ids: tuple[str, ...]


@dataclass(frozen=True)
class FilePlan:
    """One file to write: its cell, its records in order (each with its sources in paint order)."""

    key: str
    uri: str
    cell: CellSpec
    records: tuple[tuple[PlanRecord, tuple[Source, ...]], ...]
    replaces: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "uri": self.uri,
            "cell": self.cell.to_json(),
            "records": [
                {"id": r.id, "name": r.name, "datetime": r.datetime.isoformat(), "sources": [s.to_json() for s in ss]}
                for r, ss in self.records
            ],
            "replaces": list(self.replaces),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FilePlan:
        return cls(
            key=d["key"],
            uri=d["uri"],
            cell=CellSpec.from_json(d["cell"]),
            records=tuple(
                (PlanRecord(r["id"], r["name"], utc_datetime(r["datetime"])),
                 tuple(Source.from_json(s) for s in r["sources"]))
                for r in d["records"]
            ),
            replaces=tuple(d.get("replaces", ())),
        )


@dataclass(frozen=True)
class ConsolidationPlan:
    """The files to write, the datasets to retire once they are effective, the files left as they are."""

    files: tuple[FilePlan, ...]
    retire: tuple[int, ...]
    kept: tuple[str, ...]


def plan_consolidation(
    cells: Sequence[Any],
    rows: Sequence[tuple[PlanRecord, Source]],
    existing: Sequence[ExistingFile],
    *,
    max_records: int,
    signature: str,
    uri_for: Callable[[str, int], str],
    covered: Callable[[Source], bool],
) -> ConsolidationPlan:
    """Plan a consolidation (see the module docstring).

    ``cells``: the job's cells (CellSpec or anything :meth:`CellSpec.of` takes); ``rows``: every ACTIVE
    source of the job (its selection and the datasets of ``existing`` files) in paint order;
    ``uri_for(cell_id, n)``: the uri of the n-th file written in a cell; ``covered(source)``: whether
    every cell the source touches is one of ``cells``.
    """
    specs = [CellSpec.of(c) for c in cells]
    layout_ds = {i: f for f in existing for i in f.dataset_ids}
    by_cell: dict[str, list[ExistingFile]] = {}
    for f in existing:
        by_cell.setdefault(f.cell_id, []).append(f)
    files: list[FilePlan] = []
    retire: set[int] = set()
    kept: list[str] = []
    touch_cache: dict[tuple[Any, ...], bool] = {}

    def touches(src: Source, cell: CellSpec) -> bool:
        key = (src.grid_key, cell.id)
        if key not in touch_cache:
            touch_cache[key] = source_touches_grid(src, cell.grid)
        return touch_cache[key]

    for cell in specs:
        per_record: dict[str, tuple[PlanRecord, list[Source]]] = {}
        for rec, src in rows:
            owner = layout_ds.get(src.dataset_id) if src.dataset_id is not None else None
            if owner is not None and owner.cell_id != cell.id:
                continue  # a file of another cell: at most an edge in common
            if touches(src, cell):
                per_record.setdefault(rec.id, (rec, []))[1].append(src)
        clean, stale = [], []
        for f in by_cell.get(cell.id, []):
            (clean if _is_clean(f, per_record, signature) else stale).append(f)
        settled = {r for f in clean for r in f.record_ids}
        pool = [rid for rid in per_record if rid not in settled]
        if not pool:
            kept += [f.uri for f in clean]
            continue
        joined = [f for f in clean if len(f.record_ids) < max_records]
        kept += [f.uri for f in clean if len(f.record_ids) >= max_records]
        replaced = stale + joined
        pool = list(dict.fromkeys(pool + [r for f in joined for r in f.record_ids if r in per_record]))
        for f in replaced:
            retire.update(f.dataset_ids)
        ordered = sorted((per_record[r][0] for r in pool), key=lambda r: (r.datetime, r.id))
        for n, start in enumerate(range(0, len(ordered), max_records)):
            cut = ordered[start:start + max_records]
            files.append(FilePlan(
                key=f"{cell.id}#{n}",
                uri=uri_for(cell.id, n),
                cell=cell,
                records=tuple((r, tuple(per_record[r.id][1])) for r in cut),
                replaces=tuple(f.uri for f in replaced),
            ))
    for _, src in rows:
        if src.dataset_id is not None and src.dataset_id not in layout_ds and covered(src):
            retire.add(src.dataset_id)
    return ConsolidationPlan(tuple(files), tuple(sorted(retire)), tuple(sorted(set(kept))))


def _is_clean(f: ExistingFile, per_record: Mapping[str, tuple[PlanRecord, list[Source]]], signature: str) -> bool:
    if f.signature != signature or not f.dataset_ids:
        return False
    mine = set(f.dataset_ids)
    oldest = min(mine)
    present = set()
    for rid in f.record_ids:
        entry = per_record.get(rid)
        if entry is None:
            return False  # the job does not see this record's datasets here: not ACTIVE any more
        for src in entry[1]:
            if src.dataset_id in mine:
                present.add(src.dataset_id)
            elif src.dataset_id is None or src.dataset_id > oldest:
                return False
    return present == mine
