"""Records: creation (single and bulk), uniqueness, search, tags, AOIs and deletion rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import box
from sqlalchemy import event

import geocube_dask as gd
from geocube_dask.catalog.ingest.requests import NewRecord
from geocube_dask.catalog.insertion import insert_datasets
from geocube_dask.entities import DatasetStatus

from .helpers import prepared, sql, table_counts

NASTY = ["'; DROP TABLE records; --", "100% _sure_", 'quote " and \' and \\', "tab\tnew\nline", "ünï©ødé ✓", ""]


def test_create_and_get(gc) -> None:
    rec = gc.create_record("S2A_T31TCJ_20240105", "2024-01-05T11:30:00+01:00", tags={"c": "S2"}, aoi=box(0, 0, 1, 1))
    assert rec.datetime == datetime(2024, 1, 5, 10, 30, tzinfo=UTC)
    assert gc.get_record(rec.id) == rec == gc.get_record(rec)
    assert gc.get_record_aoi(rec).equals(box(0, 0, 1, 1))
    assert gc.get_aoi(rec.aoi_id).geometry.equals(box(0, 0, 1, 1))


def test_naive_datetimes_are_utc(gc) -> None:
    rec = gc.create_record("r", datetime(2024, 1, 5, 10, 30))
    assert gc.get_record(rec.id).datetime == datetime(2024, 1, 5, 10, 30, tzinfo=UTC)


def test_uniqueness_on_name_tags_datetime(gc) -> None:
    rec = gc.create_record("r", "2024-01-05", tags={"a": "1", "b": "2"})
    before = table_counts(gc)
    with pytest.raises(gd.AlreadyExists, match="exist_ok=True"):
        gc.create_record("r", "2024-01-05T00:00:00Z", tags={"b": "2", "a": "1"})
    assert table_counts(gc) == before
    assert gc.create_record("r", "2024-01-05", tags={"b": "2", "a": "1"}, exist_ok=True) == rec
    # any difference makes another record
    assert gc.create_record("r", "2024-01-05", tags={"a": "1"}).id != rec.id
    assert gc.create_record("r", "2024-01-06", tags={"a": "1", "b": "2"}).id != rec.id
    assert gc.create_record("r2", "2024-01-05", tags={"a": "1", "b": "2"}).id != rec.id


def test_an_existing_record_keeps_its_aoi_and_leaves_no_orphan(gc) -> None:
    """exist_ok returns the existing record as it is; the other AOI given is not stored (no orphan AOI)."""
    rec = gc.create_record("r", "2024-01-05", aoi=box(0, 0, 1, 1))
    before = table_counts(gc)
    assert gc.create_record("r", "2024-01-05", aoi=box(5, 5, 6, 6), exist_ok=True) == rec
    again = gc.create_records([{"name": "r", "datetime": "2024-01-05", "aoi": box(7, 7, 8, 8)},
                               {"name": "new", "datetime": "2024-01-05", "aoi": box(2, 2, 3, 3)},
                               {"name": "new", "datetime": "2024-01-05", "aoi": box(3, 3, 4, 4)}], exist_ok=True)
    assert again[0] == rec and again[1] == again[2]
    assert gc.get_record_aoi(again[1]).equals(box(2, 2, 3, 3))
    after = table_counts(gc)
    assert after["aois"] == before["aois"] + 1 and after["records"] == before["records"] + 1
    with sql(gc, write=False) as conn:  # every AOI is some record's
        orphans = conn.exec_driver_sql(
            "SELECT count(*) FROM aois WHERE id NOT IN (SELECT aoi_id FROM records WHERE aoi_id IS NOT NULL)"
        ).scalar_one()
    assert orphans == 0


def test_aoi_by_id(gc) -> None:
    aoi = gc.create_aoi(box(0, 0, 1, 1))
    rec = gc.create_record("r", "2024-01-05", aoi=aoi)
    assert rec.aoi_id == aoi
    with pytest.raises(gd.NotFound, match="AOI"):
        gc.create_record("r2", "2024-01-05", aoi=aoi + 1000)
    assert gc.get_record_aoi(gc.create_record("r3", "2024-01-05")) is None


def test_bulk_create_in_order_all_or_nothing(gc) -> None:
    items = [{"name": f"r{i}", "datetime": f"2024-01-{i + 1:02d}", "tags": {"i": str(i)}} for i in range(20)]
    items.append(NewRecord("new", "2024-02-01", {"k": "v"}, box(0, 0, 1, 1)))
    recs = gc.create_records(items)
    assert [r.name for r in recs] == [f"r{i}" for i in range(20)] + ["new"]
    assert recs[-1].aoi_id is not None
    before = table_counts(gc)
    with pytest.raises(gd.AlreadyExists):
        gc.create_records([{"name": "fresh", "datetime": "2024-01-01"}, items[3]])
    assert table_counts(gc) == before
    again = gc.create_records([{"name": "fresh", "datetime": "2024-01-01"}, items[3], items[3]], exist_ok=True)
    assert again[1] == again[2] == recs[3]
    with pytest.raises(gd.InvalidArgument, match="unknown field"):
        gc.create_records([{"name": "x", "datetime": "2024-01-01", "colour": "red"}])


def test_bulk_duplicates_within_one_request(gc) -> None:
    item = {"name": "dup", "datetime": "2024-01-01"}
    with pytest.raises(gd.AlreadyExists):
        gc.create_records([item, item])
    a, b = gc.create_records([item, item], exist_ok=True)
    assert a == b and len(gc.list_records()) == 1


def test_bulk_shares_identical_aois(gc) -> None:
    recs = gc.create_records([{"name": f"r{i}", "datetime": "2024-01-01", "aoi": box(0, 0, 1, 1)} for i in range(5)])
    assert len({r.aoi_id for r in recs}) == 1


def test_tags_are_stored_and_matched_literally(gc) -> None:
    for value in NASTY:
        rec = gc.create_record("r", "2024-01-01", tags={"k": value, value or "empty": "x"})
        assert gc.get_record(rec.id).tags == {"k": value, value or "empty": "x"}
        assert gc.list_records(tags={"k": value}) == [rec]
        assert gc.list_records(tags={"k": value + "x"}) == []
        assert gc.list_records(tags={value or "empty": None}) == [rec]
        assert gc.delete_records([rec]) == [rec.id]  # and the records table is still there


def test_bad_arguments_change_nothing(gc) -> None:
    gc.create_record("r", "2024-01-01")
    before = table_counts(gc)
    for tags in ({"k*": "v"}, {"k": "v?"}, {"k": 1}, {1: "v"}, {"": "v"}, ["k", "v"], {"k": None}):
        with pytest.raises(gd.InvalidArgument):
            gc.create_record("r2", "2024-01-01", tags=tags)
    for name in ("", "with space", "a//b", "/a", "é", "a;b", None, 3):
        with pytest.raises(gd.InvalidName):
            gc.create_record(name, "2024-01-01")
    for when in ("yesterday", "2024-13-01", None, 12):
        with pytest.raises(gd.InvalidArgument, match="datetime"):
            gc.create_record("r2", when)
    for aoi in (box(0, 0, 200, 1), "POINT (0 0)", "POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))"):
        with pytest.raises(gd.InvalidGeometry):
            gc.create_record("r2", "2024-01-01", aoi=aoi)
    with pytest.raises(gd.InvalidGeometry, match="record AOI #1"):
        gc.create_records([{"name": "a", "datetime": "2024-01-01", "aoi": box(0, 0, 1, 1)},
                           {"name": "b", "datetime": "2024-01-01", "aoi": box(0, 0, 1, 100)}])
    for items in ("r", [{"name": "x"}], [("x", "2024-01-01")]):
        with pytest.raises(gd.InvalidArgument):
            gc.create_records(items)
    assert table_counts(gc) == before


def test_list_filters_and_order(gc) -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(10):
        gc.create_record(f"S2_{i}", base + timedelta(days=i), tags={"c": "S2" if i % 2 else "L8"},
                         aoi=box(i, 0, i + 1, 1))
    names = [r.name for r in gc.list_records()]
    assert names == [f"S2_{i}" for i in range(10)]
    # time: start inclusive, end exclusive, either open
    assert [r.name for r in gc.list_records(time=(base + timedelta(days=2), base + timedelta(days=4)))] == [
        "S2_2", "S2_3"]
    assert len(gc.list_records(time=(None, base + timedelta(days=3)))) == 3
    assert len(gc.list_records(time=(base + timedelta(days=8), None))) == 2
    assert [r.name for r in gc.list_records(tags={"c": "S2"}, time=("2024-01-04", None))] == [
        "S2_3", "S2_5", "S2_7", "S2_9"]
    assert [r.name for r in gc.list_records(aoi=box(2.5, 0.2, 3.5, 0.4))] == ["S2_2", "S2_3"]
    assert [r.name for r in gc.list_records(name="S2_?", limit=3, page=1)] == ["S2_3", "S2_4", "S2_5"]
    assert gc.list_records(limit=3, page=5) == []


def test_same_datetime_ordered_by_id(gc) -> None:
    recs = [gc.create_record(f"r{i}", "2024-01-01") for i in range(5)]
    assert [r.id for r in gc.list_records()] == sorted(r.id for r in recs)


def test_add_and_remove_tags(gc) -> None:
    rec = gc.create_record("r", "2024-01-01", tags={"a": "1"})
    rec = gc.add_record_tags(rec, {"b": "2", "a": "one"})
    assert rec.tags == {"a": "one", "b": "2"}
    assert gc.list_records(tags={"a": "one", "b": "2"}) == [rec]
    assert gc.list_records(tags={"a": "1"}) == []
    rec = gc.remove_record_tags(rec.id, ["a", "absent"])
    assert rec.tags == {"b": "2"} and gc.get_record(rec.id).tags == {"b": "2"}
    assert gc.list_records(tags={"a": None}) == []


def test_tag_changes_keep_records_unique(gc) -> None:
    gc.create_record("r", "2024-01-01", tags={"a": "1", "b": "2"})
    other = gc.create_record("r", "2024-01-01", tags={"a": "1"})
    before = table_counts(gc)
    with pytest.raises(gd.AlreadyExists, match="unique"):
        gc.add_record_tags(other, {"b": "2"})
    assert table_counts(gc) == before and gc.get_record(other.id).tags == {"a": "1"}
    with pytest.raises(gd.InvalidArgument):
        gc.add_record_tags(other, {"b": "*"})
    with pytest.raises(gd.InvalidArgument):
        gc.remove_record_tags(other, "a")


def test_unknown_records(gc) -> None:
    for bad in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        with pytest.raises(gd.NotFound):
            gc.get_record(bad)
        with pytest.raises(gd.NotFound):
            gc.add_record_tags(bad, {"a": "1"})
        with pytest.raises(gd.NotFound):
            gc.get_record_aoi(bad)
    with pytest.raises(gd.InvalidArgument):
        gc.get_record(42)


def test_delete_records(gc, instance) -> None:
    used, free1, free2 = (gc.create_record(f"r{i}", "2024-01-01") for i in range(3))
    gc.add_datasets([(used, instance, prepared())])
    before = table_counts(gc)
    with pytest.raises(gd.DependencyError, match=used.id):
        gc.delete_records([used, free1])
    assert table_counts(gc) == before
    with pytest.raises(gd.NotFound):
        gc.delete_records([free1, "00000000-0000-0000-0000-000000000000"])
    assert table_counts(gc) == before
    deleted = gc.delete_records([used, free1, "00000000-0000-0000-0000-000000000000", "junk"], no_fail=True)
    assert deleted == [free1.id]
    assert gc.delete_records([free2.id]) == [free2.id]
    assert [r.id for r in gc.list_records()] == [used.id]
    assert gc.delete_records([]) == []
    with pytest.raises(gd.InvalidArgument):
        gc.delete_records(used.id)


@pytest.mark.local_only("listens to the catalogue's SQL engine (its statements, its savepoints)")
@pytest.mark.parametrize("no_fail", [True, False])
def test_delete_records_when_a_dataset_is_indexed_meanwhile(gc, catalog_url, instance, no_fail) -> None:
    """A dataset indexed for a record between delete_records' check and its DELETE: with no_fail the record is
    reported as not deleted (the others are deleted); without, DependencyError and nothing deleted.

    The dataset is injected when delete_records opens the SAVEPOINT around its DELETE, after its checks. On
    PostgreSQL it comes from another connection and is committed, as a concurrent indexer's would be. SQLite
    serialises writers, so there the race cannot happen between processes: the same transaction inserts it.
    """
    raced, free = gc.create_record("raced", "2024-01-01"), gc.create_record("free", "2024-01-01")
    other = gd.connect(catalog_url) if gc.backend == "postgresql" else None
    injected: list[int] = []

    def index_meanwhile(conn, name) -> None:
        if injected:
            return
        if other is not None:
            injected.extend(d.id for d in other.add_datasets([(raced, instance, prepared())]))
        else:
            injected.extend(
                d.id for d in insert_datasets(conn, [(raced.id, instance.id, prepared())], DatasetStatus.ACTIVE, False)
            )

    event.listen(gc._engine, "savepoint", index_meanwhile)
    try:
        if no_fail:
            assert gc.delete_records([raced, free], no_fail=True) == [free.id]
            assert [r.id for r in gc.list_records()] == [raced.id]
        else:
            before = table_counts(gc)
            with pytest.raises(gd.DependencyError, match=f"{raced.id}.*nothing was deleted"):
                gc.delete_records([raced, free])
            if other is None:  # the injected dataset was rolled back with the rest
                assert table_counts(gc) == before
            assert {r.id for r in gc.list_records()} == {raced.id, free.id}
    finally:
        event.remove(gc._engine, "savepoint", index_meanwhile)
        if other is not None:
            other.close()
    assert len(injected) == 1
    if no_fail or other is not None:
        assert [d.id for d in gc.list_datasets(records=[raced])] == injected
