"""Consolidation planning: records per cell, cuts of max_records, files kept, joined or rewritten, and
the datasets retired; expectations written out by hand for small layouts."""

from __future__ import annotations

from datetime import UTC, datetime

from geocube_dask.consolidate.plan import CellSpec, ExistingFile, FilePlan, plan_consolidation
from geocube_dask.entities import DFormat
from geocube_dask.graph.grid import GridSpec
from geocube_dask.graph.plan import PlanRecord, Source

CRS = "EPSG:32631"
X0, Y0 = 500000.0, 5000000.0
# two cells side by side, 1000 m × 1000 m at 10 m
CELLS = [CellSpec(f"{i}_0", GridSpec(CRS, (10.0, 0.0, X0 + 1000 * i, 0.0, -10.0, Y0), 100, 100)) for i in range(2)]


def rec(name: str, day: int) -> PlanRecord:
    return PlanRecord(f"00000000-0000-0000-0000-0000000000{day:02d}", name, datetime(2024, 1, day, tzinfo=UTC))


def src(ds_id: int, record: PlanRecord, x_from: float, x_to: float) -> Source:
    """A source over [x_from, x_to] × the cells' rows (metres from X0)."""
    width = round((x_to - x_from) / 10)
    return Source(f"/in/{ds_id}.tif", "", (1,), DFormat("uint16", 0, 0, 10000), 0, 10000, 1, CRS,
                  (10.0, 0.0, X0 + x_from, 0.0, -10.0, Y0), width, 100, (), ds_id, record.id)


A, B, C, D = rec("A", 1), rec("B", 2), rec("C", 3), rec("D", 4)


def uri_for(cell: str, n: int) -> str:
    return f"/out/{cell}/{n}.tif"


def plan(rows, existing=(), max_records=10, covered=lambda s: True, signature="sig"):
    return plan_consolidation(CELLS, rows, list(existing), max_records=max_records, signature=signature,
                              uri_for=uri_for, covered=covered)


def contents(p) -> dict[str, list[tuple[str, list[int]]]]:
    """uri → [(record name, [dataset ids in paint order])]."""
    return {f.uri: [(r.name, [s.dataset_id for s in ss]) for r, ss in f.records] for f in p.files}


def test_records_per_cell_sorted_and_cut() -> None:
    rows = [(B, src(2, B, 0, 1000)), (A, src(1, A, 0, 2000)), (C, src(3, C, 1000, 2000)), (D, src(4, D, 500, 1000))]
    p = plan(rows)
    assert contents(p) == {
        "/out/0_0/0.tif": [("A", [1]), ("B", [2]), ("D", [4])],
        "/out/1_0/0.tif": [("A", [1]), ("C", [3])],
    }
    assert p.retire == (1, 2, 3, 4) and p.kept == ()
    cut = plan(rows, max_records=2)
    assert contents(cut) == {
        "/out/0_0/0.tif": [("A", [1]), ("B", [2])],
        "/out/0_0/1.tif": [("D", [4])],
        "/out/1_0/0.tif": [("A", [1]), ("C", [3])],
    }
    assert [f.key for f in cut.files] == ["0_0#0", "0_0#1", "1_0#0"]


def test_a_source_touching_only_an_edge_is_not_in_the_cell() -> None:
    p = plan([(A, src(1, A, 0, 1000))])  # its right edge is the left edge of cell 1_0
    assert list(contents(p)) == ["/out/0_0/0.tif"]


def test_sources_reaching_outside_the_jobs_cells_are_not_retired() -> None:
    rows = [(A, src(1, A, 0, 1000)), (B, src(2, B, 0, 1000))]
    p = plan(rows, covered=lambda s: s.dataset_id != 2)
    assert p.retire == (1,) and len(p.files) == 1


def existing_file(ids: tuple[int, ...], records: tuple[PlanRecord, ...], signature: str = "sig") -> ExistingFile:
    return ExistingFile("/old/0_0.tif", "0_0", signature, ids, tuple(r.id for r in records))


def test_an_unchanged_file_is_kept() -> None:
    old = existing_file((10, 11), (A, B))
    rows = [(A, src(10, A, 0, 1000)), (B, src(11, B, 0, 1000))]
    p = plan(rows, [old])
    assert p.files == () and p.retire == () and p.kept == ("/old/0_0.tif",)


def test_a_new_record_joins_a_file_that_is_not_full() -> None:
    old = existing_file((10, 11), (A, B))
    rows = [(A, src(10, A, 0, 1000)), (B, src(11, B, 0, 1000)), (D, src(4, D, 0, 1000))]
    p = plan(rows, [old], max_records=3)
    assert contents(p) == {"/out/0_0/0.tif": [("A", [10]), ("B", [11]), ("D", [4])]}
    assert p.files[0].replaces == ("/old/0_0.tif",) and p.retire == (4, 10, 11) and p.kept == ()


def test_a_full_file_is_kept_and_new_records_go_to_a_new_file() -> None:
    old = existing_file((10, 11), (A, B))
    rows = [(A, src(10, A, 0, 1000)), (B, src(11, B, 0, 1000)), (D, src(4, D, 0, 1000))]
    p = plan(rows, [old], max_records=2)
    assert contents(p) == {"/out/0_0/0.tif": [("D", [4])]}
    assert p.kept == ("/old/0_0.tif",) and p.retire == (4,)


def test_a_file_is_rewritten_when_a_record_has_a_newer_dataset_or_other_settings() -> None:
    old = existing_file((10, 11), (A, B))
    newer = [(A, src(10, A, 0, 1000)), (A, src(20, A, 200, 600)), (B, src(11, B, 0, 1000))]
    p = plan(newer, [old])
    assert contents(p) == {"/out/0_0/0.tif": [("A", [10, 20]), ("B", [11])]}
    assert p.retire == (10, 11, 20)
    # an older dataset still ACTIVE (kept because it reached outside an earlier job's cells) is under the file
    older = [(A, src(5, A, 0, 2000)), (A, src(10, A, 0, 1000)), (B, src(11, B, 0, 1000))]
    kept = plan(older, [old], covered=lambda s: False)
    assert kept.kept == ("/old/0_0.tif",) and list(contents(kept)) == ["/out/1_0/0.tif"]
    resigned = plan([(A, src(10, A, 0, 1000)), (B, src(11, B, 0, 1000))], [old], signature="other")
    assert contents(resigned) == {"/out/0_0/0.tif": [("A", [10]), ("B", [11])]}


def test_a_file_missing_one_of_its_datasets_is_rewritten() -> None:
    old = existing_file((10, 11), (A, B))
    p = plan([(A, src(10, A, 0, 1000))], [old])  # dataset 11 is no longer ACTIVE
    assert contents(p) == {"/out/0_0/0.tif": [("A", [10])]} and p.retire == (10, 11)


def test_file_plans_round_trip_through_json() -> None:
    p = plan([(A, src(1, A, 0, 2000)), (B, src(2, B, 0, 1000))])
    for f in p.files:
        assert FilePlan.from_json(f.to_json()) == f
