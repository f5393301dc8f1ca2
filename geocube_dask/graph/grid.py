"""Output grids: CRS + affine transform + size, and how a request's extent becomes one.

Snapping rule: given a resolution and bounds (or an AOI), the grid is anchored on multiples of the
resolution ("target aligned pixels", like ``gdalwarp -tap``): ``xmin = floor(xmin / xres) * xres``,
``xmax = ceil(xmax / xres) * xres`` and likewise in y, so two requests at one resolution share pixel
edges and the bounds asked for are always inside the grid.

Output grids are north-up: no rotation or shear (``b = d = 0``), so a cube's coordinates are 1-D ``x``
and ``y`` and its outline is the box of its bounds. A rotated ``transform=``, ``like=`` or plan is
refused (``InvalidArgument``); sources may be rotated, they are warped onto the grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry

from ..errors import InvalidArgument
from ..projection import crs_string, transform_polygon

MAX_PIXELS = 2**40  # refuse absurd grids early: a 1 Tpix cube is a request error, not a plan

# snapping tolerance, in pixels: bounds within this of a grid line are not pushed one pixel out
SNAP_EPS = 1e-9


@dataclass(frozen=True)
class GridSpec:
    """An output grid: ``crs`` (canonical string), affine ``transform`` (a, b, c, d, e, f), size."""

    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "transform", tuple(float(v) for v in self.transform))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        if self.width < 0 or self.height < 0:
            raise InvalidArgument(f"grid size must be positive, got {self.width}x{self.height}")
        if self.transform[1] != 0 or self.transform[3] != 0:
            raise InvalidArgument(
                f"output grids cannot be rotated or sheared: transform {self.transform} has b={self.transform[1]}"
                f" and d={self.transform[3]}; give a north-up transform (b = d = 0), or crs= + resolution= + bounds="
            )
        if self.width * self.height > MAX_PIXELS:
            raise InvalidArgument(
                f"grid of {self.width}x{self.height} pixels is too large: use a coarser resolution or smaller bounds"
            )

    @property
    def affine(self) -> Affine:
        return Affine(*self.transform)

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def resolution(self) -> tuple[float, float]:
        a = self.affine
        return abs(a.a), abs(a.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        a = self.affine
        xs = [a.c, a.c + a.a * self.width + a.b * self.height]
        ys = [a.f, a.f + a.d * self.width + a.e * self.height]
        return min(xs), min(ys), max(xs), max(ys)

    def xs(self) -> np.ndarray:
        """x of pixel centres (columns)."""
        a = self.affine
        return a.c + a.a * (np.arange(self.width) + 0.5)

    def ys(self) -> np.ndarray:
        """y of pixel centres (rows)."""
        a = self.affine
        return a.f + a.e * (np.arange(self.height) + 0.5)

    def polygon(self) -> Polygon:
        return box(*self.bounds)

    def footprint(self, crs: str = "EPSG:4326", densify: int = 21) -> BaseGeometry:
        """The grid outline transformed to ``crs`` (edges densified with ``densify`` points)."""
        return transform_polygon(self.polygon(), self.crs, crs, densify)

    def to_json(self) -> dict[str, Any]:
        return {"crs": self.crs, "transform": list(self.transform), "width": self.width, "height": self.height}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GridSpec:
        return cls(data["crs"], tuple(float(v) for v in data["transform"]), int(data["width"]), int(data["height"]))


def _resolution(resolution: float | Sequence[float]) -> tuple[float, float]:
    if isinstance(resolution, int | float):
        xres = yres = float(resolution)
    else:
        vals = list(resolution)
        if len(vals) != 2:
            raise InvalidArgument(f"resolution must be a number or (xres, yres), not {resolution!r}")
        xres, yres = float(vals[0]), float(abs(vals[1]))
    for r in (xres, yres):
        if not math.isfinite(r) or r <= 0:
            raise InvalidArgument(f"resolution must be positive and finite, not {resolution!r}")
    return xres, yres


def snap_bounds(bounds: Sequence[float], resolution: float | Sequence[float]) -> tuple[Affine, int, int]:
    """Snap ``bounds`` (xmin, ymin, xmax, ymax) outwards to multiples of ``resolution``."""
    xres, yres = _resolution(resolution)
    try:
        xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise InvalidArgument(f"bounds must be (xmin, ymin, xmax, ymax), not {bounds!r}") from None
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
        raise InvalidArgument(f"bounds must be finite, not {bounds!r}")
    if not (xmin < xmax and ymin < ymax):
        raise InvalidArgument(f"bounds must satisfy xmin < xmax and ymin < ymax, got {bounds!r}")
    x0 = math.floor(xmin / xres + SNAP_EPS) * xres
    x1 = math.ceil(xmax / xres - SNAP_EPS) * xres
    y0 = math.floor(ymin / yres + SNAP_EPS) * yres
    y1 = math.ceil(ymax / yres - SNAP_EPS) * yres
    width = max(1, round((x1 - x0) / xres))
    height = max(1, round((y1 - y0) / yres))
    return Affine(xres, 0.0, x0, 0.0, -yres, y1), width, height


def make_grid(
    crs: Any = None,
    resolution: float | Sequence[float] | None = None,
    bounds: Sequence[float] | None = None,
    *,
    transform: Affine | Sequence[float] | None = None,
    shape: tuple[int, int] | None = None,
    aoi: BaseGeometry | None = None,
    aoi_crs: Any = "EPSG:4326",
    like: Any = None,
) -> GridSpec:
    """Build the output grid of a request.

    One of: ``like`` (a DataArray/Dataset with rioxarray CRS and transform: same grid);
    ``crs`` + ``transform`` + ``shape`` (height, width); ``crs`` + ``resolution`` + ``bounds``
    (in ``crs``, snapped, see module doc); ``crs`` + ``resolution`` + ``aoi`` (a shapely geometry in
    ``aoi_crs``, whose bounds in ``crs`` are snapped).
    """
    if like is not None:
        given = [name for name, value in (("crs", crs), ("resolution", resolution), ("bounds", bounds),
                                          ("transform", transform), ("shape", shape), ("aoi", aoi))
                 if value is not None]
        if given:
            raise InvalidArgument(f"like= gives the whole output grid: leave out {', '.join(given)}")
        try:
            like_crs = like.rio.crs
            like_transform = like.rio.transform()
            h, w = like.rio.height, like.rio.width
        except Exception as exc:  # rioxarray raises several types here
            raise InvalidArgument(f"like= needs an xarray object with a CRS and transform (rioxarray): {exc}") from None
        if like_crs is None:
            raise InvalidArgument("like= has no CRS: write one with .rio.write_crs(...)")
        if like_transform.b != 0 or like_transform.d != 0:
            raise InvalidArgument(
                f"like= is on a rotated grid (transform {tuple(like_transform)[:6]}): output grids are north-up;"
                " give crs=, resolution= and bounds= instead"
            )
        return GridSpec(crs_string(like_crs), tuple(like_transform)[:6], int(w), int(h))
    if crs is None:
        raise InvalidArgument("a cube needs an output crs (e.g. crs='EPSG:32631'), or like=an existing cube")
    crs_s = crs_string(crs)
    if transform is not None or shape is not None:
        if transform is None or shape is None:
            raise InvalidArgument("give transform= and shape=(height, width) together")
        aff = transform if isinstance(transform, Affine) else Affine(*list(transform)[:6])
        if aff.is_degenerate:
            raise InvalidArgument(f"transform {tuple(aff)[:6]} is degenerate")
        try:
            h, w = (int(v) for v in shape)
        except (TypeError, ValueError):
            raise InvalidArgument(f"shape must be (height, width), not {shape!r}") from None
        if h <= 0 or w <= 0:
            raise InvalidArgument(f"shape must be positive, not {shape!r}")
        return GridSpec(crs_s, tuple(aff)[:6], w, h)
    if resolution is None:
        raise InvalidArgument("give resolution= with bounds= or aoi= (or transform= and shape=)")
    if aoi is not None:
        if bounds is not None:
            raise InvalidArgument("give bounds= or aoi=, not both")
        if not isinstance(aoi, BaseGeometry) or aoi.is_empty:
            raise InvalidArgument("aoi= must be a non-empty shapely geometry")
        try:
            # continuous coordinates (a lon/lat AOI across the antimeridian runs past ±180°)
            bounds = transform_polygon(aoi, crs_string(aoi_crs), crs_s, wrap=False).bounds
        except ValueError as exc:
            raise InvalidArgument(f"aoi= cannot be expressed in {crs_s} ({exc}): choose a crs that covers it") from None
    if bounds is None:
        raise InvalidArgument("give bounds=(xmin, ymin, xmax, ymax) in the output crs, or aoi=")
    aff, w, h = snap_bounds(bounds, resolution)
    return GridSpec(crs_s, tuple(aff)[:6], w, h)
