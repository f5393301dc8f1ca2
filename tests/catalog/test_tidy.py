"""tidy: what is deleted by default and on request, what stays, dry runs, and races with indexing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from shapely.geometry import box
from sqlalchemy import event

import geocube_dask as gd
from geocube_dask.catalog.db.bulk import write_containers
from geocube_dask.catalog.db.schema import RTREES, metadata
from geocube_dask.catalog.tidy import PARTS, USES

from .helpers import prepared, sql

CELLS = [("c1", "EPSG:32631", box(300000, 4790200, 409800, 4900000))]


@dataclass
class Catalogue:
    """A catalogue with used and unused entities of every kind (see ``cat``)."""

    used_record: Any
    bare_records: list[Any]
    shared_aoi: int
    freed_aoi: int
    orphan_aoi: int
    used_instance: Any
    spare_instance: Any
    lonely_instance: Any
    lonely_variable: Any
    bare_variable: Any


@pytest.fixture
def cat(gc, instance) -> Catalogue:
    """One record with a dataset and two without: one shares the AOI of the used record, one has its own;
    an AOI no record uses; an empty managed and an empty unmanaged container (the way a failed clean-up
    leaves them); an instance without datasets beside the used one, a variable whose only instance has no
    dataset and a variable without instances; a layout on a stored grid, and a grid no layout uses."""
    used = gc.create_record("used", "2024-01-01", aoi=box(0, 0, 1, 1))
    sharing = gc.create_record("sharing", "2024-01-02", aoi=box(0, 0, 1, 1))
    alone = gc.create_record("alone", "2024-01-03", aoi=box(5, 5, 6, 6))
    orphan = gc.create_aoi(box(8, 8, 9, 9))
    gc.add_datasets([(used, instance, prepared("/data/used.tif"))])
    with sql(gc) as conn:
        write_containers(conn, ["/cubes/empty-managed.tif"], True)
        write_containers(conn, ["/data/empty-unmanaged.tif"], False)
    lonely = gc.create_variable("lonely", ("uint8", 0, 0, 100), [""])
    gc.create_grid("tiles", CELLS)
    gc.create_grid("spare-grid", CELLS)
    gc.create_layout("on-tiles", grid="tiles", crs="EPSG:32631", resolution=20)
    return Catalogue(
        used_record=used, bare_records=sorted([sharing.id, alone.id]), shared_aoi=used.aoi_id,
        freed_aoi=alone.aoi_id, orphan_aoi=orphan, used_instance=instance,
        spare_instance=gc.instantiate(instance.variable_id, "spare"),
        lonely_instance=gc.instantiate(lonely, "only"), lonely_variable=lonely,
        bare_variable=gc.create_variable("bare", ("uint8", 0, 0, 100), [""]),
    )


def snapshot(gc) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every catalogue table (and of the SQLite R*Trees), as the driver returns them."""
    tables = [t.name for t in metadata.sorted_tables]
    if gc.backend == "sqlite":
        tables += [t.name for t in RTREES.values()]
    with sql(gc, write=False) as conn:
        return {t: sorted((tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {t}")), key=repr) for t in tables}


def test_default_tidy(gc, cat) -> None:
    report = gc.tidy()
    assert report == gd.TidyReport(
        dry_run=False, records=tuple(cat.bare_records), aois=tuple(sorted([cat.freed_aoi, cat.orphan_aoi])),
        containers=("/cubes/empty-managed.tif",), unmanaged_containers=("/data/empty-unmanaged.tif",),
    )
    assert report.total == 6 and report.counts["records"] == 2 and report.counts["grids"] == 0
    assert [r.id for r in gc.list_records()] == [cat.used_record.id]
    assert [a.id for a in gc.list_aois()] == [cat.shared_aoi]
    assert [c.uri for c in gc.list_containers()] == ["/data/used.tif"]
    # the opt-in kinds are untouched
    assert {i.id for i in gc.list_instances()} == {cat.used_instance.id, cat.spare_instance.id,
                                                    cat.lonely_instance.id}
    assert len(gc.list_variables()) == 3 and len(gc.list_layouts()) == 1 and len(gc.list_grids()) == 2
    with sql(gc, write=False) as conn:  # the deleted records' tags went with them
        assert conn.execute(sa.text("SELECT count(*) FROM record_tags")).scalar_one() == 0
    assert gc.tidy() == gd.TidyReport(dry_run=False)  # nothing left to tidy


def test_opt_in_kinds(gc, cat) -> None:
    report = gc.tidy(records=False, aois=False, containers=False, instances=True, variables=True, layouts=True,
                     grids=True)
    assert report.instances == tuple(sorted([cat.spare_instance.id, cat.lonely_instance.id]))
    # "lonely" lost its only instance in the same run; the used variable keeps its used instance
    assert report.variables == tuple(sorted([cat.lonely_variable.id, cat.bare_variable.id]))
    assert report.layouts == ("on-tiles",) and report.grids == ("spare-grid", "tiles")
    assert report.records == report.aois == report.containers == ()
    assert [i.id for i in gc.list_instances()] == [cat.used_instance.id]
    assert [v.id for v in gc.list_variables()] == [cat.used_instance.variable_id]
    assert gc.list_layouts() == [] and gc.list_grids() == []
    assert len(gc.list_records()) == 3 and len(gc.list_aois()) == 3


def test_grids_stay_while_a_layout_uses_them(gc, cat) -> None:
    assert gc.tidy(grids=True).grids == ("spare-grid",)
    assert [g.name for g in gc.list_grids()] == ["tiles"]


def test_dry_run_changes_nothing_and_reports_what_a_real_run_does(gc, cat) -> None:
    everything = {"instances": True, "variables": True, "layouts": True, "grids": True}
    before = snapshot(gc)
    dry = gc.tidy(dry_run=True, **everything)
    assert snapshot(gc) == before
    assert dry.dry_run and dry.total == 13
    real = gc.tidy(**everything)
    assert real == gd.TidyReport(**{**dry.__dict__, "dry_run": False})
    assert snapshot(gc) != before


@pytest.mark.local_only("listens to the catalogue's SQL engine (its statements, its savepoints)")
def test_a_record_given_a_dataset_meanwhile_is_kept(gc, catalog_url, cat) -> None:
    """A dataset indexed for a record between tidy's search and its DELETE: the record stays, unreported.

    Injected when tidy opens its first SAVEPOINT (the records' deletion): from another connection, committed,
    on PostgreSQL; in the same transaction on SQLite, whose writers cannot overlap.
    """
    target = cat.bare_records[0]
    other = gd.connect(catalog_url) if gc.backend == "postgresql" else None
    injected: list[int] = []

    def index_meanwhile(conn, name) -> None:
        if injected:
            return
        if other is not None:
            injected.extend(d.id for d in other.add_datasets([(target, cat.used_instance, prepared("/data/late.tif"))]))
        else:
            from geocube_dask.catalog.insertion import insert_datasets
            from geocube_dask.entities import DatasetStatus

            items = [(target, cat.used_instance.id, prepared("/data/late.tif"))]
            injected.extend(d.id for d in insert_datasets(conn, items, DatasetStatus.ACTIVE, False))

    event.listen(gc._engine, "savepoint", index_meanwhile)
    try:
        report = gc.tidy()
    finally:
        event.remove(gc._engine, "savepoint", index_meanwhile)
        if other is not None:
            other.close()
    assert len(injected) == 1
    assert report.records == tuple(cat.bare_records[1:])
    assert {r.id for r in gc.list_records()} == {cat.used_record.id, target}
    assert [d.id for d in gc.list_datasets(records=[target])] == injected


def test_bad_flags(gc, cat) -> None:
    before = snapshot(gc)
    for kwargs in ({"dry_run": "yes"}, {"records": None}, {"grids": 1}):
        with pytest.raises(gd.InvalidArgument, match="True or False"):
            gc.tidy(**kwargs)
    assert snapshot(gc) == before


def test_the_rules_cover_every_reference() -> None:
    """Every foreign key to a tidied table is a use (USES) or a part (PARTS): a new table that refers to
    records, AOIs, containers, instances, variables, layouts or grids must say which."""
    for table, (key, users) in USES.items():
        referring = {
            (fk.parent.table.name, fk.parent.name)
            for t in metadata.sorted_tables for fk in t.foreign_keys if fk.column.table.name == table
        }
        classified = {(c.table.name, c.name) for c in users + PARTS.get(table, ())}
        assert referring == classified, table
        assert key.primary_key and key.table.name == table
