"""Bulk writes: the same results through COPY (PostgreSQL) and multi-row INSERTs (SQLite)."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa
from shapely.geometry import Polygon, box

from geocube_dask.catalog.db.bulk import write_claims, write_containers, write_datasets
from geocube_dask.catalog.db.schema import datasets
from geocube_dask.catalog.geometry import footprints_4326
from geocube_dask.entities import DFormat

from ..helpers import prepared

pytestmark = pytest.mark.local_only("the SQL layer under the catalogue: a remote client has none")


def test_containers_and_claims(gc, record, instance) -> None:
    with gc._tx() as conn:
        assert write_containers(conn, ["/b", "/a"], False) == {"/a", "/b"}
        assert write_containers(conn, ["/a", "/c"], True) == {"/c"}
        items = [(record.id, instance.id, prepared("/a")), (record.id, instance.id, prepared("/b"))]
        wkts = [p.footprint_4326_wkt for *_, p in items]
        ids = write_datasets(conn, items, "ACTIVE", footprints_4326(wkts), [record.datetime] * 2)
        claimed = write_claims(conn, [("/a", "", 1, ids[0]), ("/a", "", 2, ids[0]), ("/b", "", 1, ids[1])])
        assert claimed == {(ids[0], 1), (ids[0], 2), (ids[1], 1)}
        assert write_claims(conn, [("/a", "", 2, ids[1]), ("/a", "", 3, ids[1])]) == {(ids[1], 3)}
        assert write_claims(conn, []) == set()
        conn.rollback()


def test_dataset_rows_match_the_column_types(gc, record, instance) -> None:
    """A row written in bulk reads back exactly as the column types store it (3D footprints flattened)."""
    fp3d = Polygon([(0, 0, 9), (1, 0, 9), (1, 1, 9), (0, 0, 9)])
    p = prepared("/x\ty", fp3d)
    with gc._tx() as conn:
        write_containers(conn, [p.uri], False)
        geoms = footprints_4326([p.footprint_4326_wkt])
        ids = write_datasets(conn, [(record.id, instance.id, p)], "INACTIVE", geoms, [record.datetime])
        row = conn.execute(sa.select(datasets).where(datasets.c.id == ids[0])).one()
        conn.rollback()
    assert (row.container_uri, row.bands, row.nodata, row.transform, row.overviews, row.status) == (
        "/x\ty", [1], 0.0, [0.01, 0.0, 0.0, 0.0, -0.01, 1.0], [[50, 50], [25, 25]], "INACTIVE")
    assert row.footprint_4326.equals(Polygon([(0, 0), (1, 0), (1, 1), (0, 0)])) and not row.footprint_4326.has_z
    assert row.record_datetime == record.datetime
    assert not box(0, 0, 1, 1).equals(row.footprint_4326)


def test_bulk_rows_store_what_a_plain_insert_stores(gc, record, instance) -> None:
    """COPY (PostgreSQL) and executemany (SQLite) rows are byte for byte the rows a plain INSERT through the
    column types stores: same uuid, JSON, float and geometry encodings (compared as the driver returns them)."""
    nan_nodata = DFormat("float32", math.nan, -1.0, 1.0)
    p = prepared("/x\ty", box(0.1, 0.2, 0.7, 0.9), dformat=nan_nodata, bands=(3, 1), real_min=-0.5)
    with gc._tx() as conn:
        write_containers(conn, [p.uri], False)
        geoms = footprints_4326([p.footprint_4326_wkt])
        [bulk_id] = write_datasets(conn, [(record.id, instance.id, p)], "INACTIVE", geoms, [record.datetime])
        plain_id = conn.execute(
            datasets.insert().values(
                record_id=record.id, instance_id=instance.id, container_uri=p.uri, subdir=p.subdir,
                bands=list(p.bands), dtype="float32", nodata=math.nan, min=-1.0, max=1.0, real_min=-0.5,
                real_max=1.0, exponent=1.0, status="INACTIVE", crs=p.crs, transform=list(p.transform),
                width=p.width, height=p.height, overviews=[list(o) for o in p.overviews],
                footprint_wkt=p.footprint_wkt, footprint_4326=geoms[0], record_datetime=record.datetime,
            ).returning(datasets.c.id)
        ).scalar_one()
        raw = {
            i: conn.exec_driver_sql(f"SELECT * FROM datasets WHERE id = {i}").mappings().one()
            for i in (bulk_id, plain_id)
        }
        conn.rollback()
    bulk_row, plain_row = ({k: v for k, v in raw[i].items() if k != "id"} for i in (bulk_id, plain_id))
    assert bulk_row == plain_row
    assert bulk_row["nodata"] == "nan" and bulk_row["bands"] == "[3,1]"
