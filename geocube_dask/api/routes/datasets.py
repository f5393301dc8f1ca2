"""Datasets: indexing files, listing, finding, status, deletion; containers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from ...catalog.ingest.requests import IndexRequest, NewRecord, PreparedDataset
from ...entities import Container, Dataset, Record
from ...errors import InvalidArgument
from ..deps import GC, page_limit, require
from ..wire import (
    Anything,
    Body,
    Bool,
    IntList,
    OptDFormatIn,
    OptNumber,
    OptStr,
    Str,
    TagFilter,
    TimeRange,
    load,
    loose,
)

router = APIRouter(tags=["datasets"])
READ, WRITE = require("read"), require("write")

NEW_RECORD = {"type": "object", "required": ["name", "datetime"], "properties": {
    "name": {"type": "string"}, "datetime": {"type": "string"},
    "tags": {"type": "object"}, "aoi": {}}}
RecordRef = loose({"anyOf": [{"type": "string", "description": "a record id"}, NEW_RECORD]})
Status = loose({"anyOf": [{"type": "string", "enum": ["ACTIVE", "INACTIVE", "TODELETE"]},
                          {"type": "array", "items": {"type": "string"}}, {"type": "null"}]})
OptRefs = loose({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]})
Refs = loose({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})


class IndexIn(Body):
    uri: Str
    record: RecordRef
    instance: Str
    bands: loose({"anyOf": [IntList.__metadata__[0].json_schema, {"type": "null"}]}) = None
    dformat: OptDFormatIn = None
    real_min: OptNumber = None
    real_max: OptNumber = None
    exponent: loose({"type": "number"}) = 1.0
    subdir: Str = ""


class IndexBatch(Body):
    requests: list[IndexIn]


class PreparedItems(Body):
    items: loose({"type": "array", "items": {"type": "array", "minItems": 3, "maxItems": 3}})
    status: Str = "ACTIVE"
    managed: Bool = False


class DatasetSearch(Body):
    instance: OptStr = None
    records: OptRefs = None
    status: Status = None
    uri: OptStr = None
    aoi: Anything = None
    limit: Annotated[int | None, Query(ge=1)] = None
    page: Annotated[int, Query(ge=0)] = 0


class DatasetFind(Body):
    instances: Refs
    records: OptRefs = None
    tags: TagFilter = None
    time: TimeRange = None
    aoi: Anything = None
    status: Status = "ACTIVE"
    case_insensitive: Bool = False
    name: OptStr = None
    footprints: Bool = True


class DatasetIds(Body):
    ids: IntList


class StatusChange(Body):
    ids: IntList
    status: Str


class Found(BaseModel):
    record: Record
    dataset: Dataset


def _record(value: Any) -> Any:
    """A record reference as sent: an id stays, a mapping becomes the NewRecord to create."""
    if isinstance(value, dict):
        try:
            return NewRecord(**value)
        except TypeError as exc:
            raise InvalidArgument(f"a new record has name, datetime, tags and aoi: {exc}") from None
    return value


def _request(body: IndexIn) -> IndexRequest:
    args = body.args()
    args["record"] = _record(args["record"])
    if isinstance(args.get("bands"), list):
        args["bands"] = tuple(args["bands"])
    return IndexRequest(**args)


@router.post("/datasets/index", status_code=201, response_model=Dataset, dependencies=[WRITE])
def index_dataset(body: IndexIn, gc: GC) -> Dataset:
    """Index one file (read by the server) as a dataset."""
    return gc.index_datasets([_request(body)])[0]


@router.post("/datasets/index-batch", status_code=201, response_model=list[Dataset], dependencies=[WRITE])
def index_datasets(body: IndexBatch, gc: GC) -> list[Dataset]:
    """Index many files in one transaction (all or nothing)."""
    return gc.index_datasets([_request(r) for r in body.requests])


@router.post("/datasets", status_code=201, response_model=list[Dataset], dependencies=[WRITE])
def add_datasets(body: PreparedItems, gc: GC) -> list[Dataset]:
    """Insert datasets already described (record, instance, prepared file) without reading files."""
    items = body.items
    if not isinstance(items, list) or not all(isinstance(i, list) and len(i) == 3 for i in items):
        raise InvalidArgument("items must be a list of [record, instance, prepared dataset]")
    try:
        rows = [(r, i, load(p, PreparedDataset)) for r, i, p in items]
    except ValueError as exc:
        raise InvalidArgument(f"a prepared dataset is invalid: {exc}") from None
    return gc.add_datasets(rows, **body.args("items"))


@router.post("/datasets/search", response_model=list[Dataset], dependencies=[READ])
def list_datasets(body: DatasetSearch, request: Request, gc: GC) -> list[Dataset]:
    """Datasets by instance, records, status, uri and AOI, one page."""
    return gc.list_datasets(**body.args("limit"), limit=page_limit(request, body.limit, body.page))


@router.post("/datasets/find", response_model=list[Found], dependencies=[READ])
def find_datasets(body: DatasetFind, gc: GC) -> list[Found]:
    """The (record, dataset) pairs a cube request over these filters would read."""
    args = body.args("instances")
    return [Found(record=r, dataset=d) for r, d in gc.find_datasets(body.instances, **args)]


@router.post("/datasets/status", status_code=204, dependencies=[WRITE])
def set_datasets_status(body: StatusChange, gc: GC) -> None:
    """Set the status of datasets."""
    gc.set_datasets_status(body.ids, body.status)


@router.post("/datasets/delete", response_model=list[str], dependencies=[WRITE])
def delete_datasets(body: DatasetIds, gc: GC) -> list[str]:
    """Delete datasets; the managed container uris they left empty."""
    return gc.delete_datasets(body.ids)


@router.get("/datasets/{dataset_id:int}", response_model=Dataset, dependencies=[READ])
def get_dataset(dataset_id: int, gc: GC) -> Dataset:
    """A dataset by id."""
    return gc.get_dataset(dataset_id)


@router.get("/containers", response_model=list[Container], dependencies=[READ])
def list_containers(
    request: Request, gc: GC, uri: str | None = None, managed: bool | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None, page: Annotated[int, Query(ge=0)] = 0,
) -> list[Container]:
    """Containers (files) whose uri matches the `*`/`?` pattern, one page."""
    return gc.list_containers(uri, managed, page_limit(request, limit, page), page)


@router.get("/container", response_model=Container, dependencies=[READ])
def get_container(uri: str, gc: GC) -> Container:
    """A container by uri."""
    return gc.get_container(uri)
