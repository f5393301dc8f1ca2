"""``GET /tiles/{instance_id}/{z}/{x}/{y}.png``: XYZ tiles of an instance (see :mod:`geocube_dask.api.tiles`).

The catalogue is asked first (the tile's plan); its ETag answers ``If-None-Match`` with a 304 before any
pixel is read, and a tile no dataset touches is the shared transparent PNG, also without reading. The
rest (reads, resampling, colours, PNG) runs synchronously on the server's bounded pool.

``Cache-Control: private, no-cache``: the catalogue can change at any moment (a dataset indexed or
consolidated), so a client keeps the tile (private: it was fetched with a token) but revalidates it
each time; an unchanged tile costs one catalogue query and a 304.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from ...errors import InvalidArgument
from .. import tiles
from ..deps import get_geocube, require, run_bounded

router = APIRouter(tags=["tiles"])

CACHE_CONTROL = "private, no-cache"


PNG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "a 256×256 RGBA PNG"},
    304: {"description": "the tile has not changed since the ETag given in If-None-Match"},
}


def parse_tags(values: list[str]) -> dict[str, str | None] | None:
    """``tag=key=value`` (value may use ``*``/``?``) or ``tag=key`` (the key exists) → the catalogue's tags."""
    if not values:
        return None
    out: dict[str, str | None] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"tag filter {item!r} has no key: give tag=KEY=VALUE or tag=KEY")
        out[key] = value if sep else None
    return out


def parse_records(value: str | None) -> list[str] | None:
    """``records=id1,id2`` → the ids (None when not given)."""
    if value is None:
        return None
    ids = [v.strip() for v in value.split(",") if v.strip()]
    if not ids:
        raise InvalidArgument("records= is empty: give comma-separated record ids, or leave it out for all records")
    return ids


def parse_bands(value: str | None) -> list[str] | None:
    return None if value is None else [b.strip() for b in value.split(",") if b.strip()]


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` (a list of entity tags, or ``*``) matches ``etag`` (weak comparison, RFC 9110)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


@router.get(
    "/tiles/{instance_id}/{z}/{x}/{y}.png",
    response_class=Response,
    responses=PNG_RESPONSES,
    dependencies=[require("read")],
    summary="An XYZ tile (WebMercatorQuad) of an instance",
)
async def get_tile(
    request: Request,
    instance_id: str,
    z: Annotated[int, Path(ge=tiles.TMS.minzoom, le=tiles.TMS.maxzoom, description="zoom level")],
    x: Annotated[int, Path(ge=0, description="column, from the west: 0 to 2^z - 1")],
    y: Annotated[int, Path(ge=0, description="row, from the north: 0 to 2^z - 1")],
    records: Annotated[str | None, Query(description="comma-separated record ids (default: all)")] = None,
    tag: Annotated[list[str], Query(description="tag filter: KEY=VALUE (VALUE may use * and ?) or KEY (has "
                                    "the key); repeat for several")] = [],  # noqa: B006 (FastAPI copies it)
    start: Annotated[str | None, Query(description="records at or after this ISO 8601 datetime")] = None,
    end: Annotated[str | None, Query(description="records before this ISO 8601 datetime")] = None,
    bands: Annotated[str | None, Query(description="one band (drawn through the variable's palette) or three "
                                       "comma-separated (RGB); default the first three")] = None,
    min: Annotated[float | None, Query(description="value drawn as the palette's start / black "
                                       "(default the variable's min)")] = None,
    max: Annotated[float | None, Query(description="value drawn as the palette's end / full colour "
                                       "(default the variable's max)")] = None,
) -> Response:
    """A 256×256 RGBA PNG in EPSG:3857: the latest valid pixel of the records matched (all by default),
    one band through the variable's palette or three as RGB, rescaled from min/max; nodata is transparent."""
    gc = get_geocube(request)
    if_none_match = request.headers.get("if-none-match")
    time = None if start is None and end is None else (start, end)

    def work() -> tuple[str, bytes | None]:
        grid = tiles.tile_grid(z, x, y)
        instance = gc.get_instance(instance_id)
        variable = gc.get_variable(instance.variable_id)
        wanted = parse_bands(bands)
        one_band = wanted is not None and len(wanted) == 1 or len(variable.bands) < 3
        palette = gc.get_palette(variable.palette) if one_band and variable.palette else None
        style = tiles.tile_style(variable, palette, wanted, min, max)
        plan = tiles.tile_plan(gc, instance, grid, records=parse_records(records), tags=parse_tags(tag), time=time)
        etag = tiles.tile_etag(plan, style)
        if etag_matches(if_none_match, etag):
            return etag, None
        return etag, tiles.render_tile(plan, style)

    etag, png = await run_bounded(request.app, work)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if png is None:
        return Response(status_code=304, headers=headers)
    return Response(png, media_type="image/png", headers=headers)
