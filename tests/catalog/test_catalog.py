"""The assembled catalogue: one object with every entity family, opened by ``geocube_dask.connect``."""

from __future__ import annotations

import inspect

import pytest

import geocube_dask as gd
from geocube_dask.catalog.catalog import Catalog

PUBLIC = {
    "create_aoi", "get_aoi", "list_aois", "delete_aoi",
    "create_record", "create_records", "get_record", "list_records", "add_record_tags", "remove_record_tags",
    "delete_records", "get_record_aoi",
    "create_variable", "get_variable", "list_variables", "update_variable", "delete_variable",
    "instantiate", "get_instance", "list_instances", "update_instance", "delete_instance",
    "create_palette", "get_palette", "list_palettes", "delete_palette",
    "get_container", "list_containers", "add_datasets", "index_dataset", "index_datasets", "get_dataset",
    "list_datasets", "set_datasets_status", "delete_datasets", "find_datasets", "update_dataset_mapping",
    "create_layout", "get_layout", "list_layouts", "delete_layout",
    "create_grid", "get_grid", "list_grids", "delete_grid", "grid_cells",
    "tidy", "close",
}


def test_every_public_method_is_there_documented_and_typed() -> None:
    for name in PUBLIC:
        method = getattr(Catalog, name)
        assert method.__doc__, name
        assert "return" in inspect.get_annotations(method), name


@pytest.mark.local_only("checks the local Geocube class and its SQLAlchemy URL")
def test_connect_returns_a_geocube(catalog_url: str) -> None:
    gc = gd.connect(catalog_url)
    assert isinstance(gc, gd.Geocube) and isinstance(gc, Catalog)
    gc.close()


def test_default_database_from_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GEOCUBE_DB", str(tmp_path / "env.db"))
    with gd.connect() as gc:
        assert gc.url.endswith("env.db")
    assert (tmp_path / "env.db").exists()
