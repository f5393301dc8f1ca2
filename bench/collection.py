"""Synthetic benchmark collections: the scenes, their COGs, STAC Items for the peers, and a cache.

A collection is a list of ``SceneSpec`` (CRS, grid, date, seed, nodata share). ``ensure`` writes its
COGs with ``geocube_dask.synthetic.write_reflectance`` under ``bench/_data/<name>-<key>/`` where ``key``
hashes the specs and the generator's source, so a collection is generated once and regenerated only
when missing or when what would be generated changes. Next to the COGs it writes:

- ``scenes.json``: what the geocube_dask runner indexes (path, record name, datetime, tags);
- ``items-multiband.json``: STAC Items with one 4-band asset (``eo:bands`` names B2 B3 B4 B8) — how
  odc-stac reads a multi-band file;
- ``items-perband.json``: STAC Items with one asset per band, each a single-band COG of that band
  (``bands/<scene>_<band>.tif``: the same pixels, block size, compression and overviews) — stackstac
  reads single-band assets only, and a collection meant for it ships one file per band (as Sentinel-2
  L2A COGs do). A ``vrt://…?bands=N`` view of the pixel-interleaved file would decode all four bands
  to return one.

Every Item carries ``proj:epsg``, ``proj:transform``, ``proj:shape`` and ``raster:bands`` (data type,
nodata), so neither peer has to open a file to plan its reads.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from common import BANDS, DATA_DIR, NODATA, Grid, read_json, write_json
from pyproj import Transformer
from rasterio.crs import CRS

from geocube_dask import synthetic

FORMAT_VERSION = 1
STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
]


@dataclass(frozen=True)
class SceneSpec:
    """One synthetic scene: a 4-band uint16 COG with overviews x2 x4."""

    name: str
    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int
    datetime: str  # ISO 8601, UTC, "Z"
    seed: int
    nodata_fraction: float
    platform: str
    wavelength: float | None = None

    @property
    def affine(self) -> Affine:
        """The scene's geotransform."""
        return Affine(*self.transform)


@dataclass(frozen=True)
class Collection:
    """A named list of scenes; ``key`` identifies what would be generated."""

    name: str
    scenes: tuple[SceneSpec, ...]
    notes: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def key(self) -> str:
        """Hash of the specs and of the generator's source code."""
        h = hashlib.sha256()
        h.update(str(FORMAT_VERSION).encode())
        h.update(json.dumps([asdict(s) for s in self.scenes], sort_keys=True).encode())
        h.update(inspect.getsource(synthetic).encode())
        return h.hexdigest()[:12]

    @property
    def root(self) -> Path:
        """Where this collection lives."""
        return DATA_DIR / f"{self.name}-{self.key}"

    def path(self, scene: SceneSpec) -> Path:
        """The COG of ``scene``."""
        return self.root / "scenes" / f"{scene.name}.tif"

    @property
    def scenes_json(self) -> Path:
        """Scenes to index (path, record name, datetime, tags)."""
        return self.root / "scenes.json"

    @property
    def items_multiband(self) -> Path:
        """STAC Items, one multi-band asset each (odc-stac)."""
        return self.root / "items-multiband.json"

    @property
    def items_perband(self) -> Path:
        """STAC Items, one single-band ``vrt://`` asset per band (stackstac)."""
        return self.root / "items-perband.json"

    def band_path(self, scene: SceneSpec, band: str) -> Path:
        """The single-band COG of ``band`` of ``scene`` (stackstac's assets)."""
        return self.root / "bands" / f"{scene.name}_{band}.tif"

    @property
    def bands_marker(self) -> Path:
        """Written once every single-band COG exists."""
        return self.root / "bands" / "done.json"

    @property
    def marker(self) -> Path:
        """Written last: its presence means the collection is complete."""
        return self.root / "collection.json"

    def size_bytes(self) -> int:
        """Total size of the COGs on disk."""
        return sum(self.path(s).stat().st_size for s in self.scenes)


# ---------------------------------------------------------------------------------------------------
# The collections


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _snap(value: float, step: float) -> float:
    return float(np.floor(value / step) * step)


# North-west corner of the main output grid in EPSG:32631 (a multiple of 60 m, like Sentinel-2 tile
# origins), near 5.7°E 45.6°N: the output straddles the UTM 31/32 boundary at 6°E and lies in France
# so that Lambert-93 is a natural CRS for the SPOT-like scene.
MAIN_ORIGIN = (699960.0, 5060040.0)
MAIN_GRID = Grid("EPSG:32631", (20.0, 0.0, MAIN_ORIGIN[0], 0.0, -20.0, MAIN_ORIGIN[1]), (1876, 2035))


def main_collection(size: int = 2048, dates: int = 10) -> Collection:
    """38 scenes over 11 days: four Sentinel-2-like tiles (10 m, two in EPSG:32631, two in EPSG:32632)
    on ``dates`` dates (each tile misses one date), a Landsat-like scene in EPSG:4326 and a SPOT-like
    one in Lambert-93 (EPSG:2154, 6 m). Every scene is ``size``² pixels, 4 bands, DEFLATE COG with
    overviews x2 x4, nodata 0 with a diagonal no-data swath on most scenes.

    The 32631 tiles share the output grid's origin, so at 20 m their x2 overview is the output grid.
    """
    ox, oy = MAIN_ORIGIN
    span = size * 10.0
    to32 = Transformer.from_crs("EPSG:32631", "EPSG:32632", always_xy=True)
    # 32632 tiles: their NW corner near the output's north edge, just west of the 32631 tiles' east edge
    cx, cy = to32.transform(ox + span - 800.0, oy + 400.0)
    cx, cy = _snap(cx, 10.0), _snap(cy, 10.0)
    tiles = [
        ("T31A", "EPSG:32631", (10.0, 0.0, ox, 0.0, -10.0, oy)),
        ("T31B", "EPSG:32631", (10.0, 0.0, ox, 0.0, -10.0, oy - span + 2480.0)),
        ("T32A", "EPSG:32632", (10.0, 0.0, cx, 0.0, -10.0, cy)),
        ("T32B", "EPSG:32632", (10.0, 0.0, cx, 0.0, -10.0, cy - span + 2480.0)),
    ]
    start = datetime(2024, 3, 2, 10, 30, 0, tzinfo=UTC)
    fractions = (0.0, 0.12, 0.3, 0.0, 0.2)
    scenes: list[SceneSpec] = []
    for d in range(dates):
        day = start + timedelta(days=5 * d)
        for t, (tile, crs, transform) in enumerate(tiles):
            if d == (3 * t + 2) % dates:  # each tile misses one date
                continue
            # tiles of one orbit a few seconds apart; the 32632 orbit 10 minutes later
            when = day + timedelta(minutes=10 * (t // 2), seconds=5 * (t % 2))
            seed = 1000 + 10 * d + t
            scenes.append(SceneSpec(
                name=f"S2_{tile}_{when:%Y%m%dT%H%M%S}", crs=crs, transform=transform, width=size,
                height=size, datetime=_iso(when), seed=seed,
                nodata_fraction=fractions[(d + t) % len(fractions)], platform="S2",
            ))
    # Landsat-like, EPSG:4326, ~0.0003° (23 m x 33 m), covering most of the output, same day as date 3
    to4326 = Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)
    lon0, lat0 = to4326.transform(ox + 3000.0, oy - 1500.0)
    res_deg = 0.0003
    when = start + timedelta(days=15, minutes=-12)
    scenes.append(SceneSpec(
        name=f"LS_{when:%Y%m%dT%H%M%S}", crs="EPSG:4326",
        transform=(res_deg, 0.0, round(lon0, 4), 0.0, -res_deg, round(lat0, 4)), width=size,
        height=size, datetime=_iso(when), seed=77, nodata_fraction=0.1, platform="LS", wavelength=0.02,
    ))
    # SPOT-like, Lambert-93, 6 m, in the middle of the output, on a day of its own
    to2154 = Transformer.from_crs("EPSG:32631", "EPSG:2154", always_xy=True)
    lx, ly = to2154.transform(ox + 14000.0, oy - 12000.0)
    when = start + timedelta(days=31, minutes=20)
    scenes.append(SceneSpec(
        name=f"SPOT_{when:%Y%m%dT%H%M%S}", crs="EPSG:2154",
        transform=(6.0, 0.0, _snap(lx, 6.0), 0.0, -6.0, _snap(ly, 6.0)), width=size, height=size,
        datetime=_iso(when), seed=99, nodata_fraction=0.0, platform="SPOT",
    ))
    scenes.sort(key=lambda s: (s.datetime, s.name))
    return Collection("main", tuple(scenes), notes={"size": size, "dates": dates})


TS_ORIGIN = (600000.0, 5100000.0)


def timeseries_collection(dates: int = 120, size: int = 1024) -> Collection:
    """One Sentinel-2-like tile (EPSG:32631, 10 m, ``size``² px) on ``dates`` dates, 3 days apart."""
    start = datetime(2023, 1, 3, 10, 30, 0, tzinfo=UTC)
    fractions = (0.0, 0.0, 0.25, 0.6)
    transform = (10.0, 0.0, TS_ORIGIN[0], 0.0, -10.0, TS_ORIGIN[1])
    scenes = tuple(
        SceneSpec(
            name=f"S2_T31TS_{(start + timedelta(days=3 * d)):%Y%m%dT%H%M%S}", crs="EPSG:32631",
            transform=transform, width=size, height=size,
            datetime=_iso(start + timedelta(days=3 * d)), seed=5000 + d,
            nodata_fraction=fractions[d % len(fractions)], platform="S2",
        )
        for d in range(dates)
    )
    return Collection("ts", scenes, notes={"size": size, "dates": dates})


def timeseries_point(size: int = 1024) -> tuple[float, float, float, float]:
    """A point of the timeseries tile, off pixel edges: (x, y) in EPSG:32631 and (lon, lat).

    It lies in the no-data swath of some dates (those with the largest swath).
    """
    x = TS_ORIGIN[0] + 10.0 * (0.23 * size) + 3.3
    y = TS_ORIGIN[1] - 10.0 * (0.41 * size) - 6.1
    lon, lat = Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True).transform(x, y)
    return x, y, lon, lat


# ---------------------------------------------------------------------------------------------------
# Generation


def _write_scene(args: tuple[str, dict[str, Any]]) -> str:
    path, spec = args
    scene = SceneSpec(**{**spec, "transform": tuple(spec["transform"])})
    tmp = Path(path).with_suffix(".tmp.tif")
    synthetic.write_reflectance(
        tmp, crs=scene.crs, transform=scene.affine, width=scene.width, height=scene.height,
        bands=len(BANDS), seed=scene.seed, dtype="uint16", nodata=NODATA,
        nodata_fraction=scene.nodata_fraction, overviews=(2, 4), wavelength=scene.wavelength,
    )
    os.replace(tmp, path)
    return path


@functools.lru_cache(maxsize=16)
def _to_lonlat(crs: str) -> Transformer:
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


@functools.lru_cache(maxsize=16)
def _epsg(crs: str) -> int | None:
    return CRS.from_user_input(crs).to_epsg()


def footprint_4326(scene: SceneSpec, densify: int = 16) -> list[tuple[float, float]]:
    """The scene's outline (edges densified) in lon/lat, closed, counter-clockwise."""
    w, h = scene.width, scene.height
    t = np.linspace(0.0, 1.0, densify + 1)[:-1]
    cols = np.concatenate([t * w, np.full_like(t, w), (1 - t) * w, np.zeros_like(t)])
    rows = np.concatenate([np.zeros_like(t), t * h, np.full_like(t, h), (1 - t) * h])
    xs, ys = scene.affine * (cols, rows)
    if _epsg(scene.crs) == 4326:
        lons, lats = np.asarray(xs), np.asarray(ys)
    else:
        lons, lats = _to_lonlat(scene.crs).transform(xs, ys)
    ring = list(zip(np.round(lons, 7).tolist(), np.round(lats, 7).tolist(), strict=True))
    ring = ring[::-1]  # image order (clockwise on the ground) → counter-clockwise
    ring.append(ring[0])
    return ring


def _stac_item(scene: SceneSpec, path: str, multiband: bool, band_paths: dict[str, str] | None = None
               ) -> dict[str, Any]:
    ring = footprint_4326(scene)
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    raster_band = {"data_type": "uint16", "nodata": NODATA, "spatial_resolution": abs(scene.transform[0])}
    if multiband:
        assets = {
            "reflectance": {
                "href": path,
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data"],
                "eo:bands": [{"name": b} for b in BANDS],
                "raster:bands": [dict(raster_band) for _ in BANDS],
            }
        }
    else:
        assets = {
            b: {
                "href": band_paths[b] if band_paths else f"vrt://{path}?bands={i}",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data"],
                "raster:bands": [dict(raster_band)],
            }
            for i, b in enumerate(BANDS, start=1)
        }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": STAC_EXTENSIONS,
        "id": scene.name,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "properties": {
            "datetime": scene.datetime,
            "platform": scene.platform,
            "proj:epsg": _epsg(scene.crs),
            "proj:transform": list(scene.transform),
            "proj:shape": [scene.height, scene.width],
        },
        "links": [],
        "assets": assets,
    }


def write_metadata(coll: Collection, scenes: list[SceneSpec] | None = None, *,
                   root: Path | None = None, paths: list[Path] | None = None) -> None:
    """Write ``scenes.json`` and both STAC Item files for ``coll`` (or for ``scenes`` of it)."""
    scenes = list(coll.scenes if scenes is None else scenes)
    root = root or coll.root
    paths = paths or [coll.path(s) for s in scenes]
    records = [
        {
            "path": str(p), "name": s.name, "datetime": s.datetime, "crs": s.crs,
            "tags": {"bench": coll.name, "platform": s.platform},
        }
        for s, p in zip(scenes, paths, strict=True)
    ]
    write_json(root / "scenes.json", records)
    for multiband, target in ((True, "items-multiband.json"), (False, "items-perband.json")):
        feats = [_stac_item(s, str(p), multiband, {b: str(coll.band_path(s, b)) for b in BANDS})
                 for s, p in zip(scenes, paths, strict=True)]
        write_json(root / target, {"type": "FeatureCollection", "features": feats})


def _write_band(args: tuple[str, int, str]) -> str:
    """One band of a multi-band COG as a single-band COG: same pixels, overviews, blocks, compression."""
    import rasterio.shutil

    src, band, dst = args
    with rasterio.open(src) as ds:
        block = ds.block_shapes[0][0]
    tmp = Path(dst).with_suffix(".tmp.tif")
    rasterio.shutil.copy(f"vrt://{src}?bands={band}", tmp, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=block,
                         OVERVIEWS="FORCE_USE_EXISTING")
    os.replace(tmp, dst)
    return dst


def ensure_band_files(coll: Collection, workers: int = 2, quiet: bool = False) -> None:
    """Write the single-band COGs of every scene (stackstac's assets) unless they exist."""
    if coll.bands_marker.exists():
        return
    (coll.root / "bands").mkdir(parents=True, exist_ok=True)
    todo = [(str(coll.path(s)), i, str(coll.band_path(s, b))) for s in coll.scenes
            for i, b in enumerate(BANDS, start=1) if not coll.band_path(s, b).exists()]
    if todo and not quiet:
        print(f"writing {len(todo)} single-band COGs of collection {coll.name!r} …", flush=True)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_write_band, todo))
    write_json(coll.bands_marker, {"files": len(coll.scenes) * len(BANDS)})


def ensure(coll: Collection, workers: int = 2, quiet: bool = False) -> Collection:
    """Generate ``coll`` unless it is already complete on disk; return it."""
    if coll.marker.exists():
        if not coll.bands_marker.exists():  # collections made before the single-band files
            ensure_band_files(coll, workers, quiet)
            write_metadata(coll)
        return coll
    (coll.root / "scenes").mkdir(parents=True, exist_ok=True)
    todo = [(str(coll.path(s)), asdict(s)) for s in coll.scenes if not coll.path(s).exists()]
    if todo and not quiet:
        print(f"generating {len(todo)} scenes of collection {coll.name!r} in {coll.root} …", flush=True)
    if todo:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for i, _ in enumerate(pool.map(_write_scene, todo), start=1):
                if not quiet and (i % 10 == 0 or i == len(todo)):
                    print(f"  {i}/{len(todo)}", flush=True)
    ensure_band_files(coll, workers, quiet)
    write_metadata(coll)
    write_json(coll.marker, {
        "name": coll.name, "key": coll.key, "notes": coll.notes,
        "scenes": [asdict(s) for s in coll.scenes],
    })
    return coll


def load_scenes(coll: Collection) -> list[dict[str, Any]]:
    """The scenes to index, as written by ``write_metadata``."""
    return read_json(coll.scenes_json)


def graph_collection(records: int = 10_000) -> tuple[Collection, dict[str, Path]]:
    """``records`` records of the main collection's four Sentinel-2-like tiles, one a day per tile.

    Nothing of it is ever computed: each record's file is a symbolic link to a file of the main
    collection with the same footprint (``ensure_links`` makes them), so that indexing can read a
    header. Returns the collection and, per scene name, the file its link points to.
    """
    main = main_collection()
    templates: dict[str, SceneSpec] = {}
    for s in main.scenes:
        if s.platform == "S2":
            templates.setdefault(s.name.split("_")[1], s)
    start = datetime(2017, 1, 1, 10, 30, 0, tzinfo=UTC)
    scenes: list[SceneSpec] = []
    targets: dict[str, Path] = {}
    for d in range(-(-records // len(templates))):
        for t, (tile, tpl) in enumerate(sorted(templates.items())):
            when = start + timedelta(days=d, minutes=10 * (t // 2), seconds=5 * (t % 2))
            spec = SceneSpec(
                name=f"G_{tile}_{when:%Y%m%dT%H%M%S}", crs=tpl.crs, transform=tpl.transform,
                width=tpl.width, height=tpl.height, datetime=_iso(when), seed=tpl.seed,
                nodata_fraction=tpl.nodata_fraction, platform="S2",
            )
            scenes.append(spec)
            targets[spec.name] = main.path(tpl)
    scenes = scenes[:records]
    return Collection(f"graph{records}-{main.key[:6]}", tuple(scenes), notes={"records": records}), targets


def ensure_links(coll: Collection, targets: dict[str, Path]) -> Collection:
    """Make ``coll``'s files as symbolic links to ``targets`` and write its metadata (once)."""
    if coll.marker.exists():
        return coll
    (coll.root / "scenes").mkdir(parents=True, exist_ok=True)
    for s in coll.scenes:
        link = coll.path(s)
        if not link.is_symlink():
            link.symlink_to(targets[s.name])
    write_metadata(coll)
    write_json(coll.marker, {"name": coll.name, "key": coll.key, "notes": coll.notes})
    return coll
