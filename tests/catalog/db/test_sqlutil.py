"""Backend helpers: long IN lists and integrity-error kinds."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from geocube_dask.catalog.db.schema import palettes, variables
from geocube_dask.catalog.db.sqlutil import chunks, in_values, integrity_kind

pytestmark = pytest.mark.local_only("the SQL layer under the catalogue: a remote client has none")


def test_chunks() -> None:
    assert [list(c) for c in chunks(list(range(5)), 2)] == [[0, 1], [2, 3], [4]]


def test_long_in_lists(gc, variable) -> None:
    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(40000)] + [variable.id]
    with gc._tx(write=False) as conn:
        found = conn.execute(sa.select(variables.c.name).where(in_values(variables.c.id, ids, conn.dialect.name)))
        assert found.scalars().all() == [variable.name]
        names = [f"n{i}" for i in range(40000)]
        assert conn.execute(sa.select(palettes.c.name).where(in_values(palettes.c.name, names, conn.dialect.name))
                            ).all() == []


def test_integrity_kinds(gc) -> None:
    with pytest.raises(sa.exc.IntegrityError) as unique, gc._tx() as conn:
        conn.execute(palettes.insert(), [{"name": "p", "points": []}, {"name": "p", "points": []}])
    assert integrity_kind(unique.value) == "unique"
    with pytest.raises(sa.exc.IntegrityError) as fk, gc._tx() as conn:
        conn.execute(sa.text("INSERT INTO variables (id, name, unit, description, dtype, nodata, min, max, bands, "
                             "palette, resampling) VALUES ('00000000-0000-0000-0000-000000000001', 'v', '', '', "
                             "'uint8', '0', 0, 1, '[]', 'missing', 'near')"))
    assert integrity_kind(fk.value) == "foreign_key"
