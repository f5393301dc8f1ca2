"""Areas of interest."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from ..deps import GC, page_limit, require
from ..wire import Body, Geometry, OptGeometry, geometry_out

router = APIRouter(tags=["aois"])
READ, WRITE = require("read"), require("write")
AoiIdPath = Annotated[int, Path(ge=1, description="ids start at 1")]


class AoiIn(Body):
    geometry: Geometry


class AoiSearch(Body):
    aoi: OptGeometry = None
    limit: Annotated[int | None, Query(ge=1)] = None
    page: Annotated[int, Query(ge=0)] = 0


class AoiOut(BaseModel):
    id: int
    geometry: dict[str, Any]


class AoiId(BaseModel):
    id: int


def _out(aoi: Any) -> AoiOut:
    return AoiOut(id=aoi.id, geometry=geometry_out(aoi.geometry))


@router.post("/aois", status_code=201, response_model=AoiId, dependencies=[WRITE])
def create_aoi(body: AoiIn, gc: GC) -> AoiId:
    """Create (or find, if stored already) an AOI; its id."""
    return AoiId(id=gc.create_aoi(body.geometry))


@router.post("/aois/search", response_model=list[AoiOut], dependencies=[READ])
def list_aois(body: AoiSearch, request: Request, gc: GC) -> list[AoiOut]:
    """AOIs (intersecting `aoi`), one page."""
    return [_out(a) for a in gc.list_aois(body.aoi, page_limit(request, body.limit, body.page), body.page)]


@router.get("/aois/{aoi_id:int}", response_model=AoiOut, dependencies=[READ])
def get_aoi(aoi_id: AoiIdPath, gc: GC) -> AoiOut:
    """An AOI by id, its geometry as GeoJSON."""
    return _out(gc.get_aoi(aoi_id))


@router.delete("/aois/{aoi_id:int}", status_code=204, dependencies=[WRITE])
def delete_aoi(aoi_id: AoiIdPath, gc: GC) -> None:
    """Delete an AOI (not while records use it)."""
    gc.delete_aoi(aoi_id)
