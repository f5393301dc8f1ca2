"""Records and their tags."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from ...entities import Record
from ..deps import GC, page_limit, require
from ..wire import (
    GEOJSON_SCHEMA,
    Anything,
    Body,
    Bool,
    OptStrMap,
    Str,
    StrList,
    StrMap,
    TagFilter,
    TimeRange,
    geometry_out,
    loose,
)

router = APIRouter(tags=["records"])
READ, WRITE = require("read"), require("write")

RecordAoi = loose({"anyOf": [GEOJSON_SCHEMA, {"type": "string", "description": "WKT"}, {"type": "integer"},
                             {"type": "null"}]})


class RecordIn(Body):
    name: Str
    datetime: Str
    tags: OptStrMap = None
    aoi: RecordAoi = None
    exist_ok: Bool = False


class RecordsIn(Body):
    items: loose({"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "datetime": {"type": "string"},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "aoi": RecordAoi.__metadata__[0].json_schema}, "required": ["name", "datetime"]}})
    exist_ok: Bool = False


class RecordSearch(Body):
    name: loose({"anyOf": [{"type": "string"}, {"type": "null"}]}) = None
    tags: TagFilter = None
    time: TimeRange = None
    aoi: Anything = None
    case_insensitive: Bool = False
    limit: Annotated[int | None, Query(ge=1)] = None
    page: Annotated[int, Query(ge=0)] = 0


class Tags(Body):
    tags: StrMap


class TagKeys(Body):
    keys: StrList


class RecordDeletion(Body):
    ids: StrList
    no_fail: Bool = False


class RecordAoiOut(BaseModel):
    geometry: dict[str, Any] | None


@router.post("/records", status_code=201, response_model=Record, dependencies=[WRITE])
def create_record(body: RecordIn, gc: GC) -> Record:
    """Create a record (with `exist_ok`, an identical one is returned instead)."""
    return gc.create_record(**body.args())


@router.post("/records/batch", status_code=201, response_model=list[Record], dependencies=[WRITE])
def create_records(body: RecordsIn, gc: GC) -> list[Record]:
    """Create records in one transaction."""
    return gc.create_records(**body.args())


@router.post("/records/search", response_model=list[Record], dependencies=[READ])
def list_records(body: RecordSearch, request: Request, gc: GC) -> list[Record]:
    """Records matching name pattern, tags, time range and AOI, one page."""
    args = body.args("limit")
    return gc.list_records(**args, limit=page_limit(request, body.limit, body.page))


@router.post("/records/delete", response_model=list[str], dependencies=[WRITE])
def delete_records(body: RecordDeletion, gc: GC) -> list[str]:
    """Delete records (not those datasets use, unless `no_fail`: then they are kept); the ids deleted."""
    return gc.delete_records(**body.args())


@router.get("/records/{record}", response_model=Record, dependencies=[READ])
def get_record(record: str, gc: GC) -> Record:
    """A record by id."""
    return gc.get_record(record)


@router.get("/records/{record}/aoi", response_model=RecordAoiOut, dependencies=[READ])
def get_record_aoi(record: str, gc: GC) -> RecordAoiOut:
    """A record's AOI as GeoJSON (null without one)."""
    return RecordAoiOut(geometry=geometry_out(gc.get_record_aoi(record)))


@router.post("/records/{record}/tags", response_model=Record, dependencies=[WRITE])
def add_record_tags(record: str, body: Tags, gc: GC) -> Record:
    """Add (or change) tags of a record."""
    return gc.add_record_tags(record, body.tags)


@router.post("/records/{record}/tags/remove", response_model=Record, dependencies=[WRITE])
def remove_record_tags(record: str, body: TagKeys, gc: GC) -> Record:
    """Remove tags of a record by key."""
    return gc.remove_record_tags(record, body.keys)
