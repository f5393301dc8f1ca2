"""``/viewer``: a page showing an instance's tiles on a Leaflet map, and the footprints it draws.

The page and Leaflet are files of the package, built by ``scripts/build-viewer.sh`` (``npm ci`` over
``viewer/package-lock.json``, then a copy into ``geocube_dask/api/static/viewer/``); nothing is loaded
from the internet when it runs. Without the build, ``/viewer`` says how to make it. The page and its
files hold no data and need no token; the footprints (``/viewer/footprints/{instance_id}``) and the
tiles need a ``read`` token, which the page sends in the Authorization header.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import shapely
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from pydantic import BaseModel

from ...errors import NotFound
from ..deps import get_geocube, require, run_bounded

router = APIRouter(tags=["viewer"])

STATIC = Path(__file__).resolve().parents[1] / "static" / "viewer"
MAX_FOOTPRINTS = 10_000

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>geocube viewer: not built</title></head>
<body style="font: 15px system-ui, sans-serif; max-width: 42em; margin: 3em auto">
<h1>The viewer is not built</h1>
<p>This server has no copy of the viewer's files (the page and the Leaflet map library). Build them once from
a checkout of geocube_dask, with node and npm installed (Debian: <code>apt-get install -y nodejs npm</code>):</p>
<pre>./scripts/build-viewer.sh</pre>
<p>It installs the page's packages from the npm registry (<code>npm ci</code> in <code>viewer/</code>) and copies
them into <code>geocube_dask/api/static/viewer/</code>; then reload this page.</p>
</body></html>
"""


class RecordProperties(BaseModel):
    """A record drawn on the map."""

    id: str
    name: str
    datetime: str
    tags: dict[str, str]
    datasets: int


class RecordFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any]
    properties: RecordProperties


class RecordFootprints(BaseModel):
    """The records of an instance as GeoJSON: each the union of its ACTIVE datasets' footprints (lon/lat)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[RecordFeature]
    truncated: bool


@router.get("/viewer", response_class=HTMLResponse, include_in_schema=False)
def viewer_page() -> Any:
    """The viewer's page, or how to build it."""
    page = STATIC / "index.html"
    if not page.is_file():
        return HTMLResponse(NOT_BUILT, status_code=503)
    return FileResponse(page, media_type="text/html")


@router.get("/viewer/", include_in_schema=False)
def viewer_slash(request: Request) -> RedirectResponse:
    """``/viewer/`` → ``/viewer`` (the page's links are relative to ``/viewer``)."""
    query = request.url.query
    return RedirectResponse(str(request.url_for("viewer_page")) + (f"?{query}" if query else ""))


@router.get("/viewer/static/{name:path}", include_in_schema=False)
def viewer_file(name: str) -> FileResponse:
    """A file of the built viewer (never outside its folder)."""
    root = STATIC.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound(f"the viewer has no file {name!r}: run scripts/build-viewer.sh if it is not built")
    return FileResponse(path)


@router.get(
    "/viewer/footprints/{instance_id}",
    response_model=RecordFootprints,
    dependencies=[require("read")],
    summary="The records of an instance and their footprints (GeoJSON), for the viewer",
)
async def footprints(
    request: Request,
    instance_id: str,
    limit: Annotated[int, Query(ge=1, le=MAX_FOOTPRINTS, description="at most this many records, the latest")]
    = 1000,
) -> RecordFootprints:
    """The records with an ACTIVE dataset in the instance, by datetime, each with the union of its
    datasets' footprints in lon/lat; ``truncated`` when only the latest ``limit`` are given."""
    gc = get_geocube(request)

    def work() -> RecordFootprints:
        instance = gc.get_instance(instance_id)
        by_record: dict[str, tuple[Any, list[Any]]] = {}
        for record, dataset in gc.find_datasets(instance):
            by_record.setdefault(record.id, (record, []))[1].append(dataset.footprint_4326)
        items = list(by_record.values())
        kept = items[-limit:]
        features = [
            RecordFeature(
                id=record.id,
                geometry=shapely.geometry.mapping(shapely.union_all(shapes)),
                properties=RecordProperties(
                    id=record.id, name=record.name, datetime=record.datetime.isoformat().replace("+00:00", "Z"),
                    tags=dict(record.tags), datasets=len(shapes),
                ),
            )
            for record, shapes in kept
        ]
        return RecordFootprints(features=features, truncated=len(kept) < len(items))

    return await run_bounded(request.app, work)
