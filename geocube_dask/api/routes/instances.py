"""Instances of variables."""

from __future__ import annotations

from fastapi import APIRouter

from ...entities import Instance
from ..deps import GC, require
from ..wire import Body, OptStr, OptStrMap, Str, StrList, loose

router = APIRouter(tags=["instances"])
READ, WRITE = require("read"), require("write")


class InstanceIn(Body):
    variable: Str
    name: Str
    metadata: OptStrMap = None


class InstanceChange(Body):
    name: OptStr = None
    add_metadata: OptStrMap = None
    remove_metadata: loose({"anyOf": [StrList.__metadata__[0].json_schema, {"type": "null"}]}) = None


@router.post("/instances", status_code=201, response_model=Instance, dependencies=[WRITE])
def instantiate(body: InstanceIn, gc: GC) -> Instance:
    """Create an instance of a variable."""
    return gc.instantiate(**body.args())


@router.get("/instances", response_model=list[Instance], dependencies=[READ])
def list_instances(gc: GC, variable: str | None = None, name: str | None = None) -> list[Instance]:
    """Instances (of a variable; whose name matches the `*`/`?` pattern)."""
    return gc.list_instances(variable, name)


@router.get("/instances/{instance:path}", response_model=Instance, dependencies=[READ])
def get_instance(instance: str, gc: GC, name: str | None = None) -> Instance:
    """An instance by id, by `VARIABLE/INSTANCE`, or by variable and `name`."""
    return gc.get_instance(instance, name)


@router.patch("/instances/{instance:path}", response_model=Instance, dependencies=[WRITE])
def update_instance(instance: str, body: InstanceChange, gc: GC) -> Instance:
    """Rename an instance, add or remove metadata."""
    return gc.update_instance(instance, **body.args())


@router.delete("/instances/{instance:path}", status_code=204, dependencies=[WRITE])
def delete_instance(instance: str, gc: GC) -> None:
    """Delete an instance (not while datasets use it)."""
    gc.delete_instance(instance)
