"""Schema migrations: applied on connect, once under concurrency, matching the table descriptions."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from shapely.geometry import box

import geocube_dask as gd
from geocube_dask.catalog.db.engine import begin, database_url, make_engine
from geocube_dask.catalog.db.migrate import _config, current_revisions, head_revision, migrate
from geocube_dask.catalog.db.schema import datasets, metadata, records

from ..helpers import prepared
from ..workers import open_catalogue


def test_connect_migrates_a_fresh_database_once(fresh_url: str) -> None:
    gc = gd.connect(fresh_url)
    with gc._tx(write=False) as conn:
        assert current_revisions(conn) == (head_revision(),)
        tables = set(sa.inspect(conn).get_table_names())
    gc.close()
    assert {t.name for t in metadata.sorted_tables} <= tables
    # Reconnecting, or migrating again, changes nothing.
    gd.connect(fresh_url).close()
    engine = make_engine(database_url(fresh_url))
    migrate(engine)
    with begin(engine) as conn:
        assert current_revisions(conn) == (head_revision(),)
        # A database written by a newer geocube_dask is refused, and left as it is.
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(gd.SchemaVersionError, match="newer geocube_dask.*[Uu]pgrade"):
        gd.connect(fresh_url)
    with pytest.raises(gd.SchemaVersionError):
        migrate(engine)
    with begin(engine, write=False) as conn:
        assert current_revisions(conn) == ("9999_from_the_future",)
    engine.dispose()


SPATIAL_INDEXES = {"ix_aois_geom", "ix_datasets_instance_footprint_datetime", "ix_grid_cells_geom_4326"}


@pytest.mark.filterwarnings("ignore:Did not recognize type 'geometry'")
def test_migrated_schema_matches_the_table_descriptions(gc) -> None:
    def keep(obj, name, type_, reflected, compare_to) -> bool:
        if type_ == "table":
            return not ("_rtree" in name or name == "spatial_ref_sys")
        return not (type_ == "index" and name in SPATIAL_INDEXES)  # checked by test_spatial_indexes_exist

    with gc._tx(write=False) as conn:
        context = MigrationContext.configure(conn, opts={"include_object": keep, "compare_type": False})
        diff = compare_metadata(context, metadata)
    # PostGIS geometry columns reflect as an unknown type; types are compared by the tests that use them.
    assert diff == []


def test_spatial_indexes_exist(gc) -> None:
    with gc._tx(write=False) as conn:
        if conn.dialect.name == "postgresql":
            gist = conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING gist%'"))
            assert set(gist.scalars()) >= SPATIAL_INDEXES
        else:
            names = set(sa.inspect(conn).get_table_names())
            assert {"aois_rtree", "datasets_rtree", "grid_cells_rtree"} <= names


def test_two_processes_open_a_fresh_database_at_once(fresh_url: str, spawn_pool) -> None:
    pool, manager = spawn_pool
    barrier = manager.Barrier(2)
    results = [pool.apply_async(open_catalogue, (fresh_url, barrier)) for _ in range(2)]
    revisions = [r.get(timeout=120) for r in results]
    assert revisions == [head_revision(), head_revision()]
    gc = gd.connect(fresh_url)
    with gc._tx(write=False) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    gc.close()


@pytest.mark.filterwarnings("ignore:Did not recognize type 'geometry'")
def test_datasets_get_their_records_datetimes_when_migrated(fresh_url: str) -> None:
    """0005 copies each record's datetime onto its datasets (here: a catalogue taken back to 0003, which
    drops the copy, then opened again); searches by time and area then find what they did."""
    gc = gd.connect(fresh_url)
    inst = gc.instantiate(gc.create_variable("v", ("uint8", 0, 0, 1), ["b"]), "i")
    recs = gc.create_records([{"name": f"r{i}", "datetime": f"2024-0{i + 1}-1{i}T0{i}:30:00Z"} for i in range(3)])
    gc.add_datasets([(r, inst, prepared(f"/{n}/{i}.tif")) for i, r in enumerate(recs) for n in range(2)])
    gc.close()
    engine = make_engine(database_url(fresh_url))
    with begin(engine) as conn:
        command.downgrade(_config(conn), "0003")
    with begin(engine, write=False) as conn:
        assert "record_datetime" not in {c["name"] for c in sa.inspect(conn).get_columns("datasets")}
    migrate(engine)
    with begin(engine, write=False) as conn:
        pairs = conn.execute(
            sa.select(datasets.c.record_datetime, records.c.datetime)
            .select_from(datasets.join(records, records.c.id == datasets.c.record_id))
        ).all()
    engine.dispose()
    assert len(pairs) == 6 and all(copy == original for copy, original in pairs)
    gc = gd.connect(fresh_url)
    found = gc.find_datasets(inst, aoi=box(0.2, 0.2, 0.3, 0.3), time=("2024-02-01", "2024-04-01"))
    gc.close()
    assert [r.name for r, _ in found] == ["r1", "r1", "r2", "r2"]
