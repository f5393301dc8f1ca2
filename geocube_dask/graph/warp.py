"""Geometry between an output grid and a source's pixel grid: levels, scale, alignment, exact coordinates.

Everything here is deterministic for a (source grid, output grid) pair and never depends on how the
output is chunked: the scale used by resampling kernels is computed once per pair, and source pixel
coordinates are computed exactly per output pixel with pyproj (no approximate transformer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine

from .grid import GridSpec, same_crs, transform_polygon, transformer
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
    fp = transform_polygon(source.footprint, source.crs, grid.crs)
    overlap = fp.intersection(grid.polygon())
    pt = overlap.representative_point() if not overlap.is_empty else grid.polygon().centroid
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


def alignment(lg: LevelGrid, grid: GridSpec) -> tuple[int, int] | None:
    """(row, col) offset when output pixel (r, c) *is* source pixel (r + dr, c + dc), else None."""
    if not same_crs(lg.crs, grid.crs):
        return None
    s, g = lg.transform, grid.transform
    if s[1] != 0 or s[3] != 0 or g[1] != 0 or g[3] != 0:
        return None
    if not (math.isclose(s[0], g[0], rel_tol=1e-9) and math.isclose(s[4], g[4], rel_tol=1e-9)):
        return None
    dc = (g[2] - s[2]) / s[0]
    dr = (g[5] - s[5]) / s[4]
    if abs(dc - round(dc)) > ALIGN_TOLERANCE or abs(dr - round(dr)) > ALIGN_TOLERANCE:
        return None
    return round(dr), round(dc)


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
    grid: GridSpec, row0: int, col0: int, height: int, width: int, lg: LevelGrid
) -> tuple[np.ndarray, np.ndarray]:
    """Source pixel coordinates (sx, sy), shape (height, width), of the output pixel centres of a window."""
    cols = col0 + np.arange(width, dtype="float64") + 0.5
    rows = row0 + np.arange(height, dtype="float64") + 0.5
    same = same_crs(grid.crs, lg.crs)
    g, s = grid.transform, lg.transform
    if same and g[1] == 0 and g[3] == 0 and s[1] == 0 and s[3] == 0:
        # separable: compute a row and a column, then broadcast (identical values to the general case)
        sx1, _ = source_pixel_coords(grid, cols, np.zeros_like(cols), lg)
        _, sy1 = source_pixel_coords(grid, np.zeros_like(rows), rows, lg)
        return np.broadcast_to(sx1[None, :], (height, width)), np.broadcast_to(sy1[:, None], (height, width))
    cc, rr = np.meshgrid(cols, rows)
    return source_pixel_coords(grid, cc, rr, lg)


def output_window(source: Source, grid: GridSpec, margin: int = 2) -> tuple[int, int, int, int] | None:
    """(row0, col0, row1, col1) of the output pixels the source may touch (clipped), or None."""
    fp = transform_polygon(source.footprint, source.crs, grid.crs)
    if fp.is_empty:
        return None
    inv = ~grid.affine
    minx, miny, maxx, maxy = fp.bounds
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        return 0, 0, grid.height, grid.width
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
