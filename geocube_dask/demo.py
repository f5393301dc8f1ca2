"""The demo collection: a small, realistic, deterministic set of COGs, indexed and turned into a cube.

Three dates of Sentinel-2-like 10 m tiles on both sides of the UTM 31/32 border (EPSG:32631 and
EPSG:32632, swath edges without data, overviews ×2 ×4, 4 bands B2 B3 B4 B8 as uint16 0..10000
meaning reflectance 0..1) plus a Lambert-93 20 m scene. Files go to ``./geocube-demo/``; they are
indexed as datasets of the variable ``reflectance`` (float32 0..1, so the stored 0..10000 maps to
0..1). Everything is idempotent: re-running rewrites nothing and indexes nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from .catalog.indexing import IndexRequest, NewRecord
from .entities import Instance, Variable
from .errors import NotFound
from .synthetic import write_reflectance

BANDS = ("B2", "B3", "B4", "B8")
VARIABLE = "reflectance"
INSTANCE = "demo"
START = datetime(2024, 6, 3, 10, 30, tzinfo=UTC)


@dataclass(frozen=True)
class DemoScene:
    name: str
    crs: str
    transform: Affine
    size: int
    day: int
    seed: int
    nodata_fraction: float
    constellation: str


def scenes(size: int = 1024) -> list[DemoScene]:
    """The demo's scenes: 3 dates × 3 UTM tiles, plus one Lambert-93 scene on the second date."""
    out = []
    tiles = [
        ("T31TGL", "EPSG:32631", Affine(10, 0, 700000, 0, -10, 5000000)),
        ("T31TGK", "EPSG:32631", Affine(10, 0, 700000, 0, -10, 5000000 - 10 * size + 1000)),
        ("T32TKR", "EPSG:32632", Affine(10, 0, 231000, 0, -10, 5003000)),
    ]
    for day in range(3):
        for i, (tile, crs, transform) in enumerate(tiles):
            out.append(DemoScene(f"S2_{tile}_{day}", crs, transform, size, day * 5, 100 * day + i,
                                 0.12 + 0.1 * i, "sentinel-2"))
    out.append(DemoScene("SPOT_L93_1", "EPSG:2154", Affine(20, 0, 900000, 0, -20, 6452000), size // 2, 5, 77,
                         0.05, "spot"))
    return out


def write_collection(root: Path, size: int = 1024) -> list[tuple[DemoScene, Path]]:
    """Write the scenes under ``root`` (existing files are kept as they are)."""
    files = []
    for sc in scenes(size):
        path = root / f"{sc.name}.tif"
        if not path.exists():
            tmp = path.with_suffix(".tmp.tif")
            write_reflectance(tmp, crs=sc.crs, transform=sc.transform, width=sc.size, height=sc.size,
                              bands=len(BANDS), seed=sc.seed, nodata_fraction=sc.nodata_fraction)
            tmp.rename(path)
        files.append((sc, path))
    return files


def ensure_variable(gc: object) -> tuple[Variable, Instance]:
    """The demo variable and instance, created on first use."""
    try:
        var = gc.get_variable(VARIABLE)  # type: ignore[attr-defined]
    except NotFound:
        var = gc.create_variable(  # type: ignore[attr-defined]
            VARIABLE, dformat=("float32", "nan", 0, 1), bands=list(BANDS), unit="",
            description="surface reflectance", resampling="near",
        )
    try:
        inst = gc.get_instance(var, INSTANCE)  # type: ignore[attr-defined]
    except NotFound:
        inst = gc.instantiate(var, INSTANCE, metadata={"source": "geocube demo"})  # type: ignore[attr-defined]
    return var, inst


def index_collection(gc: object, files: list[tuple[DemoScene, Path]], progress=None) -> list[object]:
    """Index the files as uint16 0..10000 datasets meaning 0..1, one record per scene."""
    _, inst = ensure_variable(gc)
    requests = [
        IndexRequest(
            uri=str(path),
            record=NewRecord(sc.name, START + timedelta(days=sc.day, minutes=sc.seed % 7),
                             {"constellation": sc.constellation, "demo": "yes"}),
            instance=inst.id,
            dformat=("uint16", 0, 0, 10000),
            real_min=0.0,
            real_max=1.0,
        )
        for sc, path in files
    ]
    return gc.index_datasets(requests, progress=progress)  # type: ignore[attr-defined]


def quicklook(cube_image: np.ndarray, path: Path, bands: tuple[int, int, int] = (2, 1, 0)) -> Path:
    """Write an RGB PNG of one image (band, y, x) of reflectances 0..1, with a 2–98 % stretch."""
    rgb = np.stack([cube_image[b] for b in bands]).astype("float64")
    valid = np.isfinite(rgb).all(axis=0)
    out = np.zeros(rgb.shape, dtype="uint8")
    if valid.any():
        lo, hi = np.percentile(rgb[:, valid], [2, 98])
        scaled = np.clip((rgb - lo) / max(hi - lo, 1e-9), 0, 1) * 254 + 1
        out = np.where(valid, scaled, 0).astype("uint8")
    alpha = np.where(valid, 255, 0).astype("uint8")
    with rasterio.open(path, "w", driver="PNG", width=out.shape[2], height=out.shape[1], count=4,
                       dtype="uint8") as dst:
        dst.write(out, [1, 2, 3])
        dst.write(alpha, 4)
    return path
