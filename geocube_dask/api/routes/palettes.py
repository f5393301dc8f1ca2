"""Palettes: named colour ramps."""

from __future__ import annotations

from fastapi import APIRouter

from ...entities import Palette
from ..deps import GC, require
from ..wire import Body, Bool, Str, loose

router = APIRouter(tags=["palettes"])
READ, WRITE = require("read"), require("write")

Points = loose({"type": "array", "items": {"anyOf": [
    {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 5},
    {"type": "object", "properties": {"value": {"type": "number"}, "r": {"type": "integer"}, "g": {"type": "integer"},
                                      "b": {"type": "integer"}, "a": {"type": "integer"}}},
]}})


class PaletteIn(Body):
    name: Str
    points: Points
    replace: Bool = False


def _points(points: object) -> object:
    """Points sent as objects ``{value, r, g, b[, a]}`` → the tuples the catalogue reads."""
    if isinstance(points, list):
        return [tuple(p[k] for k in ("value", "r", "g", "b", "a") if k in p) if isinstance(p, dict) else p
                for p in points]
    return points


@router.post("/palettes", status_code=201, response_model=Palette, dependencies=[WRITE])
def create_palette(body: PaletteIn, gc: GC) -> Palette:
    """Create (or with `replace`, change) a palette."""
    args = body.args()
    args["points"] = _points(args["points"])
    return gc.create_palette(**args)


@router.get("/palettes", response_model=list[Palette], dependencies=[READ])
def list_palettes(gc: GC, name: str | None = None) -> list[Palette]:
    """Palettes whose name matches the `*`/`?` pattern, by name."""
    return gc.list_palettes(name)


@router.get("/palettes/{name:path}", response_model=Palette, dependencies=[READ])
def get_palette(name: str, gc: GC) -> Palette:
    """A palette by name."""
    return gc.get_palette(name)


@router.delete("/palettes/{name:path}", status_code=204, dependencies=[WRITE])
def delete_palette(name: str, gc: GC) -> None:
    """Delete a palette (not while a variable uses it)."""
    gc.delete_palette(name)
