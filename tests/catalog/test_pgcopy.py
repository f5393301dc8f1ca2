"""COPY text format: escaping, NULLs, exact floats; and a round trip through PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from geocube_dask.catalog.pgcopy import copy_rows, field, next_ids, temp_table_like


def test_fields() -> None:
    assert field(None) == "\\N"
    assert field("a\tb\nc\rd\\e") == "a\\tb\\nc\\rd\\\\e"
    assert field(True) == "t" and field(False) == "f"
    assert field(0.1) == "0.1" and field(3) == "3"


def test_round_trip(gc) -> None:
    if gc.backend != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    values = [("tab\there", 0.1), ("new\nline\\", None), ("\\N literally", 1e300)]
    with gc._tx() as conn:
        temp_table_like(conn, "gc_probe", "containers", ["uri"])
        conn.execute(sa.text("ALTER TABLE gc_probe ADD COLUMN x float8"))
        copy_rows(conn, "gc_probe", ["uri", "x"], values)
        assert conn.execute(sa.text("SELECT uri, x FROM gc_probe ORDER BY uri")).all() == sorted(values)
        ids = next_ids(conn, "datasets", "id", 3)
        assert len(set(ids)) == 3 and next_ids(conn, "datasets", "id", 0) == []
