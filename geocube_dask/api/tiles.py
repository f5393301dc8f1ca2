"""XYZ tiles: a Web-Mercator tile of an instance, painted by the cube engine, coloured into a PNG.

A tile ``z/x/y`` is the tile of morecantile's ``WebMercatorQuad`` (the tile matrix set TiTiler uses): a
256×256 grid in EPSG:3857 over the tile's bounds. Its pixels are a cube's: the request becomes a
:class:`~geocube_dask.graph.plan.CubePlan` over that grid with every record matched mosaicked into one
image (``group_by`` a constant key), so each pixel is the latest valid value in paint order (record
datetime, record id, dataset), exactly as ``get_cube(..., group_by=...)`` paints it.

Colours: with ``v`` a value in the variable's unit and ``t = clip((v − min) / (max − min), 0, 1)``
(``min``/``max`` given, else the variable's range):

* one band → the variable's palette at ``t`` (linear between the palette's points, each component
  rounded); a variable without palette is drawn grey (``r = g = b = round(255·t)``);
* three bands → ``(round(255·t_r), round(255·t_g), round(255·t_b), 255)``.

A pixel where any drawn band is nodata is fully transparent. A tile that no dataset touches is answered
from the catalogue alone (nothing is read): the shared transparent PNG.

The tile's identity (:func:`tile_etag`) is a hash of the plan (grid, images, the datasets it reads and
their value mappings), of the local files' signatures (inode, size, modification time: a file rewritten
in place under the same name) and of the drawing parameters (bands, range, palette colours): a dataset
added, removed or remapped under the tile, a local file rewritten, or another query, changes it. Remote
objects are taken as immutable (a consolidation writes new files under new names).
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import dask
import morecantile
import numpy as np
from affine import Affine
from PIL import Image as PILImage

from ..entities import DFormat, Palette, PalettePoint, Variable
from ..errors import InvalidArgument
from ..graph.cube import cube_from_plan
from ..graph.grid import GridSpec
from ..graph.plan import CubePlan, PlanRecord
from ..graph.read import file_signature

TILE_SIZE = 256
TMS = morecantile.tms.get("WebMercatorQuad")
TILE_CRS = "EPSG:3857"
# bumped when the drawing rules change, so that clients do not keep tiles drawn by the old rules
RENDER_VERSION = "1"
# a variable without palette: black → white
GREY = Palette("grey", (PalettePoint(0.0, 0, 0, 0), PalettePoint(1.0, 255, 255, 255)))


@dataclass(frozen=True)
class TileStyle:
    """How a tile's values become colours: the bands drawn (1 → palette, 3 → RGB) and the value range."""

    bands: tuple[str, ...]
    vmin: float
    vmax: float
    palette: Palette | None = None

    def key(self) -> str:
        """The style as text, for the tile's ETag."""
        points = None if self.palette is None else [(p.value, p.r, p.g, p.b, p.a) for p in self.palette.points]
        return repr((self.bands, self.vmin, self.vmax, points))


def tile_grid(z: int, x: int, y: int) -> GridSpec:
    """The 256×256 EPSG:3857 grid of tile ``z/x/y`` of WebMercatorQuad. Raises InvalidArgument if it does not exist."""
    for name, value in (("z", z), ("x", x), ("y", y)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise InvalidArgument(f"tile {name} must be an integer, not {value!r}")
    if not TMS.minzoom <= z <= TMS.maxzoom:
        raise InvalidArgument(f"tile zoom z={z} does not exist: z goes from {TMS.minzoom} to {TMS.maxzoom}")
    tile = morecantile.Tile(x=int(x), y=int(y), z=int(z))
    if not TMS.is_valid(tile):
        last = TMS.matrix(z).matrixWidth - 1
        raise InvalidArgument(f"tile {z}/{x}/{y} does not exist: at zoom {z}, x and y go from 0 to {last}")
    left, bottom, right, top = TMS.xy_bounds(tile)
    transform = Affine((right - left) / TILE_SIZE, 0.0, left, 0.0, -(top - bottom) / TILE_SIZE, top)
    return GridSpec(TILE_CRS, tuple(transform)[:6], TILE_SIZE, TILE_SIZE)


def one_image(record: PlanRecord) -> int:
    """The ``group_by`` key that mosaics every record of a tile into one image."""
    return 0


def tile_style(
    variable: Variable,
    palette: Palette | None,
    bands: Sequence[str] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> TileStyle:
    """Check the drawing parameters against ``variable``: bands (default its first three, or its only
    one), range (default its dformat's min/max). Raises InvalidArgument."""
    if bands is None or len(bands) == 0:
        bands = variable.bands[:3] if len(variable.bands) >= 3 else variable.bands[:1]
    bands = tuple(bands)
    unknown = [b for b in bands if b not in variable.bands]
    if unknown:
        raise InvalidArgument(
            f"variable {variable.name!r} has no band {unknown[0]!r}: choose among {', '.join(variable.bands)}"
        )
    if len(bands) not in (1, 3):
        raise InvalidArgument(
            f"a tile draws 1 band (through the palette) or 3 bands (as RGB), not {len(bands)}: give bands=B or "
            "bands=R,G,B"
        )
    lo = variable.dformat.min if vmin is None else vmin
    hi = variable.dformat.max if vmax is None else vmax
    for what, value in (("min", lo), ("max", hi)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise InvalidArgument(f"tile {what} must be a finite number, not {value!r}")
    if not lo < hi:
        raise InvalidArgument(f"tile min ({lo}) must be smaller than max ({hi})")
    return TileStyle(bands, float(lo), float(hi), palette if len(bands) == 1 else None)


def tile_plan(
    gc: Any,
    instance: Any,
    grid: GridSpec,
    *,
    records: Sequence[str] | None = None,
    tags: Mapping[str, str | None] | None = None,
    time: tuple[Any, Any] | None = None,
) -> CubePlan:
    """The plan of a tile: the records matched (all by default) mosaicked into one image over ``grid``.

    Only the catalogue is asked: a tile that no dataset touches has a plan without images.
    """
    return gc.get_cube_plan(
        instance, records=records, tags=tags, time=time, crs=grid.crs, transform=grid.transform,
        shape=(grid.height, grid.width), group_by=one_image, chunks=TILE_SIZE,
    )


def tile_etag(plan: CubePlan, style: TileStyle) -> str:
    """A strong ETag: the plan's identity (grid, images, datasets and their mappings), the signatures of
    the local files it reads, and the drawing style."""
    files = sorted({src.uri for image in plan.images for src in image.sources})
    signatures = ";".join(f"{uri}={file_signature(uri)}" for uri in files)
    text = f"{RENDER_VERSION}|{plan.token}|{signatures}|{style.key()}"
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:40] + '"'


def render_tile(plan: CubePlan, style: TileStyle) -> bytes:
    """The PNG of a tile's plan, computed here, in the calling thread (dask's synchronous scheduler)."""
    if not plan.images:
        return transparent_png()
    cube = cube_from_plan(plan, keep_files=True)  # the next tiles read the same files
    picked = cube.isel(time=0).sel(band=list(style.bands))
    with dask.config.set(scheduler="synchronous"):
        values = np.asarray(picked.values)
    rgba = colourise(values, plan.dformat, style)
    if not rgba[..., 3].any():
        return transparent_png()
    return encode_png(rgba)


def valid_pixels(values: np.ndarray, dformat: DFormat) -> np.ndarray:
    """``(y, x)`` True where every band of ``values`` ``(band, y, x)`` holds data."""
    ok = np.ones(values.shape[1:], dtype=bool)
    for band in values:
        if np.issubdtype(band.dtype, np.floating):
            ok &= ~np.isnan(band)
        if dformat.nodata is not None and not dformat.nodata_is_nan:
            ok &= band != dformat.nodata
    return ok


def colourise(values: np.ndarray, dformat: DFormat, style: TileStyle) -> np.ndarray:
    """RGBA uint8 ``(y, x, 4)`` of ``values`` ``(band, y, x)`` (see the module doc for the rules)."""
    ok = valid_pixels(values, dformat)
    with np.errstate(invalid="ignore"):
        t = np.clip((values.astype("float64") - style.vmin) / (style.vmax - style.vmin), 0.0, 1.0)
    t = np.where(ok, t, 0.0)
    if len(style.bands) == 1:
        rgba = (style.palette or GREY).colours(t[0])
    else:
        rgba = np.empty(values.shape[1:] + (4,), dtype="uint8")
        rgba[..., :3] = np.rint(np.moveaxis(t, 0, -1) * 255).astype("uint8")
        rgba[..., 3] = 255
    rgba[~ok] = 0
    return rgba


def encode_png(rgba: np.ndarray) -> bytes:
    """PNG bytes of an RGBA uint8 ``(y, x, 4)`` array."""
    out = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(rgba)).save(out, format="PNG", compress_level=4)
    return out.getvalue()


@cache
def transparent_png() -> bytes:
    """The fully transparent 256×256 tile (encoded once)."""
    return encode_png(np.zeros((TILE_SIZE, TILE_SIZE, 4), dtype="uint8"))
