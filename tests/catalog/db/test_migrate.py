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
from geocube_dask.entities import Task, TaskState

from ..helpers import prepared
from ..workers import open_catalogue

pytestmark = pytest.mark.local_only("the SQL layer under the catalogue: a remote client has none")


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


JOB_TABLES = ("jobs", "job_logs", "tasks", "locks")


def _job_rows(gc) -> dict[str, list[tuple]]:
    with gc._engine.connect() as conn:
        return {t: sorted(tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {t}"))) for t in JOB_TABLES}


def test_export_jobs_migration_keeps_jobs_logs_tasks_and_locks(gc, instance, make_record) -> None:
    """Revision 0005 lets jobs be of type 'export'. On SQLite it rebuilds ``jobs``, whose drop would cascade
    to the logs, tasks and locks of every job: they must all be there after a downgrade and an upgrade."""
    r1, r2 = make_record(), make_record()
    datasets = gc.add_datasets([(r1, instance, prepared("/a.tif")), (r2, instance, prepared("/b.tif"))])
    job = gc.insert_job("q1", "consolidation", "async", {"layout": "L"}, lock=[d.id for d in datasets])
    gc.set_job_tasks(job, [Task(job.id, "t1", "file", TaskState.NEW, {"uri": "/x.tif"}, None, None)],
                     state="CREATED", log="planned")
    gc.insert_job("d1", "deletion", "step-by-step-all", {})
    before = _job_rows(gc)
    assert [len(before[t]) for t in JOB_TABLES] == [2, 3, 1, 2]
    with gc._tx() as conn:
        command.downgrade(_config(conn), "0003")
    assert _job_rows(gc) == before
    with pytest.raises(sa.exc.IntegrityError), gc._tx() as conn:  # revision 0003 knows no export job
        conn.execute(sa.text("UPDATE jobs SET type = 'export' WHERE name = 'd1'"))
    with gc._tx() as conn:
        command.upgrade(_config(conn), "head")
        assert current_revisions(conn) == (head_revision(),)
    assert _job_rows(gc) == before
    exported = gc.insert_job("e1", "export", "async", {"out": "/x.zarr"})
    assert gc.load_job("e1") == exported and len(gc.find_jobs(type="export")) == 1
    with gc._tx() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM locks")).scalar_one() == 2


@pytest.mark.filterwarnings("ignore:Did not recognize type 'geometry'")
def test_datasets_get_their_records_datetimes_when_migrated(fresh_url: str) -> None:
    """0006 copies each record's datetime onto its datasets (here: a catalogue taken back to 0003, which
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
