"""Adding datasets: bulk inserts, identical re-adds, band conflicts, validation, concurrent writers."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import sqlalchemy as sa
from shapely.geometry import box

import geocube_dask as gd
from geocube_dask.entities import DatasetStatus, DFormat

from .helpers import prepared, table_counts
from .workers import add_prepared


def test_add_and_get(gc, record, instance) -> None:
    items = [(record, instance, prepared("/data/a.tif")), (record.id, instance.id, prepared("/data/b.tif"))]
    ds = gc.add_datasets(items)
    assert [d.uri for d in ds] == ["/data/a.tif", "/data/b.tif"]
    assert ds[0].id < ds[1].id and ds[0].status == DatasetStatus.ACTIVE
    assert gc.get_dataset(ds[0].id) == ds[0] == gc.get_dataset(ds[0])
    d = ds[0]
    assert (d.record_id, d.instance_id, d.bands, d.width, d.overviews) == (record.id, instance.id, (1,), 100,
                                                                          ((50, 50), (25, 25)))
    assert gc.get_container("/data/a.tif") == gd.Container("/data/a.tif", False)


def test_dataset_ids_are_never_reused(gc, record, instance) -> None:
    first = gc.add_datasets([(record, instance, prepared(f"/ids/{i}.tif")) for i in range(3)])
    gc.delete_datasets([d.id for d in first[1:]])
    later = gc.add_datasets([(record, instance, prepared(f"/ids/{i}.tif")) for i in range(3, 5)])
    assert min(d.id for d in later) > first[-1].id
    assert [gc.get_dataset(d.id).uri for d in later] == ["/ids/3.tif", "/ids/4.tif"]


def test_internal_nodata_nan_and_none_survive(gc, record, instance) -> None:
    ds = gc.add_datasets([
        (record, instance, prepared("/a.tif", dformat=DFormat("float32", math.nan, 0.0, 1.0))),
        (record, instance, prepared("/b.tif", dformat=DFormat("uint16", None, 0.0, 10000.0))),
    ])
    a, b = (gc.get_dataset(d.id) for d in ds)
    assert math.isnan(a.dformat.nodata) and b.dformat.nodata is None


def test_tricky_uris_round_trip(gc, record, instance) -> None:
    uris = ["s3://b/with space/x.tif", "/tab\there.tif", "/new\nline.tif", "/back\\slash.tif", "/é%_'\".tif"]
    ds = gc.add_datasets([(record, instance, prepared(u, subdir="GTIFF_DIR:1\t")) for u in uris])
    assert [gc.get_dataset(d.id).uri for d in ds] == uris
    assert gc.get_dataset(ds[1].id).subdir == "GTIFF_DIR:1\t"
    assert [d.uri for d in gc.list_datasets(uri="/é%_'\".tif")] == ["/é%_'\".tif"]


def test_identical_add_is_a_no_op(gc, record, instance) -> None:
    first = gc.add_datasets([(record, instance, prepared("/a.tif"))])[0]
    before = table_counts(gc)
    again = gc.add_datasets([(record, instance, prepared("/a.tif")), (record, instance, prepared("/a.tif"))])
    assert again == [first, first]
    assert table_counts(gc) == before


def test_duplicates_within_one_call(gc, record, instance) -> None:
    ds = gc.add_datasets([(record, instance, prepared("/a.tif")), (record, instance, prepared("/a.tif"))])
    assert ds[0] == ds[1] and len(gc.list_datasets()) == 1


def test_decreasing_mapping_is_kept(gc, record, instance) -> None:
    ds = gc.add_datasets([(record, instance, prepared("/a.tif", real_min=10000.0, real_max=-5.0))])[0]
    assert (gc.get_dataset(ds.id).real_min, gc.get_dataset(ds.id).real_max) == (10000.0, -5.0)


def test_other_bands_of_the_same_file(gc, record, instance) -> None:
    a = gc.add_datasets([(record, instance, prepared("/a.tif", bands=(1,)))])[0]
    b = gc.add_datasets([(record, instance, prepared("/a.tif", bands=(2,)))])[0]
    c = gc.add_datasets([(record, instance, prepared("/a.tif", bands=(1,), subdir="GTIFF_DIR:1"))])[0]
    assert len({a.id, b.id, c.id}) == 3


CHANGES = [
    ({"bands": (1,)}, None),  # identical
    ({"transform": (0.02, 0.0, 0.0, 0.0, -0.02, 1.0)}, "transform"),
    ({"dformat": DFormat("uint16", 0.0, 0.0, 5000.0)}, "dformat"),
    ({"real_max": 2.0}, "real_max"),
    ({"exponent": 2.0}, "exponent"),
]


def test_overlapping_bands_with_different_content(gc, record, instance) -> None:
    for n, (change, differs) in enumerate(CHANGES):
        uri = f"/{n}.tif"
        first = gc.add_datasets([(record, instance, prepared(uri))])[0]
        candidate = replace(prepared(uri), **change)
        before = table_counts(gc)
        if differs is None:
            assert gc.add_datasets([(record, instance, candidate)]) == [first]
        else:
            with pytest.raises(gd.IncompatibleDataset, match=rf"dataset {first.id}\b.*{differs}"):
                gc.add_datasets([(record, instance, prepared("/other.tif")), (record, instance, candidate)])
        assert table_counts(gc) == before


def test_partially_overlapping_bands(gc, record, instance, variable) -> None:
    var2 = gc.create_variable("two", ("uint16", 0, 0, 10000), ["a", "b"])
    inst2 = gc.instantiate(var2, "master")
    first = gc.add_datasets([(record, inst2, prepared("/a.tif", bands=(1, 2)))])[0]
    before = table_counts(gc)
    with pytest.raises(gd.IncompatibleDataset, match=f"dataset {first.id}"):
        gc.add_datasets([(record, inst2, prepared("/a.tif", bands=(2, 3)))])
    with pytest.raises(gd.IncompatibleDataset, match=f"dataset {first.id}"):
        gc.add_datasets([(record, instance, prepared("/a.tif", bands=(1,)))])  # another instance
    assert table_counts(gc) == before


def test_same_file_for_another_record_conflicts(gc, instance, make_record) -> None:
    r1, r2 = make_record(), make_record()
    first = gc.add_datasets([(r1, instance, prepared("/a.tif"))])[0]
    with pytest.raises(gd.IncompatibleDataset, match=f"dataset {first.id}.*record_id"):
        gc.add_datasets([(r2, instance, prepared("/a.tif"))])


def test_validation_changes_nothing(gc, record, instance) -> None:
    before = table_counts(gc)
    bad = [
        (replace(prepared(), exponent=0.0), gd.InvalidArgument, "exponent"),
        (replace(prepared(), exponent=-1.0), gd.InvalidArgument, "exponent"),
        (replace(prepared(), exponent=math.inf), gd.InvalidArgument, "exponent"),
        (replace(prepared(), real_min=1.0), gd.InvalidArgument, "real_min"),
        (replace(prepared(), real_min=20000.0, real_max=30000.0), gd.IncompatibleDataset, "range"),
        (replace(prepared(), bands=(1, 2)), gd.IncompatibleDataset, "band"),
        (replace(prepared(), bands=(0,)), gd.InvalidArgument, "band"),
        (replace(prepared(), bands=()), gd.InvalidArgument, "bands"),
        (replace(prepared(), width=0), gd.InvalidArgument, "width"),
        (replace(prepared(), transform=(1.0, 0.0)), gd.InvalidArgument, "transform"),
        (replace(prepared(), uri=""), gd.InvalidArgument, "uri"),
        (replace(prepared(), dformat=("uint16", 0, 0, 1)), gd.InvalidArgument, "dformat"),
        (replace(prepared(), footprint_4326_wkt="POINT (1 1)"), gd.InvalidGeometry, "Polygon"),
        (replace(prepared(), footprint_4326_wkt=box(0, 0, 200, 1).wkt), gd.InvalidGeometry, "outside"),
        ("not prepared", gd.InvalidArgument, "PreparedDataset"),
    ]
    for p, error, message in bad:
        with pytest.raises(error, match=message):
            gc.add_datasets([(record, instance, prepared("/ok.tif")), (record, instance, p)])
    for args, error in [
        ([(record, instance)], gd.InvalidArgument),
        ([("00000000-0000-0000-0000-000000000000", instance, prepared())], gd.NotFound),
        ([(record, "00000000-0000-0000-0000-000000000000", prepared())], gd.NotFound),
        ([(record, "junk", prepared())], gd.NotFound),
    ]:
        with pytest.raises(error):
            gc.add_datasets(args)
    with pytest.raises(gd.InvalidArgument, match="status"):
        gc.add_datasets([(record, instance, prepared())], status="GONE")
    assert table_counts(gc) == before


@pytest.mark.local_only("spawned writer processes opening the catalogue's database themselves")
def test_two_processes_add_the_same_files(gc, catalog_url, record, instance, spawn_pool) -> None:
    """Concurrent indexing of the same files ends with exactly one dataset per file."""
    uris = [f"/shared/{i}.tif" for i in range(40)]
    pool, manager = spawn_pool
    for _ in range(2):
        barrier = manager.Barrier(2)
        jobs = [
            pool.apply_async(add_prepared, (catalog_url, barrier, record.id, instance.id, list(order)))
            for order in (uris, uris[::-1])
        ]
        a, b = (job.get(timeout=120) for job in jobs)
        assert a == b[::-1]
    assert sorted(d.uri for d in gc.list_datasets()) == sorted(uris)
    with gc._tx(write=False) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM dataset_bands")).scalar_one() == 40
