"""COPY text format: escaping, NULLs, exact floats; and a round trip through PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

import geocube_dask as gd
from geocube_dask.catalog.db.pgcopy import LineReader, copy_rows, field, next_ids, temp_table_like


def test_fields() -> None:
    assert field(None) == "\\N"
    assert field("a\tb\nc\rd\\e") == "a\\tb\\nc\\rd\\\\e"
    assert field(True) == "t" and field(False) == "f"
    assert field(0.1) == "0.1" and field(3) == "3"


def test_line_reader_streams_every_byte() -> None:
    lines = [f"é{i}\tx\n" for i in range(1000)]
    reader = LineReader(lines)
    chunks = []
    while chunk := reader.read(97):
        assert len(chunk) <= 97
        chunks.append(chunk)
    assert b"".join(chunks) == "".join(lines).encode() and reader.read(10) == b""
    assert LineReader(iter(lines)).read() == "".join(lines).encode()


def test_round_trip(postgis_worker_url: str) -> None:
    gc = gd.connect(postgis_worker_url)
    values = [("tab\there", 0.1), ("new\nline\\", None), ("\\N literally", 1e300)]
    with gc._tx() as conn:
        temp_table_like(conn, "gc_probe", "containers", ["uri"])
        conn.execute(sa.text("ALTER TABLE gc_probe ADD COLUMN x float8"))
        copy_rows(conn, "gc_probe", ["uri", "x"], values)
        assert conn.execute(sa.text("SELECT uri, x FROM gc_probe ORDER BY uri")).all() == sorted(values)
        ids = next_ids(conn, "datasets", "id", 3)
        assert len(set(ids)) == 3 and next_ids(conn, "datasets", "id", 0) == []
    gc.close()
