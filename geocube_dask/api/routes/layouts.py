"""Layouts, grids and their cells."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from ...catalog.consolidation import LayoutFile
from ...entities import Cell, Grid, Layout
from ..deps import GC, require
from ..wire import Anything, Body, Geometry, OptGeometry, Str, loose

router = APIRouter(tags=["layouts"])
READ, WRITE = require("read"), require("write")

Int, Num = loose({"type": "integer"}), loose({"type": "number"})
OptNum = loose({"anyOf": [{"type": "number"}, {"type": "null"}]})


class LayoutIn(Body):
    name: Str
    grid: Str = "regular"
    crs: Anything = None
    resolution: OptNum = None
    cell_size: Int = 4096
    origin: loose({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}) = (0.0, 0.0)
    block_size: Int = 256
    max_records: Int = 1000
    overview_min_size: Int = -1
    pattern: Str = "mucog"
    compression: Str = "deflate"


class GridIn(Body):
    name: Str
    cells: loose({"type": "array", "items": {"type": "array", "minItems": 3, "maxItems": 3,
                                             "description": "[cell id, crs, polygon in that crs (WKT or GeoJSON)]"}})
    description: Str = ""


class CellSearch(Body):
    name: Str
    aoi: OptGeometry = None


class TileAoi(Body):
    aoi: Geometry
    layout: Str
    aoi_crs: Anything = "EPSG:4326"


class LayoutFilesIn(Body):
    layout: Str
    instance: Str
    cells: loose({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}) = None


class CellGridOut(BaseModel):
    id: str
    crs: str
    transform: tuple[float, float, float, float, float, float]
    shape: tuple[int, int]


@router.post("/layouts", status_code=201, response_model=Layout, dependencies=[WRITE])
def create_layout(body: LayoutIn, gc: GC) -> Layout:
    """Create a layout (how consolidated files are cut)."""
    args = body.args()
    if isinstance(args.get("origin"), list):
        args["origin"] = tuple(args["origin"])
    return gc.create_layout(**args)


@router.get("/layouts", response_model=list[Layout], dependencies=[READ])
def list_layouts(gc: GC, name: str | None = None) -> list[Layout]:
    """Layouts whose name matches the `*`/`?` pattern."""
    return gc.list_layouts(name)


@router.get("/layouts/{name:path}", response_model=Layout, dependencies=[READ])
def get_layout(name: str, gc: GC) -> Layout:
    """A layout by name."""
    return gc.get_layout(name)


@router.delete("/layouts/{name:path}", status_code=204, dependencies=[WRITE])
def delete_layout(name: str, gc: GC) -> None:
    """Delete a layout."""
    gc.delete_layout(name)


@router.post("/layout-cells", response_model=list[CellGridOut], dependencies=[READ])
def tile_aoi(body: TileAoi, gc: GC) -> list[CellGridOut]:
    """The cells of a layout covering an AOI, with their pixel grids."""
    return [CellGridOut(id=c.id, crs=c.crs, transform=tuple(c.transform)[:6], shape=c.shape)
            for c in gc.tile_aoi(body.aoi, body.layout, **body.args("aoi", "layout"))]


@router.post("/layout-files", response_model=list[LayoutFile], dependencies=[READ])
def layout_files(body: LayoutFilesIn, gc: GC) -> list[LayoutFile]:
    """The files consolidation wrote for a layout and an instance (optionally only some cells)."""
    return gc.layout_files(**body.args())


@router.post("/grids", status_code=201, response_model=Grid, dependencies=[WRITE])
def create_grid(body: GridIn, gc: GC) -> Grid:
    """Create a grid from its cells."""
    return gc.create_grid(**body.args())


@router.get("/grids", response_model=list[Grid], dependencies=[READ])
def list_grids(gc: GC, name: str | None = None) -> list[Grid]:
    """Grids whose name matches the `*`/`?` pattern."""
    return gc.list_grids(name)


@router.post("/grid-cells", response_model=list[Cell], dependencies=[READ])
def grid_cells(body: CellSearch, gc: GC) -> list[Cell]:
    """A grid's cells (intersecting `aoi`, in EPSG:4326)."""
    return gc.grid_cells(**body.args())


@router.get("/grids/{name:path}", response_model=Grid, dependencies=[READ])
def get_grid(name: str, gc: GC) -> Grid:
    """A grid with its cells."""
    return gc.get_grid(name)


@router.delete("/grids/{name:path}", status_code=204, dependencies=[WRITE])
def delete_grid(name: str, gc: GC) -> None:
    """Delete a grid (not while a layout uses it)."""
    gc.delete_grid(name)


