"""Layouts and grids: how consolidated files are cut and laid out.

A *layout* names a grid — ``regular`` (square cells of ``cell_size`` pixels at ``resolution`` in
``crs`` from ``origin``), ``single`` (one cell covering everything) or a stored *grid* (user-defined
cells such as UTM/MGRS tiles) — plus the tiling of the files written: block size, records per file,
overviews, MUCOG interlacing pattern and compression. The pattern's grammar is consolidation's
(:mod:`geocube_dask.consolidate.interlacing`): :class:`~geocube_dask.geocube.Geocube` normalises it
before the catalogue stores it; here it is only required to be non-empty text.

A grid's cells are polygons in their own CRS; each is also stored in EPSG:4326 (densified before
reprojection) so that the cells meeting an AOI are a spatial query. A grid used by a layout cannot be
deleted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from ..entities import Cell, Grid, Layout, check_name
from ..errors import AlreadyExists, DependencyError, InvalidArgument, InvalidGeometry, NotFound
from ..projection import crs_string, same_crs, transform_polygon
from .db.engine import Connected
from .db.filters import check_pattern, match
from .db.schema import grid_cells, grids, layouts
from .db.spatial import insert_rtree, intersects
from .db.sqlutil import integrity_kind
from .geometry import as_geometry, geom_array, query_area
from .refs import name_arg

GRID_KINDS = ("regular", "single")
# the codec of a variable's *lossless* consolidation (lossy and custom are the variable's choice, see
# Geocube.configure_consolidation): every one of these gives back exactly the values written
COMPRESSIONS = ("zstd", "deflate", "lzw", "lzma", "lerc", "lerc_deflate", "lerc_zstd", "none")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidArgument(f"{what} must be an integer, not {value!r}")
    return int(value)


def check_layout(layout: Layout) -> Layout:
    """Validate every field (the grid's existence is checked against the database separately)."""
    check_name(layout.name, "layout name")
    if not isinstance(layout.grid, str):
        raise InvalidArgument(f"grid must be 'regular', 'single' or a stored grid's name, not {layout.grid!r}")
    crs = None if layout.crs is None else crs_string(layout.crs)
    resolution = layout.resolution
    if resolution is not None:
        if isinstance(resolution, bool) or not isinstance(resolution, int | float) or not (
            math.isfinite(resolution) and resolution > 0
        ):
            raise InvalidArgument(f"resolution must be a number > 0 (CRS units per pixel), not {resolution!r}")
        resolution = float(resolution)
    if layout.grid == "regular" and (crs is None or resolution is None):
        raise InvalidArgument("a regular grid needs a crs and a resolution > 0, e.g. crs='EPSG:32631', resolution=20")
    block = _int(layout.block_size, "block_size")
    if block < 16 or block & (block - 1):
        raise InvalidArgument(f"block_size must be a power of 2 >= 16 (e.g. 256), not {block}")
    cell = _int(layout.cell_size, "cell_size")
    if cell < block or cell % block:
        raise InvalidArgument(f"cell_size ({cell}) must be a positive multiple of block_size ({block})")
    if isinstance(layout.origin, str) or not isinstance(layout.origin, Sequence) or len(layout.origin) != 2:
        raise InvalidArgument(f"origin must be an (x, y) pair, not {layout.origin!r}")
    origin = []
    for v in layout.origin:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InvalidArgument(f"origin coordinates must be finite numbers, not {layout.origin!r}")
        origin.append(float(v))
    max_records = _int(layout.max_records, "max_records")
    if max_records < 1:
        raise InvalidArgument(f"max_records must be >= 1, not {max_records}")
    ov_min = _int(layout.overview_min_size, "overview_min_size")
    if ov_min < -1:
        raise InvalidArgument(f"overview_min_size must be -1 (default 256), 0 (no overviews) or a size, not {ov_min}")
    pattern = layout.pattern
    if not isinstance(pattern, str) or not pattern.strip():
        raise InvalidArgument(f"the interlacing pattern must be non-empty text (e.g. 'mucog'), not {pattern!r}")
    if not isinstance(layout.compression, str) or layout.compression.lower() not in COMPRESSIONS:
        raise InvalidArgument(
            f"unknown compression {layout.compression!r}: a layout's compression is the lossless codec of its files, "
            f"choose one of {', '.join(COMPRESSIONS)} (lossy compression is a variable's consolidation setting: "
            "configure_consolidation(variable, compression='lossy', max_error=...))"
        )
    return Layout(
        name=layout.name, grid=layout.grid, crs=crs, resolution=resolution, cell_size=cell,
        origin=(origin[0], origin[1]), block_size=block, max_records=max_records, overview_min_size=ov_min,
        pattern=pattern, compression=layout.compression.lower(),
    )


def _layout_from_row(row: Any) -> Layout:
    return Layout(
        name=row.name, grid=row.grid_name if row.grid_kind == "stored" else row.grid_kind, crs=row.crs,
        resolution=row.resolution, cell_size=row.cell_size, origin=(row.origin_x, row.origin_y),
        block_size=row.block_size, max_records=row.max_records, overview_min_size=row.overview_min_size,
        pattern=row.pattern, compression=row.compression,
    )


def cell_in_4326(cell_id: str, crs: str, polygon: BaseGeometry) -> BaseGeometry:
    """A cell polygon reprojected to EPSG:4326 after densification (edges curve under reprojection).

    A cell given in EPSG:4326 is taken as it is: outside lon/lat bounds, it is refused, not wrapped.
    """
    try:
        out = polygon if same_crs(crs, "EPSG:4326") else transform_polygon(polygon, crs, "EPSG:4326", densify=33)
    except ValueError as exc:
        raise InvalidGeometry(f"cell {cell_id!r} cannot be reprojected to lon/lat: {exc}") from None
    try:
        return query_area(out, f"cell {cell_id!r} in EPSG:4326")
    except InvalidGeometry as exc:
        raise InvalidGeometry(f"{exc} (cell {cell_id!r} cannot be reprojected to lon/lat)") from None


def _cell(n: int, value: Any) -> tuple[str, str, BaseGeometry]:
    if isinstance(value, Cell):
        value = (value.id, value.crs, value.wkt)
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 3:
        raise InvalidArgument(f"cell #{n} must be (cell_id, crs, polygon in that crs), not {value!r}")
    cell_id = check_name(value[0], "cell id")
    crs = crs_string(value[1], f"crs of cell {cell_id!r}")
    geom = shapely.force_2d(as_geometry(value[2], f"polygon of cell {cell_id!r}"))
    if geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidGeometry(f"cell {cell_id!r} must be a non-empty Polygon or MultiPolygon, not {geom.geom_type}")
    if not geom.is_valid:
        raise InvalidGeometry(f"cell {cell_id!r} is not valid ({shapely.is_valid_reason(geom)})")
    return cell_id, crs, geom


def _load_grid_row(conn: Connection, name: str) -> Any:
    name_arg(name, "grid")
    row = conn.execute(sa.select(grids).where(grids.c.name == name)).first()
    if row is None:
        raise NotFound(f"no grid named {name!r}: create it with create_grid(name, cells)")
    return row


class LayoutMixin(Connected):
    """Layouts and grids."""

    def create_layout(
        self,
        name: str,
        grid: str = "regular",
        crs: Any = None,
        resolution: float | None = None,
        cell_size: int = 4096,
        origin: tuple[float, float] = (0.0, 0.0),
        block_size: int = 256,
        max_records: int = 1000,
        overview_min_size: int = -1,
        pattern: str = "Z=0>T>R>B;Z=1:>R>T>B",
        compression: str = "zstd",
    ) -> Layout:
        """Create a layout (see the module docstring). Raises InvalidArgument, NotFound (grid), AlreadyExists."""
        layout = check_layout(
            Layout(name, grid, crs, resolution, cell_size, origin, block_size, max_records, overview_min_size,
                   pattern, compression)
        )
        kind = layout.grid if layout.grid in GRID_KINDS else "stored"
        with self._tx() as conn:
            if kind == "stored":
                _load_grid_row(conn, layout.grid)
            try:
                with conn.begin_nested():
                    conn.execute(
                        layouts.insert().values(
                            name=layout.name, grid_kind=kind, grid_name=layout.grid if kind == "stored" else None,
                            crs=layout.crs, resolution=layout.resolution, cell_size=layout.cell_size,
                            origin_x=layout.origin[0], origin_y=layout.origin[1], block_size=layout.block_size,
                            max_records=layout.max_records, overview_min_size=layout.overview_min_size,
                            pattern=layout.pattern, compression=layout.compression,
                        )
                    )
            except sa.exc.IntegrityError as exc:
                if integrity_kind(exc) != "unique":
                    raise
                raise AlreadyExists(f"a layout named {layout.name!r} already exists") from None
        return layout

    def get_layout(self, name: str) -> Layout:
        """The layout named ``name``. Raises NotFound."""
        name_arg(name, "layout")
        with self._tx(write=False) as conn:
            row = conn.execute(sa.select(layouts).where(layouts.c.name == name)).first()
        if row is None:
            raise NotFound(f"no layout named {name!r}: see list_layouts()")
        return _layout_from_row(row)

    def list_layouts(self, name: str | None = None) -> list[Layout]:
        """Layouts whose name matches the ``*``/``?`` pattern (all by default), by name."""
        stmt = sa.select(layouts).order_by(layouts.c.name)
        if name is not None:
            stmt = stmt.where(match(layouts.c.name, check_pattern(name, "layout name pattern")))
        with self._tx(write=False) as conn:
            return [_layout_from_row(r) for r in conn.execute(stmt)]

    def delete_layout(self, name: str) -> None:
        """Delete a layout. Raises NotFound."""
        name_arg(name, "layout")
        with self._tx() as conn:
            if not conn.execute(layouts.delete().where(layouts.c.name == name)).rowcount:
                raise NotFound(f"no layout named {name!r}")

    def create_grid(self, name: str, cells: Iterable[Any], description: str = "") -> Grid:
        """Store a grid: ``cells`` are ``(cell_id, crs, polygon)`` (shapely or WKT in that crs) or Cells."""
        name = check_name(name, "grid name")
        if name in GRID_KINDS:
            raise InvalidArgument(f"{name!r} is a built-in grid kind: give your grid another name")
        if not isinstance(description, str):
            raise InvalidArgument(f"description must be a string, not {description!r}")
        if isinstance(cells, str) or not isinstance(cells, Iterable):
            raise InvalidArgument("cells must be a list of (cell_id, crs, polygon)")
        parsed = [_cell(n, c) for n, c in enumerate(cells)]
        if not parsed:
            raise InvalidArgument(f"grid {name!r} needs at least one cell")
        ids = [c[0] for c in parsed]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise InvalidArgument(f"grid {name!r}: cell id {dup!r} appears twice")
        geoms = [cell_in_4326(cid, crs, geom) for cid, crs, geom in parsed]
        wkts = shapely.to_wkt(geom_array([g for _, _, g in parsed]), rounding_precision=-1)
        with self._tx() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(grids.insert().values(name=name, description=description))
            except sa.exc.IntegrityError as exc:
                if integrity_kind(exc) != "unique":
                    raise
                raise AlreadyExists(f"a grid named {name!r} already exists") from None
            rows = [
                {"grid_name": name, "cell_id": cid, "crs": crs, "wkt": str(wkt), "geom_4326": g}
                for (cid, crs, _), wkt, g in zip(parsed, wkts, geoms, strict=True)
            ]
            new_ids = conn.execute(
                grid_cells.insert().returning(grid_cells.c.id, sort_by_parameter_order=True), rows
            ).scalars().all()
            insert_rtree(conn, "grid_cells", new_ids, geoms)
        cells_out = tuple(Cell(cid, crs, str(wkt)) for (cid, crs, _), wkt in zip(parsed, wkts, strict=True))
        return Grid(name, description, tuple(sorted(cells_out, key=lambda c: c.id)))

    def get_grid(self, name: str) -> Grid:
        """A grid with all its cells (ordered by id). Raises NotFound."""
        with self._tx(write=False) as conn:
            row = _load_grid_row(conn, name)
            cells = conn.execute(
                sa.select(grid_cells.c.cell_id, grid_cells.c.crs, grid_cells.c.wkt)
                .where(grid_cells.c.grid_name == name)
                .order_by(grid_cells.c.cell_id)
            ).all()
        return Grid(row.name, row.description, tuple(Cell(c.cell_id, c.crs, c.wkt) for c in cells))

    def list_grids(self, name: str | None = None) -> list[Grid]:
        """Grids by name, *without* their cells (use get_grid or grid_cells for those)."""
        stmt = sa.select(grids).order_by(grids.c.name)
        if name is not None:
            stmt = stmt.where(match(grids.c.name, check_pattern(name, "grid name pattern")))
        with self._tx(write=False) as conn:
            return [Grid(r.name, r.description) for r in conn.execute(stmt)]

    def delete_grid(self, name: str) -> None:
        """Delete a grid and its cells. Raises NotFound, or DependencyError while a layout uses it."""
        with self._tx() as conn:
            _load_grid_row(conn, name)
            users = conn.execute(
                sa.select(layouts.c.name).where(layouts.c.grid_name == name).order_by(layouts.c.name)
            ).scalars().all()
            if users:
                raise DependencyError(f"grid {name!r} is used by layout(s) {', '.join(users)}: delete them first")
            conn.execute(grids.delete().where(grids.c.name == name))

    def grid_cells(self, name: str, aoi: Any = None) -> list[Cell]:
        """The cells of a grid (those intersecting ``aoi``, EPSG:4326, if given), ordered by id."""
        area = None if aoi is None else query_area(aoi)
        with self._tx(write=False) as conn:
            _load_grid_row(conn, name)
            stmt = (
                sa.select(grid_cells.c.cell_id, grid_cells.c.crs, grid_cells.c.wkt)
                .where(grid_cells.c.grid_name == name)
                .order_by(grid_cells.c.cell_id)
            )
            if area is not None:
                stmt = stmt.where(intersects(conn, grid_cells, area))
            return [Cell(c.cell_id, c.crs, c.wkt) for c in conn.execute(stmt)]
