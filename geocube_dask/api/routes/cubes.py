"""Cube and timeseries requests, answered with plans: the pixels are read by the caller's workers.

``POST /cube/plan`` answers :meth:`CubePlan.to_json` (no credentials: a plan's GDAL settings that look
like secrets are left out), ``POST /timeseries`` :meth:`TimeseriesPlan.to_json`. Both run on the app's
bounded pool. A ``group_by`` is a name (``"day"``…): a callable cannot travel.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ...catalog.geometry import as_geometry
from ..deps import require, run_bounded
from ..wire import Anything, Body, OptGeometry, OptStr, TagFilter, TimeRange, loose

router = APIRouter(tags=["cubes"])
READ = require("read")

Refs = loose({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
OptRefs = loose({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]})
Numbers = loose({"anyOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}}, {"type": "null"}]})
OptNumbers = loose({"anyOf": [{"type": "array", "items": {"type": "number"}}, {"type": "null"}]})
PLAN_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": {"type": "object"}}}, "description": "the plan"}}


class CubeRequest(Body):
    instance: Refs
    records: OptRefs = None
    tags: TagFilter = None
    time: TimeRange = None
    groups: loose({"anyOf": [{"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
                             {"type": "null"}]}) = None
    crs: Anything = None
    resolution: Numbers = None
    bounds: OptNumbers = None
    transform: OptNumbers = None
    shape: OptNumbers = None
    aoi: OptGeometry = None
    aoi_crs: Anything = "EPSG:4326"
    resampling: OptStr = None
    group_by: OptStr = None
    chunks: Numbers = 1024
    on_error: loose({"type": "string", "enum": ["raise", "nodata"]}) = "raise"


class TimeseriesRequest(Body):
    instance: Refs
    point: OptNumbers = None
    geometry: OptGeometry = None
    crs: Anything = "EPSG:4326"
    time: TimeRange = None
    records: OptRefs = None
    tags: TagFilter = None
    reduce: OptStr = "mean"
    resampling: OptStr = None
    group_by: OptStr = None
    grid_crs: Anything = None
    resolution: Numbers = None
    on_error: loose({"type": "string", "enum": ["raise", "nodata"]}) = "raise"


def _geometry(args: dict[str, Any], key: str) -> None:
    if args.get(key) is not None:
        args[key] = as_geometry(args[key], f"{key}=")


@router.post("/cube/plan", responses=PLAN_RESPONSE, dependencies=[READ])
async def cube_plan(body: CubeRequest, request: Request) -> Response:
    """The plan of a cube (see `Geocube.get_cube_plan`): grid, format and the sources of each image."""
    args = body.args("instance")
    _geometry(args, "aoi")
    gc = request.app.state.gc
    plan = await run_bounded(request.app, gc.get_cube_plan, body.instance, **args)
    return Response(plan.to_json(), media_type="application/json")


@router.post("/timeseries", responses=PLAN_RESPONSE, dependencies=[READ])
async def timeseries_plan(body: TimeseriesRequest, request: Request) -> Response:
    """The plan of a timeseries at a point or over a polygon (see `Geocube.get_timeseries_plan`)."""
    import json

    args = body.args("instance")
    _geometry(args, "geometry")
    gc = request.app.state.gc
    ts = await run_bounded(request.app, gc.get_timeseries_plan, body.instance, **args)
    return Response(json.dumps(ts.to_json(), allow_nan=False), media_type="application/json")
