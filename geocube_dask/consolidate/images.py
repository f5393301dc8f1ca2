"""A record's image in a cell, exactly as a cube computes it, in the consolidation's stored format.

The image is the cube engine's: a :class:`~geocube_dask.graph.plan.CubePlan` on the cell's grid with the
record's sources (same mapping, paint order and resampling as any cube), turned into dask arrays by
:func:`~geocube_dask.graph.cube.cube_from_plan`. Its values (the variable's) are then stored in the
consolidation's data format with the inverse of the mapping a reader applies::

    vi = Min + (Max - Min) * ((ve - MinOut) / (MaxOut - MinOut)) ** (1 / exponent)

where ``Min``/``Max`` are the stored format's range and ``MinOut``/``MaxOut`` the variable's (the new
datasets' real range), then rounded and saturated to the stored dtype; a valid value that lands on the
stored nodata is moved one step towards the stored range, so that it stays valid. With the variable's
own format and exponent 1 the values are stored unchanged (lossless).
"""

from __future__ import annotations

import math
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np

from ..entities import DFormat
from ..graph.cube import cube_from_plan
from ..graph.mapping import Mapping, cast, valid_mask
from ..graph.plan import CubePlan, PlanRecord, Source, build_plan
from .plan import CellSpec


@dataclass(frozen=True)
class ImageSettings:
    """What every record image of a consolidation shares: the variable and how its values are stored."""

    variable: str
    instances: tuple[str, ...]
    bands: tuple[str, ...]
    dformat: DFormat  # the variable's
    resampling: str
    stored: DFormat  # the consolidated files'
    exponent: float = 1.0
    chunks: int = 1024
    gdal_env: MappingABC[str, str] = field(default_factory=dict)
    nodata_margin: float = 0.0  # lossy compression's error bound (see to_stored)

    @property
    def lossless_cast(self) -> bool:
        """True when stored values are the variable's values (no mapping, no nodata margin)."""
        return (self.stored.to_json() == self.dformat.to_json() and self.exponent == 1.0  # NaN-safe
                and self.nodata_margin == 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "variable": self.variable, "instances": list(self.instances), "bands": list(self.bands),
            "dformat": self.dformat.to_json(), "resampling": self.resampling, "stored": self.stored.to_json(),
            "exponent": self.exponent, "chunks": self.chunks, "gdal_env": dict(self.gdal_env),
            "nodata_margin": self.nodata_margin,
        }

    @classmethod
    def from_json(cls, d: MappingABC[str, Any]) -> ImageSettings:
        return cls(
            d["variable"], tuple(d["instances"]), tuple(d["bands"]), DFormat.parse(d["dformat"]), d["resampling"],
            DFormat.parse(d["stored"]), float(d["exponent"]), int(d["chunks"]), dict(d.get("gdal_env", {})),
            float(d.get("nodata_margin", 0.0)),
        )


def record_plan(cell: CellSpec, record: PlanRecord, sources: tuple[Source, ...], settings: ImageSettings) -> CubePlan:
    """The cube plan of one record on a cell's grid (one image, unless no source touches the cell)."""
    return build_plan(
        cell.grid,
        variable=settings.variable,
        instances=settings.instances,
        bands=settings.bands,
        dformat=settings.dformat,
        resampling=settings.resampling,
        rows=[(record, s) for s in sources],
        chunks=settings.chunks,
        gdal_env=settings.gdal_env,
    )


def to_stored(block: np.ndarray, dformat: DFormat, stored: DFormat, exponent: float, margin: float = 0.0
              ) -> np.ndarray:
    """Variable values → stored values (see the module docstring); nodata → the stored nodata.

    Valid values are kept more than ``margin`` away from a finite stored nodata (lossy compression may
    move a value by up to its error bound, and must not turn it into nodata).
    """
    valid = valid_mask(block, dformat.nodata)
    mapping = Mapping(dformat.min, dformat.max, stored.min, stored.max, 1.0 / exponent)
    with np.errstate(invalid="ignore"):
        out = cast(mapping.apply(block), stored.dtype)
    nodata = stored.nodata
    if nodata is not None and not stored.nodata_is_nan:
        near = np.abs(out.astype("float64") - nodata) <= margin
        collide = near if valid is None else valid & near
        if collide.any():
            step = math.floor(margin) + 1 if not stored.is_float else margin * (1 + 1e-6) + 1e-30
            # towards the stored range: up from a nodata below it, down from one above, else the value's side
            up = (out >= nodata) if stored.min < nodata < stored.max else np.full(out.shape, nodata <= stored.min)
            moved = np.where(up, nodata + step, nodata - step)
            out[collide] = cast(moved, stored.dtype)[collide]
    if valid is not None:
        out[~valid] = nodata
    return out


def record_image(cell: CellSpec, record: PlanRecord, sources: tuple[Source, ...], settings: ImageSettings) -> da.Array:
    """The lazy ``(band, y, x)`` image of a record in a cell, in the stored format."""
    plan = record_plan(cell, record, sources, settings)
    if plan.images:
        image = cube_from_plan(plan).data[0]
    else:  # no source reaches the cell (planning keeps only records that do): all nodata
        h, w = cell.grid.shape
        image = da.full((len(settings.bands), h, w), settings.dformat.nodata, dtype=settings.dformat.dtype,
                        chunks=(len(settings.bands), settings.chunks, settings.chunks))
    if settings.lossless_cast:
        return image
    return image.map_blocks(to_stored, settings.dformat, settings.stored, settings.exponent,
                            settings.nodata_margin, dtype=settings.stored.dtype)
