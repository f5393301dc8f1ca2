"""Geometry between an output grid and a source's pixel grid: levels, scale, alignment, exact coordinates.

Everything here is deterministic for a (source grid, output grid) pair and never depends on how the
output is chunked: the scale used by resampling kernels is computed once per pair, and source pixel
coordinates come from pyproj on a lattice anchored to the output grid (every 16 pixels), interpolated in
between and computed exactly wherever a point lies near a source pixel edge (no approximate transformer
whose result depends on the extent warped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from affine import Affine

from ..projection import is_geographic, same_crs, transform_polygon, transformer
from .grid import GridSpec
from .plan import Source

# an overview up to this much coarser than the output still counts as "just finer" (cross-CRS
# ratios are never exactly 2 or 4: the scale factors of two UTM zones differ by ~1e-4)
OVERVIEW_TOLERANCE = 1e-2
# sub-pixel tolerance of the aligned (no-warp) read
ALIGN_TOLERANCE = 1e-6


@dataclass(frozen=True)
class LevelGrid:
    """The pixel grid of one level (full resolution = -1, or an overview index) of a source."""

    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int
    level: int

    @property
    def affine(self) -> Affine:
        return Affine(*self.transform)


def level_grid(source: Source, level: int) -> LevelGrid:
    """Grid of ``level``: an overview covers the file's extent with its own (coarser) pixel size."""
    if level < 0:
        return LevelGrid(source.crs, source.transform, source.width, source.height, -1)
    ow, oh = source.overviews[level]
    a = Affine(*source.transform) @ Affine.scale(source.width / ow, source.height / oh)
    return LevelGrid(source.crs, tuple(a)[:6], ow, oh, level)


def pixel_scale(lg: LevelGrid, grid: GridSpec, source: Source) -> tuple[float, float]:
    """Source pixels per output pixel along x and y, measured once at the centre of their overlap."""
    pt = grid.polygon().centroid
    try:
        overlap = transform_polygon(source.footprint, source.crs, grid.crs).intersection(grid.polygon())
        if not overlap.is_empty:
            pt = overlap.representative_point()
    except ValueError:  # not expressible in the grid's CRS: measured at the grid's centre
        pass
    inv = ~grid.affine
    col, row = inv @ (pt.x, pt.y)
    cols = np.array([col, col + 1.0, col])
    rows = np.array([row, row, row + 1.0])
    sx, sy = source_pixel_coords(grid, cols, rows, lg)
    if not np.all(np.isfinite(sx)) or not np.all(np.isfinite(sy)):
        # fall back on the ratio of nominal resolutions
        gr = grid.resolution
        return abs(gr[0] / lg.transform[0]), abs(gr[1] / lg.transform[4])
    xscale = math.hypot(sx[1] - sx[0], sy[1] - sy[0])
    yscale = math.hypot(sx[2] - sx[0], sy[2] - sy[0])
    return xscale, yscale


def choose_level(source: Source, grid: GridSpec) -> tuple[LevelGrid, tuple[float, float]]:
    """Pick the overview whose resolution is just finer than the output (full resolution if none).

    Rule: with ``r`` = output/source pixel ratio (the smaller of x and y) at full resolution, use the
    coarsest overview whose decimation factor is ≤ ``r * (1 + OVERVIEW_TOLERANCE)``.
    Returns the level's grid and the kernel scale relative to that level.
    """
    full = level_grid(source, -1)
    xs, ys = pixel_scale(full, grid, source)
    ratio = min(xs, ys)
    best = full
    best_factor = 1.0
    for i, (ow, oh) in enumerate(source.overviews):
        factor = min(source.width / ow, source.height / oh)
        if best_factor < factor <= ratio * (1 + OVERVIEW_TOLERANCE):
            best, best_factor = level_grid(source, i), factor
    if best.level < 0:
        return best, (xs, ys)
    return best, pixel_scale(best, grid, source)


def alignment(lg: LevelGrid, grid: GridSpec, nearest: bool = False) -> tuple[int, int] | None:
    """(row, col) offset when output pixel (r, c) *is* source pixel (r + dr, c + dc), else None.

    That is the case when both grids have the same CRS and pixel size and a whole-pixel offset, for every
    resampling; with ``nearest``, also at any offset that puts no pixel centre within
    :data:`ALIGN_TOLERANCE` of a source pixel edge: the pixel holding output pixel (r, c)'s centre,
    ``floor(c + 0.5 + offset)``, is then the same translation for every pixel."""
    if not same_crs(lg.crs, grid.crs):
        return None
    s, g = lg.transform, grid.transform
    if s[1] != 0 or s[3] != 0 or g[1] != 0 or g[3] != 0:
        return None
    if not (math.isclose(s[0], g[0], rel_tol=1e-9) and math.isclose(s[4], g[4], rel_tol=1e-9)):
        return None
    dc = (g[2] - s[2]) / s[0]
    dr = (g[5] - s[5]) / s[4]
    if abs(dc - round(dc)) <= ALIGN_TOLERANCE and abs(dr - round(dr)) <= ALIGN_TOLERANCE:
        return round(dr), round(dc)
    if not nearest:
        return None
    # centres at c + 0.5 + dc: away from an edge, the containing pixel is c + floor(0.5 + dc)
    cc, cr = 0.5 + dc, 0.5 + dr
    if abs(cc - round(cc)) <= ALIGN_TOLERANCE or abs(cr - round(cr)) <= ALIGN_TOLERANCE:
        return None
    return math.floor(cr), math.floor(cc)


def source_pixel_coords(
    grid: GridSpec, cols: np.ndarray, rows: np.ndarray, lg: LevelGrid
) -> tuple[np.ndarray, np.ndarray]:
    """Continuous source pixel coordinates (x=col, y=row) of output grid positions (cols, rows).

    Output positions are in the grid's pixel space (pixel centres are at +0.5). Cross-CRS points are
    transformed exactly with pyproj; NaN where the transform fails (outside the projection's domain).
    """
    g = grid.affine
    x = g.c + g.a * cols + g.b * rows
    y = g.f + g.d * cols + g.e * rows
    if not same_crs(grid.crs, lg.crs):
        x, y = transformer(grid.crs, lg.crs).transform(x, y, errcheck=False)
        x = np.asarray(x, dtype="float64")
        y = np.asarray(y, dtype="float64")
        bad = ~(np.isfinite(x) & np.isfinite(y))
        if bad.any():
            x = np.where(bad, np.nan, x)
            y = np.where(bad, np.nan, y)
    inv = ~lg.affine
    sx = inv.c + inv.a * x + inv.b * y
    sy = inv.f + inv.d * x + inv.e * y
    return sx, sy


def chunk_coords(
    grid: GridSpec, row0: int, col0: int, height: int, width: int, lg: LevelGrid, *, exact_edges: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Source pixel coordinates (sx, sy), shape (height, width), of the output pixel centres of a window.

    Same CRS: exact (affine). Across CRSs: see :func:`lattice_coords`; ``exact_edges`` makes every
    coordinate that lies near a source pixel edge exact, so that the pixel containing each point is the
    one an exact per-pixel transform gives (what ``near`` needs).
    """
    cols = col0 + np.arange(width, dtype="float64") + 0.5
    rows = row0 + np.arange(height, dtype="float64") + 0.5
    g, s = grid.transform, lg.transform
    if same_crs(grid.crs, lg.crs):
        if g[1] == 0 and g[3] == 0 and s[1] == 0 and s[3] == 0:
            # separable: compute a row and a column, then broadcast (identical values to the general case)
            sx1, _ = source_pixel_coords(grid, cols, np.zeros_like(cols), lg)
            _, sy1 = source_pixel_coords(grid, np.zeros_like(rows), rows, lg)
            return np.broadcast_to(sx1[None, :], (height, width)), np.broadcast_to(sy1[:, None], (height, width))
        cc, rr = np.meshgrid(cols, rows)
        return source_pixel_coords(grid, cc, rr, lg)
    return lattice_coords(grid, row0, col0, height, width, lg, exact_edges=exact_edges)


# output pixels between the exactly transformed nodes of the interpolation lattice (a power of 2, so
# that the interpolation fractions are exact)
LATTICE = 16
# smallest band around source pixel edges (in source pixels) where nearest coordinates are made exact
EDGE_BAND = 1e-7


def lattice_coords(
    grid: GridSpec, row0: int, col0: int, height: int, width: int, lg: LevelGrid, *, exact_edges: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-CRS source coordinates from a lattice of exact transforms, interpolated bilinearly.

    The lattice nodes sit every ``LATTICE`` output pixels *of the whole grid* (not of the window), so a
    pixel's interpolated coordinates are the same whatever window it is computed in: results never
    depend on the chunking. Exact transforms cost ~300 ns a point; this computes one in ~128.
    With ``exact_edges``, the interpolation error is measured at the cells' centres and every pixel
    whose coordinates fall within four times that error (at least ``EDGE_BAND``) of a source pixel edge
    is transformed exactly: the pixel containing each point is then exactly the one a per-pixel
    transform gives. Windows where the transform fails anywhere are transformed exactly throughout.
    """
    nodes = _lattice_nodes(grid, row0, col0, height, width, lg)
    if nodes is None:
        cc, rr = np.meshgrid(np.arange(col0, col0 + width) + 0.5, np.arange(row0, row0 + height) + 0.5)
        return source_pixel_coords(grid, cc, rr, lg)
    nx, ny, k0, j0 = nodes
    sx, sy = _interpolate(nx, ny, k0, j0, row0, col0, height, width)
    if exact_edges:
        _exact_near_edges(grid, lg, sx, sy, row0, col0, nx, ny, k0, j0)
    return sx, sy


def _lattice_nodes(
    grid: GridSpec, row0: int, col0: int, height: int, width: int, lg: LevelGrid
) -> tuple[np.ndarray, np.ndarray, int, int] | None:
    """(node x, node y, first node column, first node row) of the lattice around a window, or None when
    the transform fails at a node."""
    n = LATTICE
    k0, k1 = col0 // n, (col0 + width - 1) // n + 1
    j0, j1 = row0 // n, (row0 + height - 1) // n + 1
    node_cols = np.arange(k0, k1 + 1, dtype="float64") * n + 0.5
    node_rows = np.arange(j0, j1 + 1, dtype="float64") * n + 0.5
    nx, ny = source_pixel_coords(grid, *np.meshgrid(node_cols, node_rows), lg)
    if not (np.isfinite(nx).all() and np.isfinite(ny).all()):
        return None
    return nx, ny, k0, j0


def _interpolate(nx: np.ndarray, ny: np.ndarray, k0: int, j0: int, row0: int, col0: int, height: int,
                 width: int) -> tuple[np.ndarray, np.ndarray]:
    """The lattice's bilinear interpolation at the window's pixel centres (the compiled kernels repeat
    these operations pixel by pixel: keep both in step)."""
    n = LATTICE
    c = np.arange(col0, col0 + width)
    kx = c // n - k0
    fx = (c % n) / n
    r = np.arange(row0, row0 + height)
    ky = r // n - j0
    fy = ((r % n) / n)[:, None]
    ax = nx[:, kx] * (1 - fx) + nx[:, kx + 1] * fx
    ay = ny[:, kx] * (1 - fx) + ny[:, kx + 1] * fx
    sx = ax[ky] * (1 - fy) + ax[ky + 1] * fy
    sy = ay[ky] * (1 - fy) + ay[ky + 1] * fy
    return sx, sy


# layouts of Positions
SEPARABLE, LATTICE_NODES, DENSE = 0, 1, 2
_EMPTY1 = np.empty(0)
_EMPTY2 = np.empty((0, 0))


@dataclass(frozen=True, eq=False)
class Positions:
    """Source pixel coordinates of a window's output pixel centres, in a compact form that the compiled
    kernels expand pixel by pixel (with the operations of :func:`chunk_coords`, so the same values):
    ``SEPARABLE`` (same CRS, north-up: one coordinate per column and one per row), ``LATTICE_NODES``
    (the interpolation lattice's nodes) or ``DENSE`` (every coordinate, where the lattice fails)."""

    layout: int
    row0: int
    col0: int
    height: int
    width: int
    sep_x: np.ndarray = field(default_factory=lambda: _EMPTY1)  # (width,)
    sep_y: np.ndarray = field(default_factory=lambda: _EMPTY1)  # (height,)
    nodes_x: np.ndarray = field(default_factory=lambda: _EMPTY2)
    nodes_y: np.ndarray = field(default_factory=lambda: _EMPTY2)
    k0: int = 0
    j0: int = 0
    dense_x: np.ndarray = field(default_factory=lambda: _EMPTY2)  # (height, width)
    dense_y: np.ndarray = field(default_factory=lambda: _EMPTY2)

    @property
    def lattice(self) -> tuple[int, int, int, int, int]:
        """(row0, col0, first node row, first node column, lattice step), as the kernels take it."""
        return self.row0, self.col0, self.j0, self.k0, LATTICE

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.sep_x, self.sep_y, self.nodes_x, self.nodes_y, self.dense_x,
                                      self.dense_y))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(sx, sy), each (height, width): the coordinates :func:`chunk_coords` gives without exact edges."""
        shape = (self.height, self.width)
        if self.layout == SEPARABLE:
            return np.broadcast_to(self.sep_x[None, :], shape), np.broadcast_to(self.sep_y[:, None], shape)
        if self.layout == DENSE:
            return self.dense_x, self.dense_y
        return _interpolate(self.nodes_x, self.nodes_y, self.k0, self.j0, self.row0, self.col0, self.height,
                            self.width)


def chunk_positions(grid: GridSpec, row0: int, col0: int, height: int, width: int, lg: LevelGrid) -> Positions:
    """The compact :class:`Positions` of a window: ``chunk_coords(..., exact_edges=False)`` unexpanded."""
    g, s = grid.transform, lg.transform
    if same_crs(grid.crs, lg.crs):
        if g[1] == 0 and g[3] == 0 and s[1] == 0 and s[3] == 0:
            sx, sy = chunk_coords(grid, row0, col0, height, width, lg)
            return Positions(SEPARABLE, row0, col0, height, width, sep_x=np.ascontiguousarray(sx[0]),
                             sep_y=np.ascontiguousarray(sy[:, 0]))
        sx, sy = chunk_coords(grid, row0, col0, height, width, lg)
        return Positions(DENSE, row0, col0, height, width, dense_x=sx, dense_y=sy)
    nodes = _lattice_nodes(grid, row0, col0, height, width, lg)
    if nodes is None:
        sx, sy = lattice_coords(grid, row0, col0, height, width, lg, exact_edges=False)
        return Positions(DENSE, row0, col0, height, width, dense_x=sx, dense_y=sy)
    nx, ny, k0, j0 = nodes
    return Positions(LATTICE_NODES, row0, col0, height, width, nodes_x=nx, nodes_y=ny, k0=k0, j0=j0)


def lattice_edge_band(grid: GridSpec, lg: LevelGrid, pos: Positions) -> float:
    """The band around source pixel edges (in source pixels) within which the interpolated coordinates of
    LATTICE_NODES positions are to be made exact for ``near`` (see :func:`_exact_near_edges`)."""
    return _edge_band(grid, lg, pos.nodes_x, pos.nodes_y, pos.k0, pos.j0)


def _exact_near_edges(
    grid: GridSpec, lg: LevelGrid, sx: np.ndarray, sy: np.ndarray, row0: int, col0: int,
    nx: np.ndarray, ny: np.ndarray, k0: int, j0: int,
) -> None:
    """Replace, in place, the interpolated coordinates that lie too close to a pixel edge by exact ones."""
    band = _edge_band(grid, lg, nx, ny, k0, j0)
    with np.errstate(invalid="ignore"):
        near = (np.abs(sx - np.round(sx)) < band) | (np.abs(sy - np.round(sy)) < band)
    rr, cc = np.nonzero(near)
    if rr.size:
        x, y = source_pixel_coords(grid, cc + col0 + 0.5, rr + row0 + 0.5, lg)
        sx[rr, cc] = x
        sy[rr, cc] = y


def _edge_band(grid: GridSpec, lg: LevelGrid, nx: np.ndarray, ny: np.ndarray, k0: int, j0: int) -> float:
    """Four times the largest interpolation error of the lattice ``nx``/``ny`` (first node column ``k0``,
    row ``j0``; at least :data:`EDGE_BAND`; inf when it is not finite), measured at every half-lattice
    point: cell centres and edge midpoints, where the error of a bilinear interpolation peaks."""
    node_cols = np.arange(k0, k0 + nx.shape[1], dtype="float64") * LATTICE + 0.5
    node_rows = np.arange(j0, j0 + nx.shape[0], dtype="float64") * LATTICE + 0.5
    half_c = np.concatenate([node_cols, (node_cols[:-1] + node_cols[1:]) / 2])
    half_r = np.concatenate([node_rows, (node_rows[:-1] + node_rows[1:]) / 2])
    nc, nr = len(node_cols), len(node_rows)
    ex, ey = source_pixel_coords(grid, *np.meshgrid(half_c, half_r), lg)
    # interpolated values at the same points: nodes, then midpoints along x, along y, and both
    mx = np.concatenate([nx, (nx[:, :-1] + nx[:, 1:]) / 2], axis=1)
    mx = np.concatenate([mx, (mx[:-1] + mx[1:]) / 2], axis=0)
    my = np.concatenate([ny, (ny[:, :-1] + ny[:, 1:]) / 2], axis=1)
    my = np.concatenate([my, (my[:-1] + my[1:]) / 2], axis=0)
    if not (mx.shape == (2 * nr - 1, 2 * nc - 1)):
        raise RuntimeError("internal error: expected mx.shape == (2 * nr - 1, 2 * nc - 1)")
    err = max(float(np.nanmax(np.abs(ex - mx), initial=0.0)), float(np.nanmax(np.abs(ey - my), initial=0.0)))
    return max(4 * err, EDGE_BAND) if np.isfinite(err) else np.inf


def output_window(source: Source, grid: GridSpec, margin: int = 2) -> tuple[int, int, int, int] | None:
    """(row0, col0, row1, col1) of the output pixels the source may touch (clipped), or None.

    In a lon/lat grid the footprint comes wrapped into [-180, 180]: each of its parts is also tried
    360° east and west, for grids that run past ±180°.
    """
    try:
        fp = transform_polygon(source.footprint, source.crs, grid.crs)
    except ValueError:  # the source is not expressible in the grid's CRS: it may touch any pixel
        return 0, 0, grid.height, grid.width
    shifts = (-360.0, 0.0, 360.0) if is_geographic(grid.crs) else (0.0,)
    parts = getattr(fp, "geoms", [fp])
    windows = [w for p in parts if not p.is_empty for s in shifts
               if (w := _bounds_window(grid, p.bounds, s, margin)) is not None]
    if not windows:
        return None
    return (min(w[0] for w in windows), min(w[1] for w in windows),
            max(w[2] for w in windows), max(w[3] for w in windows))


def _bounds_window(
    grid: GridSpec, bounds: tuple[float, float, float, float], xshift: float, margin: int
) -> tuple[int, int, int, int] | None:
    """The output pixels (clipped, with ``margin``) of ``bounds`` moved by ``xshift``, or None."""
    inv = ~grid.affine
    minx, miny, maxx, maxy = bounds
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        return 0, 0, grid.height, grid.width
    minx, maxx = minx + xshift, maxx + xshift
    corners = [inv @ (x, y) for x in (minx, maxx) for y in (miny, maxy)]
    cs = [c for c, _ in corners]
    rs = [r for _, r in corners]
    col0 = max(0, math.floor(min(cs)) - margin)
    col1 = min(grid.width, math.ceil(max(cs)) + margin)
    row0 = max(0, math.floor(min(rs)) - margin)
    row1 = min(grid.height, math.ceil(max(rs)) + margin)
    if row1 <= row0 or col1 <= col0:
        return None
    return row0, col0, row1, col1
