"""Table descriptions: keys and indexes that the catalogue's queries and rules rely on."""

from __future__ import annotations

from geocube_dask.catalog.db.schema import GEOMETRY_COLUMNS, RTREES, metadata


def index_columns(table: str) -> set[tuple[str, ...]]:
    return {tuple(c.name for c in ix.columns) for ix in metadata.tables[table].indexes}


def test_every_table_has_a_primary_key() -> None:
    assert all(t.primary_key.columns for t in metadata.sorted_tables)


def test_query_indexes() -> None:
    assert ("datetime", "id") in index_columns("records")
    assert ("key", "value", "record_id") in index_columns("record_tags")
    assert ("record_id", "instance_id") in index_columns("datasets")
    assert ("instance_id", "status") in index_columns("datasets")
    assert ("dataset_id",) in index_columns("dataset_bands")  # cascaded deletes


def test_uniqueness_rules() -> None:
    def unique(table: str) -> set[tuple[str, ...]]:
        t = metadata.tables[table]
        return {tuple(c.name for c in u.columns) for u in t.constraints if u.__class__.__name__ == "UniqueConstraint"}

    assert ("name", "datetime", "tags_hash") in unique("records")
    assert ("variable_id", "name") in unique("instances")
    assert ("hash",) in unique("aois")
    assert [c.name for c in metadata.tables["dataset_bands"].primary_key.columns] == ["container_uri", "subdir", "band"]


def test_rtrees_follow_geometry_columns() -> None:
    assert set(RTREES) == set(GEOMETRY_COLUMNS)
    for table, column in GEOMETRY_COLUMNS.items():
        assert column in metadata.tables[table].c
