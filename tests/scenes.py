"""Test scenes around the UTM 31/32 border (lon 6°E, lat 45°N) in several CRSs, and plan-building helpers.

Every scene overlaps the point (5.95°E, 45.08°N). ``make_scenes`` writes them (the session fixture
``scenes`` in conftest.py calls it once) with ``geocube_dask.synthetic``: nodata areas, overviews ×2 ×4,
DEFLATE tiled GeoTIFFs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from reference import RefGrid, RefSource

from geocube_dask.entities import DFormat
from geocube_dask.graph.grid import GridSpec
from geocube_dask.graph.plan import CubePlan, PlanRecord, Source, build_plan
from geocube_dask.projection import crs_string
from geocube_dask.synthetic import write_raster, write_reflectance

CENTRE = (5.95, 45.08)


def origin_near(crs: str, res: float, width: int, height: int, shift=(0.0, 0.0)) -> Affine:
    """A north-up transform in ``crs`` whose extent is centred near CENTRE (shifted by ``shift`` pixels)."""
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(*CENTRE)
    x0 = math.floor(x / res) * res - (width / 2 + shift[0]) * res
    y0 = math.floor(y / res) * res + (height / 2 + shift[1]) * res
    return Affine(res, 0, x0, 0, -res, y0)


@dataclass
class Scene:
    path: str
    crs: str
    nodata: float | None
    dtype: str
    count: int


SCENES = {
    # name: (crs, res, width, height, dtype, nodata, shift in pixels, seed, nodata fraction)
    "utm31": ("EPSG:32631", 10.0, 400, 320, "uint16", 0, (0, 0), 1, 0.15),
    "utm31b": ("EPSG:32631", 10.0, 400, 320, "uint16", 0, (90, -70), 2, 0.3),
    "utm32": ("EPSG:32632", 10.0, 400, 320, "uint16", 0, (30, 10), 3, 0.2),
    "l93": ("EPSG:2154", 20.0, 200, 160, "uint16", 0, (20, 0), 4, 0.1),
    "wgs84": ("EPSG:4326", 0.0001, 360, 300, "uint16", 0, (0, 20), 5, 0.1),
    "float": ("EPSG:32631", 10.0, 300, 300, "float32", math.nan, (-40, 30), 6, 0.2),
}


def make_scenes(root: Path) -> dict[str, Scene]:
    """Write every scene under ``root``."""
    out: dict[str, Scene] = {}
    for name, (crs, res, w, h, dtype, nodata, shift, seed, frac) in SCENES.items():
        path = root / f"{name}.tif"
        write_reflectance(path, crs=crs, transform=origin_near(crs, res, w, h, shift), width=w, height=h,
                          seed=seed, dtype=dtype, nodata=nodata, nodata_fraction=frac, overviews=(2, 4))
        out[name] = Scene(str(path), crs, nodata, dtype, 4)
    # six bands, to pick a subset in another order
    t = origin_near("EPSG:32631", 10.0, 200, 200, (10, 10))
    rng = np.random.default_rng(9)
    six = rng.integers(1, 10000, size=(6, 200, 200), dtype="uint16")
    six[:, :20, :] = 0
    path = root / "six.tif"
    write_raster(path, six, crs="EPSG:32631", transform=t, nodata=0, overviews=(2,))
    out["six"] = Scene(str(path), "EPSG:32631", 0, "uint16", 6)
    # int16 NDVI-like values with nodata -10001, no overviews
    t = origin_near("EPSG:32631", 10.0, 250, 250, (-20, -20))
    yy, xx = np.mgrid[0:250, 0:250]
    ndvi = (np.sin(xx / 17.0) * np.cos(yy / 23.0) * 10000).astype("int16")
    ndvi[:, :30] = -10001
    path = root / "ndvi.tif"
    write_raster(path, ndvi[None], crs="EPSG:32631", transform=t, nodata=-10001, overviews=())
    out["ndvi"] = Scene(str(path), "EPSG:32631", -10001, "int16", 1)
    return out


def source_for(path: str, bands=(1, 2, 3, 4), dformat: DFormat | None = None, real=(0.0, 10000.0),
               exponent: float = 1.0, record_id: str = "r", dataset_id: int = 1) -> Source:
    """A plan source described from the file's header (read here with rasterio)."""
    with rasterio.open(path) as ds:
        n = len(ds.overviews(1))
        crs = crs_string(ds.crs)
        transform = tuple(ds.transform)[:6]
        width, height, dtype, nodata = ds.width, ds.height, ds.dtypes[0], ds.nodata
    overviews = []
    for i in range(n):
        with rasterio.open(path, overview_level=i) as ov:
            overviews.append((ov.width, ov.height))
    if dformat is None:
        dformat = DFormat(dtype, nodata, real[0], real[1])
    return Source(path, "", tuple(bands), dformat, real[0], real[1], exponent, crs, transform, width, height,
                  tuple(overviews), dataset_id, record_id)


def ref_of(src: Source) -> RefSource:
    return RefSource(src.uri, src.bands, src.dformat.min, src.dformat.max, src.real_min, src.real_max,
                     src.exponent, src.dformat.nodata)


def ref_grid(grid: GridSpec) -> RefGrid:
    return RefGrid(grid.crs, Affine(*grid.transform), grid.width, grid.height)


def make_plan(images: list[list[Source]], grid: GridSpec, *, dformat: DFormat | None = None,
              bands=("b1", "b2", "b3", "b4"), resampling: str = "near", chunks=128, **kw) -> CubePlan:
    """A plan with one image per list of sources (dated one day apart)."""
    rows = []
    for i, sources in enumerate(images):
        rec = PlanRecord(f"rec{i:03d}", f"record-{i}", datetime(2024, 1, 1 + i, tzinfo=UTC))
        rows += [(rec, s) for s in sources]
    return build_plan(grid, variable="refl", instances=["master"], bands=list(bands),
                      dformat=dformat or DFormat("uint16", 0.0, 0.0, 10000.0), resampling=resampling, rows=rows,
                      chunks=chunks, **kw)


def centre_in(crs: str) -> tuple[float, float]:
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(*CENTRE)
