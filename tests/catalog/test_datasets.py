"""Datasets and containers: listing, status, deletion, and find_datasets (the query behind cubes)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from shapely.geometry import Point, box

import geocube_dask as gd
from geocube_dask.entities import DatasetStatus

from .helpers import last_statement_plan, plan_nodes, prepared, table_counts

SQL_PLANS = "reads the SQL the catalogue sends and the plans the database makes of it"


def test_managed_containers(gc, record, instance) -> None:
    gc.add_datasets([(record, instance, prepared("/mine.tif"))])
    gc.add_datasets([(record, instance, prepared("/ours.tif"))], managed=True, status="INACTIVE")
    assert gc.list_containers() == [gd.Container("/mine.tif", False), gd.Container("/ours.tif", True)]
    assert gc.list_containers(managed=True) == [gd.Container("/ours.tif", True)]
    assert gc.list_containers(uri="/m*") == [gd.Container("/mine.tif", False)]
    with pytest.raises(gd.InvalidArgument, match="unmanaged"):
        gc.add_datasets([(record, instance, prepared("/mine.tif", bands=(2,)))], managed=True)
    with pytest.raises(gd.NotFound):
        gc.get_container("/nope.tif")


def test_list_status_and_delete(gc, instance, make_record) -> None:
    r1, r2 = make_record(), make_record()
    ds = gc.add_datasets([
        (r1, instance, prepared("/a.tif", box(0, 0, 1, 1))),
        (r2, instance, prepared("/b.tif", box(5, 5, 6, 6))),
        (r2, instance, prepared("/c.tif", box(0.5, 0.5, 2, 2))),
    ], managed=True)
    ids = [d.id for d in ds]
    assert [d.id for d in gc.list_datasets()] == ids
    assert [d.id for d in gc.list_datasets(records=[r2])] == ids[1:]
    assert [d.id for d in gc.list_datasets(aoi=Point(0.7, 0.7))] == [ids[0], ids[2]]
    assert [d.id for d in gc.list_datasets(uri="/b.tif")] == [ids[1]]
    assert [d.id for d in gc.list_datasets(instance=instance, limit=1, page=2)] == [ids[2]]
    gc.set_datasets_status(ids[:2], "INACTIVE")
    assert [d.id for d in gc.list_datasets(status=DatasetStatus.INACTIVE)] == ids[:2]
    assert [d.id for d in gc.list_datasets(status=["ACTIVE", "TODELETE"])] == ids[2:]
    before = table_counts(gc)
    with pytest.raises(gd.NotFound):
        gc.set_datasets_status([ids[0], 999999], "ACTIVE")
    with pytest.raises(gd.InvalidArgument):
        gc.set_datasets_status(ids, "DONE")
    with pytest.raises(gd.NotFound):
        gc.delete_datasets([ids[0], 999999])
    assert table_counts(gc) == before
    assert gc.delete_datasets(ids[:2]) == ["/a.tif", "/b.tif"]  # emptied managed containers
    assert [c.uri for c in gc.list_containers()] == ["/c.tif"]
    assert gc.delete_datasets([]) == []
    # the band claims went with the datasets: the file can be indexed again
    assert gc.add_datasets([(r1, instance, prepared("/a.tif"))])[0].id not in ids


def test_unmanaged_containers_are_not_reported(gc, record, instance) -> None:
    ds = gc.add_datasets([(record, instance, prepared("/mine.tif"))])
    assert gc.delete_datasets([ds[0].id]) == []
    assert gc.list_containers() == []


def test_bad_dataset_ids(gc) -> None:
    for bad in ("1", 1.5, None, [1, "2"]):
        with pytest.raises(gd.InvalidArgument):
            gc.delete_datasets(bad if isinstance(bad, list) else [bad])
    with pytest.raises(gd.NotFound):
        gc.get_dataset(12345)


def test_ids_beyond_the_id_column_name_nothing(gc, record, instance) -> None:
    """Integers no BigInteger column holds are unknown ids (the driver once raised OverflowError: a 500)."""
    ds = gc.add_datasets([(record, instance, prepared("/a.tif"))])
    for huge in (2**63, -(2**63) - 1, 10**30):
        with pytest.raises(gd.NotFound):
            gc.get_dataset(huge)
        with pytest.raises(gd.NotFound):
            gc.delete_datasets([ds[0].id, huge])
        with pytest.raises(gd.NotFound):
            gc.set_datasets_status([huge], "INACTIVE")
    assert [d.id for d in gc.list_datasets()] == [ds[0].id]
    assert gc.get_dataset(ds[0].id).status == "ACTIVE"


@pytest.fixture
def scenes(gc, instance, variable):
    """10 dated records (tags alternate), each with two datasets side by side, plus another instance."""
    other = gc.instantiate(variable, "other")
    base = datetime(2024, 1, 1, tzinfo=UTC)
    recs = gc.create_records([
        {"name": f"S2_{i}", "datetime": base + timedelta(days=i // 2), "tags": {"c": "S2" if i % 2 else "L8"}}
        for i in range(10)
    ])
    items = []
    for i, r in enumerate(recs):
        items.append((r, instance, prepared(f"/{i}/west.tif", box(0, 0, 1, 1))))
        items.append((r, instance, prepared(f"/{i}/east.tif", box(1, 0, 2, 1))))
        items.append((r, other, prepared(f"/{i}/other.tif", box(0, 0, 2, 1))))
    ds = gc.add_datasets(items)
    return recs, ds, other


def test_find_datasets_order_and_filters(gc, instance, scenes) -> None:
    recs, ds, other = scenes
    found = gc.find_datasets(instance)
    assert len(found) == 20
    keys = [(r.datetime, r.id, d.id) for r, d in found]
    assert keys == sorted(keys)
    assert all(d.record_id == r.id and d.instance_id == instance.id for r, d in found)
    assert {d.uri.split("/")[-1] for _, d in gc.find_datasets(instance, aoi=Point(0.5, 0.5))} == {"west.tif"}
    assert len(gc.find_datasets(instance, aoi=Point(1, 0.5))) == 20  # on the shared edge: both
    assert {r.tags["c"] for r, _ in gc.find_datasets([instance], tags={"c": "S2"})} == {"S2"}
    assert len(gc.find_datasets(instance, time=("2024-01-02", "2024-01-03"))) == 4
    assert len(gc.find_datasets(instance, records=[recs[0], recs[1].id])) == 4
    assert len(gc.find_datasets(instance, records=recs[:4], tags={"c": "L8"})) == 4
    assert gc.find_datasets(instance, aoi=box(10, 10, 11, 11)) == []
    assert len(gc.find_datasets(other, aoi=Point(1.5, 0.5))) == 10
    assert len(gc.find_datasets([instance, other])) == 30
    assert len(gc.find_datasets(instance, name="S2_1*")) == 2


def test_find_datasets_without_footprints(gc, instance, scenes) -> None:
    """footprints=False gives the same pairs, in the same order, with the footprints left empty; the area
    test is still exact (a point on the shared edge finds both files, one beside them none)."""
    for kwargs in ({}, {"aoi": Point(1, 0.5)}, {"aoi": box(0.2, 0.2, 0.3, 0.3), "tags": {"c": "S2"}},
                   {"aoi": Point(2.5, 0.5)}):
        full = gc.find_datasets(instance, **kwargs)
        lean = gc.find_datasets(instance, footprints=False, **kwargs)
        blank = [(r, replace(d, footprint_wkt="", footprint_4326_wkt="")) for r, d in full]
        assert lean == blank, kwargs
        assert all(d.footprint_wkt and d.footprint_4326_wkt for _, d in full)
    assert len(gc.find_datasets(instance, aoi=Point(1, 0.5), footprints=False)) == 20
    with pytest.raises(gd.InvalidArgument, match="footprints"):
        gc.find_datasets(instance, footprints="no")


def test_found_records_own_their_tags(gc, instance, scenes) -> None:
    """Records of one tag set parsed once still get their own dicts: changing one changes no other."""
    first = gc.find_datasets(instance, tags={"c": "S2"})
    changed = first[0][0]
    changed.tags["c"] = "changed"
    assert {r.tags["c"] for r, _ in first if r.id != changed.id} == {"S2"}
    assert {r.tags["c"] for r, _ in gc.find_datasets(instance, tags={"c": "S2"})} == {"S2"}


@pytest.mark.local_only(SQL_PLANS)
def test_cube_plans_read_no_footprints(gc, instance, scenes) -> None:
    """A cube plan needs neither footprint: its catalogue query does not select them."""
    statements = []

    def grab(conn, cursor, statement, params, context, executemany) -> None:
        statements.append(statement)

    sa.event.listen(gc._engine, "before_cursor_execute", grab)
    try:
        plan = gc.get_cube_plan(instance, crs="EPSG:4326", resolution=0.01, bounds=(0, 0, 2, 1))
    finally:
        sa.event.remove(gc._engine, "before_cursor_execute", grab)
    assert len({s.dataset_id for img in plan.images for s in img.sources}) == 20
    finds = [s for s in statements if "container_uri" in s]  # the query that reads datasets
    assert finds and not any("footprint_wkt" in s for s in finds), statements


def test_find_datasets_status(gc, instance, scenes) -> None:
    _, ds, _ = scenes
    gc.set_datasets_status([ds[0].id], "INACTIVE")
    assert len(gc.find_datasets(instance)) == 19
    assert len(gc.find_datasets(instance, status=None)) == 20
    assert [d.id for _, d in gc.find_datasets(instance, status="INACTIVE")] == [ds[0].id]


def test_find_datasets_arguments(gc, instance, scenes) -> None:
    other_var = gc.create_variable("v2", ("uint8", 0, 0, 255), [""])
    with pytest.raises(gd.InvalidArgument, match="same variable"):
        gc.find_datasets([instance, gc.instantiate(other_var, "x")])
    with pytest.raises(gd.NotFound):
        gc.find_datasets("00000000-0000-0000-0000-000000000000")
    with pytest.raises(gd.InvalidArgument):
        gc.find_datasets([])
    with pytest.raises(gd.InvalidGeometry):
        gc.find_datasets(instance, aoi=box(0, 0, 300, 1))
    with pytest.raises(gd.InvalidArgument):
        gc.find_datasets(instance, time=("2024-02-01", "2024-01-01"))


def test_many_records_in_one_query(gc, instance, make_record) -> None:
    rec = make_record()
    gc.add_datasets([(rec, instance, prepared())])
    fake = [f"00000000-0000-0000-0000-{i:012d}" for i in range(12000)]
    assert len(gc.find_datasets(instance, records=[*fake, rec.id])) == 1
    assert len(gc.list_datasets(records=[rec.id, *fake])) == 1


@pytest.mark.local_only("listens to the catalogue's SQL engine (its statements, its savepoints)")
def test_find_datasets_uses_the_indexes(gc, instance) -> None:
    """On a few thousand datasets, the cube query goes through the spatial index."""
    base = datetime(2024, 1, 1, tzinfo=UTC)
    recs = gc.create_records([
        {"name": f"R{i}", "datetime": base + timedelta(hours=i), "tags": {"c": "S2" if i % 2 else "L8"}}
        for i in range(300)
    ])
    gc.add_datasets([
        (r, instance, prepared(f"/{i}/{k}.tif", box(k * 2, i % 30, k * 2 + 1, i % 30 + 1)))
        for i, r in enumerate(recs) for k in range(10)
    ])
    statements = []

    def grab(conn, cursor, statement, params, context, executemany) -> None:
        statements.append((statement, params))

    sa.event.listen(gc._engine, "before_cursor_execute", grab)
    try:
        found = gc.find_datasets(instance, aoi=box(4.2, 3.2, 4.3, 3.3), time=("2024-01-01", "2024-01-05"),
                                 tags={"c": "S2"})
    finally:
        sa.event.remove(gc._engine, "before_cursor_execute", grab)
    assert found and all(d.uri.endswith("/2.tif") for _, d in found)
    statement, params = statements[-1]
    with gc._tx() as conn:
        if gc.backend == "postgresql":
            conn.exec_driver_sql("ANALYZE")
            sql = conn.connection.dbapi_connection.cursor().mogrify(statement, params).decode()
            plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + sql.replace("%", "%%")).scalars())
            assert "ix_datasets_instance_footprint_datetime" in plan and "Seq Scan on datasets" not in plan, plan
        else:
            plan = "\n".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))
            assert "datasets_rtree VIRTUAL TABLE INDEX" in plan, plan
            assert "SCAN datasets" not in plan.replace("SCAN datasets_rtree", ""), plan


LEVELS = ("L1", "L2", "L2", "l2")  # L2 common, one spelled in lower case
CLOUDS = ("low", "mid", "high")


@pytest.fixture
def tiled(gc, instance):
    """1,200 records on 30 tiles of 1° over a year, tagged with a level (mostly L2) and, every other one, a
    cloud class, each with one dataset covering its tile: ``(records, tiles)``."""
    base = datetime(2023, 1, 1, tzinfo=UTC)
    tiles = [box(x, y, x + 1, y + 1) for x in range(6) for y in range(5)]
    recs = gc.create_records([
        {"name": f"R{i}", "datetime": base + timedelta(hours=7 * i), "aoi": tiles[i % 30],
         "tags": {"level": LEVELS[i % 4], **({"cloud": CLOUDS[i % 3]} if i % 2 else {})}}
        for i in range(1200)
    ])
    gc.add_datasets([(r, instance, prepared(f"/{i}.tif", tiles[i % 30])) for i, r in enumerate(recs)])
    return recs, tiles


def _expected(recs, tiles, area, time, keep):
    """The records a search should return, found by plain Python: AOI (= footprint) meets the area, in the
    time window, ``keep(tags)``; ordered by datetime then id."""
    start, end = (datetime.fromisoformat(t).replace(tzinfo=UTC) for t in time)
    found = [r for i, r in enumerate(recs) if tiles[i % 30].intersects(area) and start <= r.datetime < end
             and keep(r.tags)]
    return sorted(found, key=lambda r: (r.datetime, r.id))


@pytest.mark.parametrize(("tags", "case_insensitive", "keep"), [
    ({"level": "L2"}, False, lambda t: t["level"] == "L2"),
    ({"level": "l2"}, True, lambda t: t["level"].lower() == "l2"),
    ({"level": "L*"}, False, lambda t: t["level"].startswith("L")),
    ({"cloud": None}, False, lambda t: "cloud" in t),
    ({"level": "L2", "cloud": "?i*"}, False, lambda t: t["level"] == "L2" and t.get("cloud", "")[1:2] == "i"),
    ({"nope": None}, False, lambda t: False),
])
def test_area_and_tag_searches_match_a_plain_filter(gc, instance, tiled, tags, case_insensitive, keep) -> None:
    """With an area, tags are tested per record: the same answers as the tag filters' plain definition."""
    recs, tiles = tiled
    area, time = box(1.5, 1.5, 3.2, 2.5), ("2023-02-01", "2023-09-01")
    want = _expected(recs, tiles, area, time, keep)
    found = gc.find_datasets(instance, aoi=area, time=time, tags=tags, case_insensitive=case_insensitive)
    assert [r.id for r, _ in found] == [r.id for r in want]
    listed = gc.list_records(aoi=area, time=time, tags=tags, case_insensitive=case_insensitive)
    assert listed == want
    assert gc.list_records(aoi=area, time=time, tags=tags, case_insensitive=case_insensitive, limit=5, page=1) == (
        want[5:10])


@pytest.mark.local_only(SQL_PLANS)
def test_area_searches_probe_tags_per_record(gc, instance, tiled) -> None:
    """With an area, a common tag value is looked up per record the area keeps, not read for all the records
    that hold it (PostgreSQL used to hash every record_tags row of the value for each query)."""
    area, time, tags = box(1.5, 1.5, 3.2, 2.5), ("2023-01-01", "2024-01-01"), {"level": "L2"}
    for call in (lambda: gc.find_datasets(instance, aoi=area, time=time, tags=tags),
                 lambda: gc.list_records(aoi=area, time=time, tags=tags)):
        plan = last_statement_plan(gc, call)
        if gc.backend == "postgresql":
            tag_scans = [(n, p) for n, p in plan_nodes(plan) if n.get("Relation Name") == "record_tags"]
            assert tag_scans and all(n.get("Parent Relationship") == "SubPlan" for n, _ in tag_scans), plan
        else:
            assert "CORRELATED" in plan and "SEARCH record_tags" in plan and "SCAN record_tags" not in plan, plan


@pytest.mark.local_only(SQL_PLANS)
def test_area_record_searches_go_through_the_aois(gc, tiled) -> None:
    """list_records(aoi=…) finds the AOIs in the area, then each one's records of the time window through the
    (aoi_id, datetime) index: never a scan of the records."""
    area, time = box(1.5, 1.5, 3.2, 2.5), ("2023-03-01", "2023-05-01")
    plan = last_statement_plan(gc, lambda: gc.list_records(aoi=area, time=time))
    if gc.backend == "postgresql":
        nodes = [n for n, _ in plan_nodes(plan)]
        assert any(n.get("Index Name") == "ix_records_aoi_id_datetime" for n in nodes), plan
        assert not any(n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "records" for n in nodes), plan
    else:
        assert "ix_records_aoi_id_datetime (aoi_id=? AND datetime>? AND datetime<?)" in plan, plan


@pytest.mark.local_only(SQL_PLANS)
def test_area_searches_drop_other_dates_in_the_index(gc, instance, tiled) -> None:
    """With an area and a time window, the datasets' spatial index also tests the record datetime they copy
    (PostgreSQL): the datasets of other dates are never read. The answers are those of a plain filter."""
    recs, tiles = tiled
    area, time = box(0.5, 0.5, 2.5, 3.5), ("2023-04-01", "2023-05-15")
    want = _expected(recs, tiles, area, time, lambda t: True)
    call = lambda: gc.find_datasets(instance, aoi=area, time=time)  # noqa: E731
    assert [r.id for r, _ in call()] == [r.id for r in want]
    plan = last_statement_plan(gc, call)
    if gc.backend == "postgresql":
        scans = [n for n, _ in plan_nodes(plan) if n.get("Index Name") == "ix_datasets_instance_footprint_datetime"]
        assert scans and all("record_datetime" in n["Index Cond"] for n in scans), plan
