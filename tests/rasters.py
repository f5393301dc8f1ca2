"""Small synthetic COGs for tests, in the CRSs a French/European collection mixes.

Every scene is a few hundred pixels wide so a test makes it in milliseconds. Scenes have a nodata swath
and ×2/×4 overviews unless asked otherwise; values come from ``geocube_dask.synthetic`` (smooth,
deterministic, georeferenced), so two files of the same scene and seed are identical.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine

from geocube_dask import synthetic


@dataclass(frozen=True)
class Scene:
    """Where a synthetic scene lies: CRS, pixel grid origin and size, pixel size."""

    crs: str
    x0: float
    y0: float
    res: float
    width: int
    height: int

    @property
    def transform(self) -> Affine:
        return Affine(self.res, 0.0, self.x0, 0.0, -self.res, self.y0)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the scene CRS."""
        return (self.x0, self.y0 - self.res * self.height, self.x0 + self.res * self.width, self.y0)


SCENES: dict[str, Scene] = {
    # near Toulouse, Sentinel-2-like 20 m grid
    "utm31": Scene("EPSG:32631", 360000.0, 4830000.0, 20.0, 300, 200),
    # western Alps, 30 m (odd sizes: overviews round up)
    "utm32": Scene("EPSG:32632", 300000.0, 5000010.0, 30.0, 257, 191),
    # around Paris in Lambert-93, 10 m
    "l93": Scene("EPSG:2154", 640000.0, 6870000.0, 10.0, 320, 240),
    # lon/lat, ~20 m near Lyon
    "wgs84": Scene("EPSG:4326", 4.8, 45.8, 0.0002, 260, 180),
}


def write_scene(
    path: str | os.PathLike[str],
    scene: str | Scene = "utm31",
    *,
    bands: int = 3,
    seed: int = 0,
    dtype: str = "uint16",
    nodata: float | None = 0,
    nodata_fraction: float = 0.2,
    overviews: tuple[int, ...] = (2, 4),
    cog: bool = True,
    **kwargs: Any,
) -> Path:
    """Write one scene (a name of :data:`SCENES` or a :class:`Scene`) as a COG and return its path.

    ``nodata=None`` writes a file without a nodata value (and so without a nodata swath); ``nodata``
    NaN with a float ``dtype`` gives a float file whose nodata is NaN.
    """
    s = SCENES[scene] if isinstance(scene, str) else scene
    if nodata is None:
        nodata_fraction = 0.0
    return synthetic.write_reflectance(
        path, crs=s.crs, transform=s.transform, width=s.width, height=s.height, bands=bands, seed=seed,
        dtype=dtype, nodata=nodata, nodata_fraction=nodata_fraction, overviews=overviews, cog=cog,
        blocksize=128, **kwargs,
    )


def write_all_scenes(directory: str | os.PathLike[str], **kwargs: Any) -> dict[str, Path]:
    """One COG per scene of :data:`SCENES` in ``directory``: ``{scene name: path}``."""
    directory = Path(directory)
    return {name: write_scene(directory / f"{name}.tif", name, **kwargs) for name in SCENES}


def plain_tiff(path: Path, data: np.ndarray, **profile) -> Path:
    """A small GeoTIFF written with rasterio directly (for odd headers the synthetic module does not make)."""
    count, height, width = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=count, dtype=data.dtype.name,
                       **profile) as dst:
        dst.write(data)
    return path
