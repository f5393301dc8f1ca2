"""Catalogue benchmark: bulk indexing and list/find queries at scale, on PostGIS and SQLite.

Run from the repository root:

    python bench/catalog.py --backend both --fresh      # 1,000,000 datasets on PostGIS, 100,000 on SQLite
    python bench/catalog.py --backend postgis           # reuse the filled database: queries only
    python bench/catalog.py --backend sqlite --datasets 20000 --records 2000 --fresh   # a quick look

PostGIS: the database of ``--url`` (default: ``$GEOCUBE_BENCH_POSTGIS_URL``, else ``geocube_bench`` on the
local server; created from the ``geocube_template`` database when missing, dropped and recreated with
``--fresh``). SQLite: the file ``bench/_data/catalog-bench.db`` (deleted with ``--fresh``). Without
``--fresh`` a database that already holds exactly the requested catalogue is reused (queries only: the
insert rate is then not measured); an empty one is filled; any other content is refused. Results are
also written to ``bench/_data/results/catalog-<backend>.json``.

The synthetic catalogue (fixed seed; no file is ever opened): records are acquisitions of 4
constellations — Sentinel-2-like tiles of 109.8 km at 10 m, Landsat-like 96 km at 30 m, SPOT-like
60 km at 6 m, Pléiades-like 12 km at 2 m — on tile grids of the UTM zones (EPSG:326xx) that cover a
lon/lat box of Europe's size (-10..40°E, 36..70°N; zones 29 to 37), dated over 5 years (2019-2023) and
ingested in date order. Revisits of a tile share its footprint, so the record AOIs (the tile footprint in
lon/lat) are de-duplicated as in a real catalogue. Tags: ``constellation``, ``cloud_cover`` (4 buckets)
and ``processing_level`` (L1/L2/L3). Each record has up to 10 datasets, one per instance (B02, B03, B04,
B08, NDVI, B11, B12, SCL, NDVI "v2", NDWI), each its own file of one band: the ``PreparedDataset`` that
indexing the file would give — UTM crs, transform, size, overviews, footprint in the file CRS and, in
lon/lat, densified to ``DENSIFY_POINTS`` points per edge. Fewer records than the reference 100,000 shrink
the box around its centre so that the density (and so the rows each query returns) stays the same.

Insert: ``create_records`` then ``add_datasets`` in batches of ``--batch`` datasets (one transaction
each); records/s and datasets/s count the time spent in those calls, "total" is the wall time of the
whole fill, synthesis and the statistics refresh included (``VACUUM ANALYZE`` on PostgreSQL, what
autovacuum does soon after a bulk load; ``ANALYZE`` on SQLite).

Queries: for each query type, ``--queries`` timed queries (plus ``--warmup`` untimed ones first) with
random AOIs (boxes of a few km to a few hundred km, anywhere in the box), time windows and tag values;
a query's latency is the wall time of the catalogue call (entities built). A type reads "find 2 inst ·
AOI 50-300 km · 3-24 mo · S2 + cloud": ``find_datasets`` of 2 instances (NDVI master and v2; 1 inst:
B04) or ``list_records``, an AOI box of 50 to 300 km a side, a time window of 3 to 24 months, filters
on the tags named. ``find_datasets`` is called as ``get_cube_plan`` calls it, without the footprints
(``footprints=False``; ``--footprints`` times it with them, as a script reading them would). Before
timing, the process's long-lived objects (modules, the connection) are frozen out of Python's garbage
collector (``gc.freeze()``), as a long-running service does: a full collection would otherwise walk them
all and charge 50-200 ms to whichever query triggered it. Targets: bulk insert ≥ 5,000 datasets/s;
queries returning ≤ 1,000 rows: p50 < 25 ms and p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import gc as pygc
import json
import math
import os
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from common import DATA_DIR, render_table
from pyproj import Transformer

import geocube_dask as gd
from geocube_dask.catalog.db.schema import metadata
from geocube_dask.catalog.ingest.footprints import DENSIFY_POINTS
from geocube_dask.catalog.ingest.requests import PreparedDataset
from geocube_dask.entities import DFormat, Instance, Record

SQLITE_PATH = DATA_DIR / "catalog-bench.db"
RESULTS_DIR = DATA_DIR / "results"
DEFAULT_PG_URL = "postgresql+psycopg2://geocube:geocube@127.0.0.1:5432/geocube_bench"
PG_TEMPLATE = "geocube_template"

SEED = 20240105
REFERENCE_RECORDS = 100_000  # the density the query mixes are tuned for
BOX = (-10.0, 36.0, 40.0, 70.0)  # lon/lat of the reference catalogue
START = datetime(2019, 1, 1, tzinfo=UTC)
DAYS = (datetime(2024, 1, 1, tzinfo=UTC) - START).days

DEFAULTS = {"postgis": (1_000_000, 100_000), "sqlite": (100_000, 10_000)}  # (datasets, records)
TARGET_RATE = 5_000.0  # datasets/s
TARGET_P50 = 0.025  # s
TARGET_P99 = 0.100  # s
TARGET_ROWS = 1_000


@dataclass(frozen=True)
class Constellation:
    """A kind of acquisition: square tiles of ``tile_m`` metres, ``step_m`` apart, pixels of ``res_m``."""

    name: str
    weight: float
    tile_m: float
    step_m: float
    res_m: float

    @property
    def size(self) -> int:
        """Tile width and height in pixels."""
        return round(self.tile_m / self.res_m)

    @property
    def overviews(self) -> tuple[tuple[int, int], ...]:
        """Overview sizes as GDAL makes them (halving, rounding up) down to 256 px or less."""
        out = []
        n = self.size
        while n > 256:
            n = (n + 1) // 2
            out.append((n, n))
        return tuple(out)


CONSTELLATIONS = (
    Constellation("SENTINEL2", 0.45, 109_800.0, 100_000.0, 10.0),
    Constellation("LANDSAT", 0.20, 96_000.0, 90_000.0, 30.0),
    Constellation("SPOT", 0.20, 60_000.0, 55_000.0, 6.0),
    Constellation("PLEIADES", 0.15, 12_000.0, 10_000.0, 2.0),
)
CLOUD_COVER = (("0-10", 0.35), ("10-30", 0.25), ("30-60", 0.2), ("60-100", 0.2))
LEVELS = (("L1", 0.45), ("L2", 0.45), ("L3", 0.10))

# Variables: name → (variable dformat, file dformat, real_min, real_max).
REFLECTANCE = (("uint16", 0, 0, 10000), DFormat("uint16", 0.0, 0.0, 10000.0), 0.0, 10000.0)
INDEX = (("float32", "nan", -1, 1), DFormat("int16", -10001.0, -10000.0, 10000.0), -1.0, 1.0)
VARIABLES: dict[str, tuple[tuple[Any, ...], DFormat, float, float]] = {
    "B02": REFLECTANCE, "B03": REFLECTANCE, "B04": REFLECTANCE, "B08": REFLECTANCE,
    "B11": REFLECTANCE, "B12": REFLECTANCE,
    "SCL": (("uint8", 255, 0, 11), DFormat("uint8", 255.0, 0.0, 11.0), 0.0, 11.0),
    "NDVI": INDEX, "NDWI": INDEX,
}
# Dataset k of a record is of instance k (a record with fewer datasets has the first ones).
INSTANCES = (
    ("B02", "master"), ("B03", "master"), ("B04", "master"), ("B08", "master"), ("NDVI", "master"),
    ("B11", "master"), ("B12", "master"), ("SCL", "master"), ("NDVI", "v2"), ("NDWI", "master"),
)
BENCH_PREFIX = "bench/"  # variable names are prefixed, so a catalogue of something else is never mistaken


# --- the synthetic catalogue --------------------------------------------------------------------------


def data_box(records: int) -> tuple[float, float, float, float]:
    """The lon/lat box of a catalogue of ``records`` records: BOX, shrunk around its centre below the
    reference size so that the density of records stays that of the reference catalogue."""
    scale = min(1.0, math.sqrt(records / REFERENCE_RECORDS))
    west, south, east, north = BOX
    cx, cy = (west + east) / 2, (south + north) / 2
    hw, hh = (east - west) / 2 * scale, (north - south) / 2 * scale
    return cx - hw, cy - hh, cx + hw, cy + hh


def random_lonlat(rng: np.random.Generator, n: int, box: tuple[float, float, float, float]) -> np.ndarray:
    """``n`` points uniform in area over a lon/lat box, as an (n, 2) array."""
    west, south, east, north = box
    lon = rng.uniform(west, east, n)
    s0, s1 = math.sin(math.radians(south)), math.sin(math.radians(north))
    lat = np.degrees(np.arcsin(rng.uniform(s0, s1, n)))
    return np.column_stack([lon, lat])


def _ring_fractions(per_edge: int) -> tuple[np.ndarray, np.ndarray]:
    """Fractions (x right, y down) of a square's ring, ``per_edge`` points per edge, corners once each."""
    k = np.linspace(0.0, 1.0, per_edge)[:-1]
    fx = np.concatenate([k, np.ones_like(k), 1.0 - k, np.zeros_like(k)])
    fy = np.concatenate([np.zeros_like(k), k, np.ones_like(k), 1.0 - k])
    return fx, fy


@dataclass
class Catalogue:
    """The records of the synthetic catalogue (arrays of ``n`` entries) and their dataset counts."""

    names: list[str]
    datetimes: list[datetime]
    tags: list[dict[str, str]]
    constellation: np.ndarray  # index into CONSTELLATIONS
    epsg: np.ndarray
    ulx: np.ndarray  # upper-left corner in the UTM zone
    uly: np.ndarray
    footprint_wkt: list[str]  # the tile in its UTM zone (4 corners)
    footprint_4326: np.ndarray  # shapely polygons, densified
    footprint_4326_wkt: list[str]
    per_record: np.ndarray  # datasets of each record

    @property
    def records(self) -> int:
        """Number of records."""
        return len(self.names)

    def record_items(self, start: int, stop: int) -> list[dict[str, Any]]:
        """Arguments of create_records for records ``start:stop``."""
        return [
            {"name": self.names[i], "datetime": self.datetimes[i], "tags": self.tags[i], "aoi": self.footprint_4326[i]}
            for i in range(start, stop)
        ]

    def dataset_items(
        self, start: int, records: Sequence[Record], instances: Sequence[Instance]
    ) -> list[tuple[str, str, PreparedDataset]]:
        """add_datasets items for the records from ``start`` on, created as ``records``."""
        items = []
        for i, rec in zip(range(start, start + len(records)), records, strict=True):
            c = CONSTELLATIONS[self.constellation[i]]
            size = c.size
            transform = (c.res_m, 0.0, float(self.ulx[i]), 0.0, -c.res_m, float(self.uly[i]))
            crs = f"EPSG:{self.epsg[i]}"
            day = self.datetimes[i].strftime("%Y/%m/%d")
            for k in range(int(self.per_record[i])):
                var, inst = INSTANCES[k]
                _, dformat, real_min, real_max = VARIABLES[var]
                prepared = PreparedDataset(
                    uri=f"s3://bench-archive/{c.name}/{day}/{self.names[i]}/{var}_{inst}.tif", subdir="",
                    bands=(1,), dformat=dformat, real_min=real_min, real_max=real_max, exponent=1.0, crs=crs,
                    transform=transform, width=size, height=size, overviews=c.overviews,
                    footprint_wkt=self.footprint_wkt[i], footprint_4326_wkt=self.footprint_4326_wkt[i],
                )
                items.append((rec.id, instances[k].id, prepared))
        return items


def synthesize(records: int, datasets: int, seed: int = SEED) -> Catalogue:
    """The synthetic catalogue of ``records`` records and ``datasets`` datasets (see the module docstring)."""
    if records < 1 or datasets < records or datasets > records * len(INSTANCES):
        raise SystemExit(
            f"--datasets must be between --records and {len(INSTANCES)} × --records "
            f"(one dataset per instance and record), not {datasets} for {records} records"
        )
    rng = np.random.default_rng(seed)
    weights = np.array([c.weight for c in CONSTELLATIONS])
    const = rng.choice(len(CONSTELLATIONS), size=records, p=weights / weights.sum())
    centres = random_lonlat(rng, records, data_box(records))
    zone = np.clip(np.floor((centres[:, 0] + 180.0) / 6.0).astype(int) + 1, 1, 60)
    epsg = 32600 + zone
    seconds = rng.integers(0, DAYS, records) * 86400 + rng.integers(9 * 3600, 12 * 3600, records)
    clouds = rng.choice(len(CLOUD_COVER), size=records, p=[w for _, w in CLOUD_COVER])
    levels = rng.choice(len(LEVELS), size=records, p=[w for _, w in LEVELS])

    tile = np.array([c.tile_m for c in CONSTELLATIONS])[const]
    step = np.array([c.step_m for c in CONSTELLATIONS])[const]
    ulx, uly = np.empty(records), np.empty(records)
    fx, fy = _ring_fractions(DENSIFY_POINTS)
    rings = np.empty((records, fx.size, 2))
    for code in np.unique(epsg):
        sel = epsg == code
        to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{code}", always_xy=True)
        to_lonlat = Transformer.from_crs(f"EPSG:{code}", "EPSG:4326", always_xy=True)
        x, y = to_utm.transform(centres[sel, 0], centres[sel, 1])
        # snap to the constellation's tile grid: revisits of a tile share its footprint
        left = np.floor(np.asarray(x) / step[sel]) * step[sel]
        top = np.floor(np.asarray(y) / step[sel]) * step[sel] + tile[sel]
        ulx[sel], uly[sel] = left, top
        xs = left[:, None] + fx[None, :] * tile[sel, None]
        ys = top[:, None] - fy[None, :] * tile[sel, None]
        lon, lat = to_lonlat.transform(xs.ravel(), ys.ravel())
        rings[sel, :, 0] = np.asarray(lon).reshape(xs.shape)
        rings[sel, :, 1] = np.asarray(lat).reshape(xs.shape)
    polygons = shapely.polygons(rings)
    wkt_4326 = shapely.to_wkt(polygons, rounding_precision=-1).tolist()
    native = shapely.box(ulx, uly - tile, ulx + tile, uly, ccw=False)
    wkt_native = shapely.to_wkt(native, rounding_precision=-1).tolist()

    order = np.argsort(seconds, kind="stable")  # ingested in date order
    names, datetimes, tags = [], [], []
    short = {"SENTINEL2": "S2", "LANDSAT": "LS", "SPOT": "SP", "PLEIADES": "PHR"}
    for n, i in enumerate(order):
        c = CONSTELLATIONS[const[i]]
        when = START + timedelta(seconds=int(seconds[i]))
        col, row = int(ulx[i] // c.step_m), int(uly[i] // c.step_m)
        names.append(f"{short[c.name]}_{zone[i]}_{col}_{row}_{when:%Y%m%dT%H%M%S}_{n:07d}")
        datetimes.append(when)
        tags.append({
            "constellation": c.name,
            "cloud_cover": CLOUD_COVER[clouds[i]][0],
            "processing_level": LEVELS[levels[i]][0],
        })
    per_record = np.full(records, datasets // records)
    per_record[: datasets % records] += 1
    return Catalogue(
        names=names, datetimes=datetimes, tags=tags, constellation=const[order], epsg=epsg[order],
        ulx=ulx[order], uly=uly[order], footprint_wkt=[wkt_native[i] for i in order],
        footprint_4326=polygons[order], footprint_4326_wkt=[wkt_4326[i] for i in order], per_record=per_record,
    )


# --- databases ------------------------------------------------------------------------------------------


def prepare_postgis(url: str, fresh: bool) -> str:
    """Create the benchmark database (from the PostGIS template) if missing, or recreate it if ``fresh``."""
    parsed = sa.make_url(url)
    name = parsed.database
    if not name or name.startswith("geocube_test") or name in ("postgres", PG_TEMPLATE):
        raise SystemExit(f"refusing to use database {name!r} for the benchmark: give a dedicated one (--url)")
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if fresh:
                try:  # a plain DROP waits for autovacuum workers, which FORCE may not terminate
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
                except sa.exc.OperationalError:  # other sessions are connected
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists is None:
                conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE {PG_TEMPLATE}'))
    finally:
        admin.dispose()
    return parsed.render_as_string(hide_password=False)


def prepare_sqlite(path: Path, fresh: bool) -> str:
    """The URL of the benchmark's SQLite file (deleted first if ``fresh``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def counts(gc: Any) -> tuple[int, int]:
    """(records, datasets) in the catalogue."""
    with gc._engine.connect() as conn:
        recs = conn.execute(sa.text("SELECT count(*) FROM records")).scalar_one()
        dss = conn.execute(sa.text("SELECT count(*) FROM datasets")).scalar_one()
    return int(recs), int(dss)


def ensure_instances(gc: Any) -> list[Instance]:
    """The benchmark's instances, in INSTANCES order (created when missing)."""
    out = []
    for var, inst in INSTANCES:
        name = BENCH_PREFIX + var
        try:
            variable = gc.get_variable(name)
        except gd.NotFound:
            variable = gc.create_variable(name, VARIABLES[var][0], [var.lower()])
        try:
            out.append(gc.get_instance(variable, inst))
        except gd.NotFound:
            out.append(gc.instantiate(variable, inst))
    return out


def analyze(gc: Any) -> None:
    """Refresh planner statistics after the bulk load: ``VACUUM ANALYZE`` of the catalogue tables on
    PostgreSQL (what autovacuum does soon after large inserts), ``ANALYZE`` on SQLite."""
    if gc.backend == "postgresql":
        tables = ", ".join(t.name for t in metadata.sorted_tables)
        with gc._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f"VACUUM (ANALYZE) {tables}"))
        return
    with gc._engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        conn.commit()


# --- insert ---------------------------------------------------------------------------------------------


@dataclass
class InsertResult:
    """Timings of a fill (seconds)."""

    records: int
    datasets: int
    records_s: float
    datasets_s: float
    synth_s: float
    analyze_s: float
    total_s: float


def fill(gc: Any, cat: Catalogue, instances: Sequence[Instance], batch: int, progress: bool) -> InsertResult:
    """Insert the synthetic catalogue: create_records then add_datasets, batch by batch."""
    t0 = time.perf_counter()
    per = max(1, batch // int(cat.per_record.max()))  # records per batch
    t_rec = t_ds = 0.0
    done = 0
    for start in range(0, cat.records, per):
        stop = min(start + per, cat.records)
        recs_in = cat.record_items(start, stop)
        t = time.perf_counter()
        recs = gc.create_records(recs_in)
        t_rec += time.perf_counter() - t
        items = cat.dataset_items(start, recs, instances)
        t = time.perf_counter()
        gc.add_datasets(items)
        t_ds += time.perf_counter() - t
        done += len(items)
        if progress:
            elapsed = time.perf_counter() - t0
            print(
                f"  {stop:,}/{cat.records:,} records, {done:,} datasets  ({elapsed:.0f} s; "
                f"{stop / t_rec:,.0f} records/s, {done / t_ds:,.0f} datasets/s)",
                file=sys.stderr, flush=True,
            )
    t = time.perf_counter()
    analyze(gc)
    t_an = time.perf_counter() - t
    total = time.perf_counter() - t0
    return InsertResult(cat.records, done, t_rec, t_ds, total - t_rec - t_ds - t_an, t_an, total)


# --- queries --------------------------------------------------------------------------------------------


def aoi_box(lon: float, lat: float, side_km: float) -> shapely.Geometry:
    """A lon/lat box of about ``side_km`` × ``side_km`` centred on (lon, lat)."""
    dlat = side_km / 111.32 / 2
    dlon = side_km / (111.32 * math.cos(math.radians(lat))) / 2
    return shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)


def window(rng: np.random.Generator, days: tuple[float, float]) -> tuple[datetime, datetime]:
    """A random time window of ``days[0]``..``days[1]`` days inside the catalogue's 5 years."""
    length = timedelta(days=float(rng.uniform(*days)))
    span = (timedelta(days=DAYS) - length).total_seconds()
    start = START + timedelta(seconds=float(rng.uniform(0.0, span)))
    return start, start + length


def pick(rng: np.random.Generator, values: Sequence[tuple[str, float]]) -> str:
    """One of ``(value, weight)`` pairs, at random by weight."""
    w = np.array([v[1] for v in values])
    return values[int(rng.choice(len(values), p=w / w.sum()))][0]


TagMaker = Callable[[np.random.Generator], dict[str, str]]
MAIN = tuple((c.name, c.weight) for c in CONSTELLATIONS[:3])  # constellations with tiles ≥ 60 km


@dataclass(frozen=True)
class QueryType:
    """A family of queries: which call, AOI side range (km, None: no AOI), window length range (days), tags."""

    label: str
    call: str  # "find" (find_datasets) or "list" (list_records)
    side_km: tuple[float, float] | None
    days: tuple[float, float]
    tags: TagMaker
    instances: tuple[int, ...] = (2,)  # indexes into INSTANCES (find only)


QUERY_TYPES = (
    QueryType(
        "find 1 inst · AOI 1-20 km · 6-36 mo · constellation", "find", (1.0, 20.0), (182.0, 1095.0),
        lambda rng: {"constellation": pick(rng, MAIN)},
    ),
    QueryType(
        "find 1 inst · AOI 100-400 km · 6-36 mo · level", "find", (100.0, 400.0), (182.0, 1095.0),
        lambda rng: {"processing_level": "L2"},
    ),
    QueryType(
        "find 2 inst · AOI 50-300 km · 3-24 mo · S2 + cloud", "find", (50.0, 300.0), (91.0, 730.0),
        lambda rng: {"constellation": "SENTINEL2", "cloud_cover": pick(rng, CLOUD_COVER[:2])},
        instances=(4, 8),
    ),
    QueryType(
        "find 2 inst · AOI 200-380 km · 1-3 y · level", "find", (200.0, 380.0), (365.0, 1095.0),
        lambda rng: {"processing_level": "L2"}, instances=(4, 8),
    ),
    QueryType(
        "list · AOI 1-20 km · 1-5 y · cloud", "list", (1.0, 20.0), (365.0, 1826.0),
        lambda rng: {"cloud_cover": "0-10"},
    ),
    QueryType(
        "list · AOI 200-600 km · 6-24 mo · S2 + level", "list", (200.0, 600.0), (182.0, 730.0),
        lambda rng: {"constellation": "SENTINEL2", "processing_level": "L2"},
    ),
    QueryType(
        "list · AOI 300-550 km · 1-3 y · level", "list", (300.0, 550.0), (365.0, 1095.0),
        lambda rng: {"processing_level": "L2"},
    ),
    QueryType(
        "list · no AOI · 1-10 d · constellation", "list", None, (1.0, 10.0),
        lambda rng: {"constellation": pick(rng, tuple((c.name, c.weight) for c in CONSTELLATIONS))},
    ),
)


@dataclass
class QueryResult:
    """Rows and latencies (seconds) of the timed queries of one type."""

    label: str
    rows: list[int]
    seconds: list[float]

    def quantile(self, q: float) -> float:
        """Latency quantile (nearest-rank)."""
        return float(np.quantile(np.array(self.seconds), q, method="inverted_cdf"))

    @property
    def passed(self) -> bool:
        """p50 and p99 under their targets."""
        return self.quantile(0.5) < TARGET_P50 and self.quantile(0.99) < TARGET_P99


def query_args(qt: QueryType, rng: np.random.Generator, box: tuple[float, float, float, float]) -> dict[str, Any]:
    """Random arguments for one query of type ``qt``."""
    args: dict[str, Any] = {"time": window(rng, qt.days), "tags": qt.tags(rng)}
    if qt.side_km is not None:
        lon, lat = random_lonlat(rng, 1, box)[0]
        args["aoi"] = aoi_box(float(lon), float(lat), float(rng.uniform(*qt.side_km)))
    return args


def run_queries(
    gc: Any, instances: Sequence[Instance], records: int, n: int, warmup: int, footprints: bool = False,
    seed: int = SEED,
) -> list[QueryResult]:
    """Time ``n`` random queries of each type (after ``warmup`` untimed ones); find_datasets as a cube
    plan calls it (no footprints) unless ``footprints``."""
    box = data_box(records)
    results = []
    for qt in QUERY_TYPES:
        rng = np.random.default_rng([seed, zlib.crc32(qt.label.encode())])  # a type's queries never change
        insts = [instances[i] for i in qt.instances]
        rows, seconds = [], []
        for j in range(warmup + n):
            args = query_args(qt, rng, box)
            t = time.perf_counter()
            if qt.call == "find":
                found = gc.find_datasets(insts, **args, footprints=footprints)
            else:
                found = gc.list_records(**args)
            elapsed = time.perf_counter() - t
            if j >= warmup:
                rows.append(len(found))
                seconds.append(elapsed)
        results.append(QueryResult(qt.label, rows, seconds))
    return results


# --- report ---------------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    """Milliseconds, one decimal."""
    return f"{seconds * 1000:.1f}"


def report(
    backend: str, url: str, insert: InsertResult | None, have: tuple[int, int], results: list[QueryResult],
    footprints: bool = False,
) -> str:
    """The table of one backend."""
    lines = [f"== {backend}: {have[0]:,} records, {have[1]:,} datasets  ({url})"]
    how = "with the footprints (--footprints)" if footprints else "as get_cube_plan calls it (no footprints)"
    lines.append(f"find_datasets {how}")
    if insert is None:
        lines.append("insert: not measured (existing catalogue reused; --fresh to refill)")
    else:
        rate = insert.datasets / insert.datasets_s
        verdict = "PASS" if rate >= TARGET_RATE else "MISS"
        lines.append(render_table(
            ["insert", "records/s", "datasets/s", "records", "datasets", "synthesis", "analyze", "total",
             f"target ≥ {TARGET_RATE:,.0f} ds/s"],
            [["create_records + add_datasets", f"{insert.records / insert.records_s:,.0f}", f"{rate:,.0f}",
              f"{insert.records_s:.1f} s", f"{insert.datasets_s:.1f} s", f"{insert.synth_s:.1f} s",
              f"{insert.analyze_s:.1f} s", f"{insert.total_s:.1f} s", verdict]],
            "lrrrrrrrr",
        ))
    lines.append("")
    rows = []
    for r in results:
        big = max(r.rows) > TARGET_ROWS
        verdict = ("PASS" if r.passed else "MISS") + (" (>1000 rows)" if big else "")
        rows.append([
            r.label, str(len(r.seconds)), str(min(r.rows)), f"{np.median(r.rows):.0f}", str(max(r.rows)),
            ms(r.quantile(0.5)), ms(r.quantile(0.9)), ms(r.quantile(0.99)), ms(max(r.seconds)), verdict,
        ])
    lines.append(render_table(
        ["query", "n", "rows min", "med", "max", "p50 ms", "p90 ms", "p99 ms", "max ms",
         f"target p50<{TARGET_P50 * 1000:.0f} p99<{TARGET_P99 * 1000:.0f}"],
        rows, "lrrrrrrrrl",
    ))
    return "\n".join(lines)


def run_backend(backend: str, args: argparse.Namespace) -> str:
    """Fill (or reuse) the catalogue of one backend, run the queries, return its table."""
    datasets, records = DEFAULTS[backend]
    datasets = args.datasets or datasets
    records = args.records or records
    url = prepare_postgis(args.url, args.fresh) if backend == "postgis" else prepare_sqlite(SQLITE_PATH, args.fresh)
    gc = gd.connect(url)
    shown = gc.url
    try:
        have = counts(gc)
        insert = None
        if have == (0, 0):
            print(f"[{backend}] synthesizing {records:,} records, {datasets:,} datasets", file=sys.stderr, flush=True)
            t = time.perf_counter()
            cat = synthesize(records, datasets)
            synth = time.perf_counter() - t
            instances = ensure_instances(gc)
            print(f"[{backend}] inserting (batches of {args.batch:,} datasets)", file=sys.stderr, flush=True)
            insert = fill(gc, cat, instances, args.batch, progress=True)
            insert.synth_s += synth
            insert.total_s += synth
            del cat  # a client does not hold the catalogue it indexed: no GC pauses over it while querying
            pygc.collect()
            have = counts(gc)
        elif have != (records, datasets):
            raise SystemExit(
                f"{shown} holds {have[0]:,} records and {have[1]:,} datasets, not the {records:,} and {datasets:,} "
                "asked for: pass --fresh to rebuild it"
            )
        instances = ensure_instances(gc)
        print(f"[{backend}] querying", file=sys.stderr, flush=True)
        # The process's long-lived objects (modules, the connection) are frozen out of the collector, as a
        # long-running service does: a full collection walks them all (about 170,000, 50-200 ms here) and
        # would be charged to whichever query triggered it.
        pygc.collect()
        pygc.freeze()
        results = run_queries(gc, instances, records, args.queries, args.warmup, args.footprints)
    finally:
        gc.close()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = {
        "backend": backend, "records": have[0], "datasets": have[1],
        "insert": None if insert is None else vars(insert),
        "footprints": args.footprints,
        "queries": [vars(r) for r in results],
    }
    (RESULTS_DIR / f"catalog-{backend}.json").write_text(json.dumps(out, indent=1))
    return report(backend, shown, insert, have, results, args.footprints)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgis", "sqlite", "both"), default="both")
    parser.add_argument("--datasets", type=int, default=None,
                        help="datasets to index (default: 1,000,000 on PostGIS, 100,000 on SQLite)")
    parser.add_argument("--records", type=int, default=None,
                        help="records to create (default: 100,000 on PostGIS, 10,000 on SQLite)")
    parser.add_argument("--url", default=os.environ.get("GEOCUBE_BENCH_POSTGIS_URL", DEFAULT_PG_URL),
                        help="PostGIS database of the benchmark (created from geocube_template if missing)")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the benchmark database first")
    parser.add_argument("--batch", type=int, default=50_000, help="datasets per add_datasets call")
    parser.add_argument("--queries", type=int, default=250, help="timed queries per query type")
    parser.add_argument("--warmup", type=int, default=20, help="untimed queries per type before timing")
    parser.add_argument("--footprints", action="store_true",
                        help="find_datasets with the footprints (as a script reading them would), not as a cube plan")
    args = parser.parse_args(argv)
    backends = ("postgis", "sqlite") if args.backend == "both" else (args.backend,)
    tables = [run_backend(b, args) for b in backends]
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()

