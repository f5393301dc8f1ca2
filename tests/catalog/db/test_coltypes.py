"""Column types: NaN nodata, UTC datetimes, JSON text and geometries survive both backends."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPolygon, Polygon, box

from geocube_dask.catalog.db.coltypes import (
    FloatText,
    Geometry4326,
    JSONText,
    UTCDateTime,
    float_text,
    geometries_ewkb,
    geometries_from_wkb,
    json_text,
)

pytestmark = pytest.mark.local_only("the SQL layer under the catalogue: a remote client has none")

probe = sa.Table(
    "gc_probe",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("f", FloatText),
    sa.Column("t", UTCDateTime),
    sa.Column("j", JSONText),
    sa.Column("g", Geometry4326()),
)


@pytest.fixture
def conn(gc):
    with gc._tx() as c:
        probe.create(c)
        yield c
        probe.drop(c)


def test_float_text_round_trips_exactly(conn) -> None:
    values = [math.nan, -10000.0, 0.1, 1e308, -0.0, None]
    conn.execute(probe.insert(), [{"id": i, "f": v} for i, v in enumerate(values)])
    back = conn.execute(sa.select(probe.c.f).order_by(probe.c.id)).scalars().all()
    for value, got in zip(values, back, strict=True):
        if value is None:
            assert got is None
        elif math.isnan(value):
            assert math.isnan(got)
        else:
            assert got == value and math.copysign(1, got) == math.copysign(1, value)


def test_datetimes_are_stored_in_utc_and_returned_aware(conn) -> None:
    paris = datetime(2024, 1, 5, 11, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    conn.execute(probe.insert().values(id=1, t=paris))
    back = conn.execute(sa.select(probe.c.t)).scalar()
    assert back == paris and back.tzinfo == UTC and back.hour == 10
    assert conn.execute(sa.select(probe.c.id).where(probe.c.t < datetime(2024, 1, 5, 10, 31))).scalar() == 1


def test_json_and_geometry(conn) -> None:
    geom = MultiPolygon([box(0, 0, 1, 1), box(2, 2, 3, 3)])
    conn.execute(probe.insert().values(id=1, j={"b": "é", "a": [1, 2.5]}, g=geom))
    row = conn.execute(sa.select(probe.c.j, probe.c.g)).one()
    assert row.j == {"a": [1, 2.5], "b": "é"} and row.g.equals(geom)


def test_geometries_are_stored_as_the_one_encoding(conn) -> None:
    """A bound geometry is stored as geometries_ewkb's bytes (2D EWKB, SRID 4326), which COPY also sends."""
    geom = Polygon([(0, 0, 5), (1, 0, 5), (1, 1, 5), (0, 0, 5)])
    conn.execute(probe.insert().values(id=1, g=geom))
    raw = conn.exec_driver_sql("SELECT g FROM gc_probe").scalar()
    stored = bytes(raw) if conn.dialect.name == "sqlite" else bytes.fromhex(raw)  # PostGIS prints hex EWKB
    assert stored == geometries_ewkb([geom])[0]
    assert shapely.get_srid(shapely.from_wkb(stored)) == 4326
    back = geometries_from_wkb([stored])[0]
    assert not back.has_z and back.equals(Polygon([(0, 0), (1, 0), (1, 1), (0, 0)]))


def test_shared_geometries_are_encoded_once_and_in_order() -> None:
    a, b = box(0, 0, 1, 1), box(2, 2, 3, 3)
    out = geometries_ewkb([a, b, a])
    assert out[0] is out[2] and [g.wkt for g in geometries_from_wkb(out)] == [a.wkt, b.wkt, a.wkt]


def test_text_helpers() -> None:
    assert float_text(math.nan) == "nan" and float_text(0.1) == "0.1"
    assert json_text({"b": 1, "a": [1.0, 2]}) == '{"a":[1.0,2],"b":1}'
