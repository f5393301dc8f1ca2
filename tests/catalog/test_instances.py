"""Instances: naming, metadata edits, lookups and deletion rules."""

from __future__ import annotations

import pytest

import geocube_dask as gd

from .helpers import prepared, table_counts


def test_instantiate_and_get(gc, variable) -> None:
    inst = gc.instantiate(variable, "master", {"source": "esa"})
    assert inst.variable_id == variable.id and inst.metadata == {"source": "esa"}
    assert gc.get_instance(inst.id) == inst == gc.get_instance(inst)
    assert gc.get_instance(variable, "master") == inst == gc.get_instance(variable.name, "master")
    assert gc.instantiate(variable.name, "v2").name == "v2"
    assert [i.name for i in gc.list_instances(variable)] == ["master", "v2"]
    assert [i.name for i in gc.list_instances(name="v*")] == ["v2"]


def test_names(gc, variable) -> None:
    gc.instantiate(variable, "master")
    for bad in ("a/b", "", "with space", None):
        with pytest.raises(gd.InvalidName):
            gc.instantiate(variable, bad)
    with pytest.raises(gd.AlreadyExists, match="master"):
        gc.instantiate(variable, "master")
    other = gc.create_variable("other", ("uint8", 0, 0, 255), [""])
    assert gc.instantiate(other, "master").name == "master"  # unique within a variable only


def test_update(gc, variable) -> None:
    inst = gc.instantiate(variable, "master", {"a": "1", "b": "2"})
    inst = gc.update_instance(inst, name="main", add_metadata={"c": "3", "a": "one"}, remove_metadata=["b", "x"])
    assert inst.name == "main" and inst.metadata == {"a": "one", "c": "3"}
    assert gc.get_instance(variable, "main") == inst
    gc.instantiate(variable, "other")
    before = table_counts(gc)
    with pytest.raises(gd.AlreadyExists):
        gc.update_instance(inst, name="other")
    with pytest.raises(gd.InvalidArgument):
        gc.update_instance(inst, add_metadata={"k": 1})
    with pytest.raises(gd.InvalidArgument):
        gc.update_instance(inst, remove_metadata="a")
    assert table_counts(gc) == before and gc.get_instance(inst.id) == inst


def test_delete(gc, variable, record) -> None:
    inst = gc.instantiate(variable, "master")
    ds = gc.add_datasets([(record, inst, prepared())])
    with pytest.raises(gd.DependencyError, match="1 dataset"):
        gc.delete_instance(inst)
    gc.delete_datasets([ds[0].id])
    gc.delete_instance(inst.id)
    with pytest.raises(gd.NotFound):
        gc.get_instance(inst.id)


def test_unknown(gc, variable) -> None:
    with pytest.raises(gd.NotFound):
        gc.get_instance("00000000-0000-0000-0000-000000000000")
    with pytest.raises(gd.NotFound):
        gc.get_instance(variable, "nope")
    with pytest.raises(gd.NotFound):
        gc.instantiate("no-such-variable", "master")
    with pytest.raises(gd.InvalidArgument):
        gc.get_instance(variable)
