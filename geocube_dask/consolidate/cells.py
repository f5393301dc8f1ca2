"""Layout grids → the cells a consolidation writes, each with its own pixel grid (no database).

- ``regular`` layouts: square cells of ``cell_size`` pixels at ``resolution`` in ``crs``. Cell
  ``(i, j)`` has its top-left corner at ``origin + (i·S, −j·S)`` with ``S = cell_size·resolution``
  (``j`` counts rows downwards, like pixel rows); its id is ``x{i}_y{j}``, e.g. ``x12_y-7``.
- ``single`` layouts: one cell covering the whole area, on the pixel grid of ``resolution`` from
  ``origin`` in ``crs`` — both usually given by the request. Its id, ``single_x{col}_y{row}_w{w}_h{h}``,
  holds its pixel offset from the origin and its size, so it can be rebuilt from the id.
- stored grids: each :class:`~geocube_dask.entities.Cell` is a polygon in its own CRS; its grid is the
  polygon's bounds snapped outwards to multiples of the resolution (like ``gdalwarp -tap``).

A cell is kept when it overlaps the area (a union of footprints or an AOI) with some interior:
cells that only touch it along an edge are left out (for areas without an area — points, lines —
touching counts). Edges computed within 1e-6 pixel of a pixel boundary are snapped to it, so that
floating-point noise never adds a row or column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS as ProjCRS
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from ..entities import Cell, Layout
from ..errors import InvalidArgument, InvalidGeometry, NotFound
from ..projection import crs_string, transform_polygon

SNAP = 1e-6  # fraction of a pixel under which an edge is taken to be on the pixel boundary
MAX_CANDIDATES = 10_000_000  # regular cells examined for one area
_REGULAR_ID = re.compile(r"^x(-?\d+)_y(-?\d+)$")
_SINGLE_ID = re.compile(r"^single_x(-?\d+)_y(-?\d+)_w(\d+)_h(\d+)$")


@dataclass(frozen=True)
class CellGrid:
    """A cell's pixel grid: ``transform`` maps (col, row) to ``crs`` coordinates; ``shape`` = (height, width)."""

    id: str
    crs: str
    transform: Affine
    shape: tuple[int, int]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the cell's CRS (north-up grids)."""
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.shape[1], self.shape[0])
        return (min(left, right), min(bottom, top), max(left, right), max(bottom, top))

    @property
    def polygon(self) -> BaseGeometry:
        """The cell's extent as a polygon in its CRS."""
        return box(*self.bounds)


def _snap_down(v: float) -> int:
    return math.floor(v + SNAP)


def _snap_up(v: float) -> int:
    return math.ceil(v - SNAP)


def _check_area(area: Any) -> BaseGeometry:
    if not isinstance(area, BaseGeometry):
        raise InvalidGeometry(f"the area must be a shapely geometry, not {type(area).__name__}")
    if area.is_empty:
        raise InvalidGeometry("the area is empty: give the footprints' union or an AOI")
    if not area.is_valid:
        area = shapely.make_valid(area)
    return area


def area_in(area: Any, area_crs: Any, crs: Any) -> BaseGeometry:
    """``area`` reprojected to ``crs`` (edges densified). Where the projection cannot hold all of it (a
    point maps to infinity, e.g. 90° away from a transverse Mercator's central meridian), the area is
    first clipped to the CRS's area of use. Raises InvalidGeometry if nothing is left."""
    area = _check_area(area)
    src, dst = crs_string(area_crs, "area crs"), crs_string(crs, "layout crs")
    out = _transformed(area, src, dst)
    if out is not None:
        return out
    use = ProjCRS.from_user_input(dst).area_of_use
    lonlat = _transformed(area, src, "EPSG:4326")
    if use is not None and use.west < use.east and lonlat is not None:
        clipped = lonlat.intersection(box(use.west, use.south, use.east, use.north))
        out = None if clipped.is_empty else _transformed(clipped, "EPSG:4326", dst)
        if out is not None:
            return out
    raise InvalidGeometry(f"the area cannot be reprojected to {dst}: it lies outside what that CRS can represent")


def _transformed(geom: BaseGeometry, src: str, dst: str) -> BaseGeometry | None:
    """``geom`` in ``dst``, or None if some of it does not map to finite coordinates."""
    try:
        out = transform_polygon(geom, src, dst)
    except shapely.errors.GEOSException:  # make_valid on infinite coordinates
        return None
    if out.is_empty or not np.isfinite(shapely.get_coordinates(out)).all():
        return None
    return out


def _overlapping(boxes: np.ndarray, area: BaseGeometry) -> np.ndarray:
    """Which boxes overlap the area with some interior (or touch it, for areas without an area)."""
    shapely.prepare(area)
    hit = shapely.intersects(boxes, area)
    if area.area > 0:
        hit &= ~shapely.touches(boxes, area)
    return hit


def _positive(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) or not (
        math.isfinite(value) and value > 0
    ):
        raise InvalidArgument(f"{what} must be a number > 0, not {value!r}")
    return float(value)


def _grid_of(layout: Layout, crs: Any, resolution: Any) -> tuple[str, float]:
    """The CRS and resolution of a layout's cells: the layout's, or for ``single`` those of the request."""
    if layout.grid == "regular":
        if crs is not None or resolution is not None:
            raise InvalidArgument(f"layout {layout.name!r} is regular: its crs and resolution are its own")
        crs, resolution = layout.crs, layout.resolution
    else:
        crs = layout.crs if crs is None else crs
        resolution = layout.resolution if resolution is None else resolution
    if crs is None or resolution is None:
        raise InvalidArgument(
            f"layout {layout.name!r} ({layout.grid}) takes its grid from the request: give crs= and resolution="
        )
    return crs_string(crs), _positive(resolution, "resolution")


def _regular(layout: Layout, i: int, j: int) -> CellGrid:
    res, n = float(layout.resolution), int(layout.cell_size)
    ox, oy = layout.origin
    size = n * res
    return CellGrid(f"x{i}_y{j}", crs_string(layout.crs), Affine(res, 0.0, ox + i * size, 0.0, -res, oy - j * size),
                    (n, n))


def _single(crs: str, res: float, origin: tuple[float, float], col: int, row: int, w: int, h: int) -> CellGrid:
    ox, oy = origin
    transform = Affine(res, 0.0, ox + col * res, 0.0, -res, oy - row * res)
    return CellGrid(f"single_x{col}_y{row}_w{w}_h{h}", crs, transform, (h, w))


def regular_cells(
    layout: Layout, area: BaseGeometry, area_crs: Any = "EPSG:4326", *, crs: Any = None, resolution: Any = None
) -> list[CellGrid]:
    """The cells of a ``regular`` or ``single`` layout that overlap ``area`` (in ``area_crs``).

    Regular cells come north to south, then west to east. A ``single`` layout gives one cell; its
    ``crs``/``resolution`` are the keywords' (the request's), else the layout's. Raises InvalidArgument
    (stored-grid layout: use :func:`stored_cells`; missing grid), InvalidGeometry (area).
    """
    if layout.grid not in ("regular", "single"):
        raise InvalidArgument(f"layout {layout.name!r} uses the stored grid {layout.grid!r}: use stored_cells")
    crs, res = _grid_of(layout, crs, resolution)
    local = area_in(area, area_crs, crs)
    minx, miny, maxx, maxy = local.bounds
    ox, oy = layout.origin
    if layout.grid == "single":
        col0, col1 = _snap_down((minx - ox) / res), _snap_up((maxx - ox) / res)
        row0, row1 = _snap_down((oy - maxy) / res), _snap_up((oy - miny) / res)
        return [_single(crs, res, layout.origin, col0, row0, max(col1 - col0, 1), max(row1 - row0, 1))]
    size = layout.cell_size * res
    # candidates: the cells under the area's bounds and one more all round (an area lying on a cell edge
    # may touch the cells on both sides); the overlap test decides
    i0, i1 = math.floor((minx - ox) / size) - 1, math.ceil((maxx - ox) / size) + 1
    j0, j1 = math.floor((oy - maxy) / size) - 1, math.ceil((oy - miny) / size) + 1
    if (i1 - i0) * (j1 - j0) > MAX_CANDIDATES:
        raise InvalidArgument(
            f"the area spans {(i1 - i0) * (j1 - j0)} cells of layout {layout.name!r}: consolidate a smaller area "
            "or use larger cells"
        )
    jj, ii = np.meshgrid(np.arange(j0, j1), np.arange(i0, i1), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    left, top = ox + ii * size, oy - jj * size
    keep = _overlapping(shapely.box(left, top - size, left + size, top), local)
    return [_regular(layout, int(i), int(j)) for i, j in zip(ii[keep], jj[keep], strict=True)]


def _polygon(cell: Cell) -> BaseGeometry:
    try:
        polygon = shapely.from_wkt(cell.wkt)
    except (shapely.errors.ShapelyError, TypeError) as exc:
        raise InvalidGeometry(f"cell {cell.id!r} has an unreadable polygon: {exc}") from None
    if polygon is None or polygon.is_empty:
        raise InvalidGeometry(f"cell {cell.id!r} has an empty polygon")
    return polygon


def _stored(cell: Cell, res: float) -> CellGrid:
    minx, miny, maxx, maxy = _polygon(cell).bounds
    col0, col1 = _snap_down(minx / res), _snap_up(maxx / res)
    row0, row1 = _snap_down(miny / res), _snap_up(maxy / res)
    shape = (max(row1 - row0, 1), max(col1 - col0, 1))
    return CellGrid(cell.id, crs_string(cell.crs), Affine(res, 0.0, col0 * res, 0.0, -res, (row0 + shape[0]) * res),
                    shape)


def stored_cells(
    cells: Iterable[Cell], resolution: float, area: BaseGeometry | None = None, area_crs: Any = "EPSG:4326"
) -> list[CellGrid]:
    """Grids of a stored grid's cells at ``resolution`` (in each cell's CRS units), in the given order;
    only those whose polygon overlaps ``area`` if it is given. Raises InvalidArgument, InvalidGeometry."""
    res = _positive(resolution, "resolution")
    cells = list(cells)
    if area is None:
        return [_stored(c, res) for c in cells]
    by_crs: dict[str, BaseGeometry] = {}
    out = []
    for cell in cells:
        crs = crs_string(cell.crs)
        if crs not in by_crs:
            by_crs[crs] = area_in(area, area_crs, crs)
        if _overlapping(np.array([_polygon(cell)]), by_crs[crs])[0]:
            out.append(_stored(cell, res))
    return out


def cell_by_id(
    layout: Layout,
    cell_id: str,
    *,
    crs: Any = None,
    resolution: Any = None,
    cells: Iterable[Cell] | None = None,
) -> CellGrid:
    """The grid of the cell ``cell_id`` of ``layout`` (the inverse of the ids the functions above give).

    ``single`` layouts need the request's ``crs``/``resolution`` unless the layout has them; stored grids
    need their ``cells`` and a resolution (the keyword's, else the layout's). Raises InvalidArgument
    (malformed id), NotFound (no such stored cell).
    """
    if not isinstance(cell_id, str):
        raise InvalidArgument(f"a cell id is a string, not {cell_id!r}")
    if layout.grid == "regular":
        m = _REGULAR_ID.match(cell_id)
        if not m:
            raise InvalidArgument(f"{cell_id!r} is not a cell of the regular layout {layout.name!r} (e.g. 'x12_y-7')")
        _grid_of(layout, crs, resolution)
        return _regular(layout, int(m.group(1)), int(m.group(2)))
    if layout.grid == "single":
        m = _SINGLE_ID.match(cell_id)
        if not m:
            raise InvalidArgument(f"{cell_id!r} is not a cell of the single-cell layout {layout.name!r}")
        grid_crs, res = _grid_of(layout, crs, resolution)
        col, row, w, h = (int(v) for v in m.groups())
        if w < 1 or h < 1:
            raise InvalidArgument(f"{cell_id!r} has an empty size")
        return _single(grid_crs, res, layout.origin, col, row, w, h)
    if cells is None:
        raise InvalidArgument(f"layout {layout.name!r} uses the stored grid {layout.grid!r}: pass its cells=")
    res = _positive(layout.resolution if resolution is None else resolution, "resolution")
    for cell in cells:
        if cell.id == cell_id:
            return _stored(cell, res)
    raise NotFound(f"grid {layout.grid!r} has no cell {cell_id!r}")
