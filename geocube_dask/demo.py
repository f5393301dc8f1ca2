"""The demo collection: a small, realistic, deterministic set of COGs, indexed and turned into a cube.

Three dates of Sentinel-2-like 10 m tiles near the UTM 31/32 border, two in EPSG:32631 and one in
EPSG:32632 (swath edges without data, overviews ×2 ×4, 4 bands B2 B3 B4 B8 as uint16 0..10000
meaning reflectance 0..1, saturated "clouds" above 10000) plus a Lambert-93 20 m scene. Files go to
``./geocube-demo/``; they are indexed as datasets of the variable ``reflectance`` (float32 0..1, so
the stored 0..10000 maps to 0..1). The ``geocube demo`` command (``cli.demo``) then computes a cube
in EPSG:32631 at 20 m over the whole collection (one image per day), a quicklook and a point
timeseries. Everything is idempotent: re-running rewrites nothing and indexes nothing twice.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning

from .catalog.ingest.requests import IndexRequest, NewRecord
from .entities import Dataset, DFormat, Instance, Variable
from .errors import AlreadyExists, InvalidArgument, NotFound, UnreadableFile
from .projection import transform_polygon, transformer
from .synthetic import write_reflectance

BANDS = ("B2", "B3", "B4", "B8")
VARIABLE = "reflectance"
INSTANCE = "demo"
DFORMAT = DFormat("float32", float("nan"), 0.0, 1.0)
START = datetime(2024, 6, 3, 10, 30, tzinfo=UTC)
DEFAULT_SIZE = 1024
MIN_SIZE = 32
# the demo cube: EPSG:32631 at 20 m over the whole collection, one image per day
CUBE_CRS = "EPSG:32631"
CUBE_RESOLUTION = 20.0
QUICKLOOK = "quicklook.png"
QUICKLOOK_BANDS = (2, 1, 0)  # B4, B3, B2 → R, G, B


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


def check_size(size: int) -> int:
    """The demo size (pixels per side of the 10 m tiles): an integer of at least MIN_SIZE."""
    if isinstance(size, bool) or not isinstance(size, int) or size < MIN_SIZE:
        raise InvalidArgument(f"the demo size must be an integer, at least {MIN_SIZE} (pixels per side), not {size!r}")
    return size


def scene_path(root: Path, scene: DemoScene) -> Path:
    """Where ``scene`` is written under ``root``."""
    return Path(root) / f"{scene.name}.tif"


def _check_existing(path: Path, sc: DemoScene) -> None:
    """An existing demo file must be the one this size would write (else indexing would mix two demos)."""
    try:
        with rasterio.open(path) as src:
            shape = (src.width, src.height, src.count)
            same = shape == (sc.size, sc.size, len(BANDS)) and src.crs == CRS.from_user_input(sc.crs)
    except rasterio.errors.RasterioError as exc:
        raise UnreadableFile(f"{str(path)!r} exists but is not a readable demo file ({exc}): delete it") from None
    if not same:
        raise InvalidArgument(
            f"{str(path)!r} was written by a demo of another size: use another directory, or delete it"
        )


def write_collection(
    root: Path, size: int = DEFAULT_SIZE, progress: Callable[[int, int], None] | None = None
) -> list[tuple[DemoScene, Path]]:
    """Write the scenes under ``root`` (existing files are checked and kept as they are).

    ``progress(done, total)`` is called after each file. A file is written under a temporary name and
    renamed when complete, so an interrupted run leaves no partial file behind its final name.
    """
    check_size(size)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    todo = scenes(size)
    files = []
    for n, sc in enumerate(todo, start=1):
        path = scene_path(root, sc)
        if path.exists():
            _check_existing(path, sc)
        else:
            tmp = path.with_suffix(".tmp.tif")
            write_reflectance(tmp, crs=sc.crs, transform=sc.transform, width=sc.size, height=sc.size,
                              bands=len(BANDS), seed=sc.seed, nodata_fraction=sc.nodata_fraction)
            tmp.rename(path)
        files.append((sc, path))
        if progress is not None:
            progress(n, len(todo))
    return files


def ensure_variable(gc: object) -> tuple[Variable, Instance]:
    """The demo variable and instance, created on first use.

    Raises AlreadyExists when the catalogue has a variable of that name that is not the demo's.
    """
    try:
        var = gc.get_variable(VARIABLE)  # type: ignore[attr-defined]
    except NotFound:
        var = gc.create_variable(  # type: ignore[attr-defined]
            VARIABLE, dformat=DFORMAT, bands=list(BANDS), unit="",
            description="surface reflectance", resampling="near",
        )
    if var.bands != BANDS or var.dformat.to_json() != DFORMAT.to_json():
        raise AlreadyExists(
            f"this catalogue has a variable {VARIABLE!r} that is not the demo's (bands {list(var.bands)}, "
            f"{var.dformat.dtype}): run the demo on another catalogue (--db)"
        )
    try:
        inst = gc.get_instance(var, INSTANCE)  # type: ignore[attr-defined]
    except NotFound:
        inst = gc.instantiate(var, INSTANCE, metadata={"source": "geocube demo"})  # type: ignore[attr-defined]
    return var, inst


def index_collection(
    gc: object, files: list[tuple[DemoScene, Path]], progress: Callable[[int, int], None] | None = None
) -> list[Dataset]:
    """Index the files as uint16 0..10000 datasets meaning 0..1, one record per scene, in one transaction.

    Files already indexed are returned as they are (nothing is indexed twice).
    """
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


def collection_bounds(datasets: Sequence[Any], crs: str = CUBE_CRS) -> tuple[float, float, float, float]:
    """The bounds, in ``crs``, of the union of the datasets' footprints."""
    if not datasets:
        raise InvalidArgument("the demo collection has no dataset")
    union = shapely.union_all([shapely.from_wkt(d.footprint_4326_wkt) for d in datasets])
    return transform_polygon(union, "EPSG:4326", crs).bounds


def sample_point(size: int = DEFAULT_SIZE) -> tuple[float, float]:
    """A (lon, lat) point inside the first tile, away from its swath edge: it has data on every date."""
    sc = scenes(size)[0]
    x, y = sc.transform @ (0.7 * sc.size, 0.6 * sc.size)
    lon, lat = transformer(sc.crs, "EPSG:4326").transform(x, y)
    return round(float(lon), 6), round(float(lat), 6)


def valid_shares(values: np.ndarray) -> list[float]:
    """Per image of a ``(time, band, y, x)`` float array: the share of pixels with a value in every band."""
    if values.shape[0] == 0 or values[0].size == 0:
        return [0.0] * values.shape[0]
    return [float(np.isfinite(image).all(axis=0).mean()) for image in values]


def quicklook(cube_image: np.ndarray, path: Path, bands: tuple[int, int, int] = QUICKLOOK_BANDS) -> Path:
    """Write an RGB PNG of one image (band, y, x) of reflectances 0..1, with a 2–98 % stretch."""
    rgb = np.stack([cube_image[b] for b in bands]).astype("float64")
    valid = np.isfinite(rgb).all(axis=0)
    out = np.zeros(rgb.shape, dtype="uint8")
    if valid.any():
        lo, hi = np.percentile(rgb[:, valid], [2, 98])
        scaled = np.clip((rgb - lo) / max(hi - lo, 1e-9), 0, 1) * 254 + 1
        out = np.where(valid, scaled, 0).astype("uint8")
    alpha = np.where(valid, 255, 0).astype("uint8")
    with warnings.catch_warnings():  # a picture, not a georeferenced raster
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        _write_png(path, out, alpha)
    return path


def _write_png(path: Path, out: np.ndarray, alpha: np.ndarray) -> None:
    with rasterio.open(path, "w", driver="PNG", width=out.shape[2], height=out.shape[1], count=4,
                       dtype="uint8") as dst:
        dst.write(out, [1, 2, 3])
        dst.write(alpha, 4)
