"""Run one benchmark job with one tool in this process and write its result as JSON.

    <python> bench/run_tool.py JOB.json RESULT.json

The harness starts one process per (job, tool) so that the peak RSS reported is that tool's own.
Peers (odc-stac, stackstac) run with ``bench/.venv-peers/bin/python``; geocube_dask and the floor with
the main interpreter. Imports of each tool happen inside its functions: each interpreter only has its
own tools.

Job kinds: ``cube`` (load an output grid, best of N), ``timeseries`` (one point through every date),
``graph`` (build the lazy cube only) and ``ooc`` (export a large cube to zarr on a LocalCluster).
Every timed repetition includes building the lazy object and computing it, the way a user pays.
"""

from __future__ import annotations

import contextlib
import gc as garbage
import math
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BANDS,
    CHUNK,
    EXPORT_DONE,
    FLOOR,
    FLOOR_OVR,
    GEOCUBE,
    GEOCUBE_LOAD,
    NODATA,
    ODC,
    ODC_BBOX,
    STACKSTAC,
    STACKSTAC_BBOX,
    THREADS,
    Grid,
    check_coords,
    peak_rss_bytes,
    read_json,
    reset_peak_rss,
    write_json,
)

Job = dict[str, Any]

# ---------------------------------------------------------------------------------------------------
# Shared plumbing


@contextlib.contextmanager
def _threads() -> Iterator[None]:
    """Dask's threaded scheduler on a fresh pool of ``THREADS`` threads.

    A new pool per run means that nothing a tool keeps per thread (open datasets…) outlives the run:
    every repetition starts with only the OS page cache warm, whatever the tool.
    """
    import dask

    pool = ThreadPoolExecutor(THREADS)
    try:
        with dask.config.set(scheduler="threads", pool=pool, num_workers=THREADS):
            yield
    finally:
        pool.shutdown(wait=True)


def _geocube_cold() -> None:
    """Forget geocube_dask's process-wide resampling set-ups, so that each run computes its own.

    The engine computes, per (output chunk, source grid), where output pixels fall in the source and
    reuses that for every date of a request; kept across requests, it would make repetitions of one
    request faster than any new request.
    """
    from geocube_dask.graph import clear_caches

    clear_caches()


def _timed_run(build: Callable[[], Any], compute: Callable[[Any], Any]) -> tuple[float, Any]:
    """One build + compute: (seconds, output)."""
    t0 = time.perf_counter()
    out = compute(build())
    return time.perf_counter() - t0, out


def _best_of(job: Job, build: Callable[[], Any], compute: Callable[[Any], Any]) -> tuple[dict[str, Any], Any]:
    """Build then compute ``job["repeat"]`` times; return timings (seconds), peak RSS and the last output.

    ``request_rss`` is, per run, the resident memory the run added at its peak: the process's peak RSS
    is reset before each run (Linux ``clear_refs``) and the RSS at its start subtracted. The first run
    also pays what a process pays once (loading compiled kernels, GDAL's drivers).
    """
    totals: list[float] = []
    builds: list[float] = []
    added: list[int] = []
    out = None
    for _ in range(int(job.get("repeat", 3))):
        out = None
        garbage.collect()
        if job["tool"] in (GEOCUBE, GEOCUBE_LOAD):
            _geocube_cold()
        start_rss = reset_peak_rss()
        t0 = time.perf_counter()
        lazy = build()
        t1 = time.perf_counter()
        out = compute(lazy)
        t2 = time.perf_counter()
        added.append(peak_rss_bytes() - start_rss)
        builds.append(t1 - t0)
        totals.append(t2 - t0)
        del lazy
    return {"times": totals, "build_times": builds, "time": min(totals), "peak_rss": peak_rss_bytes(),
            "request_rss": added}, out


def _save_cube(job: Job, images: int, fill: Callable[[np.ndarray], None]) -> dict[str, Any]:
    """Write the (time, band, y, x) output to ``job["save"]`` (a .npy) and return checksum info."""
    grid = Grid.from_json(job["grid"])
    shape = (images, len(BANDS), *grid.shape)
    save = job.get("save")
    if save:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        arr = np.lib.format.open_memmap(save, mode="w+", dtype="uint16", shape=shape)
    else:
        arr = np.empty(shape, dtype="uint16")
    fill(arr)
    checksum = int(sum(int(arr[i].sum(dtype="uint64")) for i in range(images)))
    valid = float(np.mean([np.count_nonzero(arr[i] != NODATA) / arr[i].size for i in range(images)]))
    if save:
        arr.flush()
    return {"shape": list(shape), "checksum": checksum, "valid_share": valid}


def _items(path: str) -> list[Any]:
    import pystac

    return [pystac.Item.from_dict(f) for f in read_json(path)["features"]]


def _times_iso(values: Any) -> list[str]:
    return [str(np.datetime_as_string(np.datetime64(v, "s"))) for v in np.asarray(values)]


# ---------------------------------------------------------------------------------------------------
# odc-stac


def _odc_load(job: Job, items: list[Any], **kw: Any) -> Any:
    import odc.stac

    return odc.stac.load(
        items, bands=list(BANDS), chunks={"x": CHUNK, "y": CHUNK}, dtype="uint16", fail_on_error=True, **kw
    )


def cube_odc(job: Job) -> dict[str, Any]:
    """odc.stac.load on a forced GeoBox; one image per item (``groupby="time"``) or ``groupby="solar_day"``.

    Loaded the way odc-stac loads fastest into memory: without dask, on its own pool of ``THREADS``
    threads (``pool=``), each band written straight into the result (measured on this collection: 15–25 %
    faster than ``chunks`` of 1024 or 2048 and ``.compute()``).
    """
    import odc.stac
    from odc.geo.geobox import GeoBox

    grid = Grid.from_json(job["grid"])
    items = _items(job["items_multiband"])
    gbox = GeoBox(grid.shape, grid.affine, grid.crs)
    groupby = "solar_day" if job["group"] == "day" else "time"

    def build() -> Any:
        return gbox

    def compute(box: Any) -> Any:
        with ThreadPoolExecutor(THREADS) as pool:
            ds = odc.stac.load(items, bands=list(BANDS), geobox=box, resampling=job["resampling"], groupby=groupby,
                               dtype="uint16", fail_on_error=True, pool=pool)
        check_coords(ds.x.values, ds.y.values, grid)
        assert f"EPSG:{ds.odc.geobox.crs.epsg}" == grid.crs, ds.odc.geobox.crs
        return ds

    res, ds = _best_of(job, build, compute)

    def fill(arr: np.ndarray) -> None:
        for i, band in enumerate(BANDS):
            arr[:, i] = ds[band].values

    res.update(_save_cube(job, ds.sizes["time"], fill))
    res["time_coords"] = _times_iso(ds.time.values)
    return res


# ---------------------------------------------------------------------------------------------------
# stackstac


def _stackstac_prepare() -> Any:
    """stackstac (its assets are single-band COGs: GTiff, which it reads on every thread)."""
    import stackstac

    return stackstac


def _stackstac_stack(items: list[Any], **kw: Any) -> Any:
    stackstac = _stackstac_prepare()
    return stackstac.stack(
        # a numpy scalar: with numpy 2, stackstac's np.can_cast(type(0), uint16) check refuses a Python int
        items, assets=list(BANDS), chunksize=CHUNK, dtype=np.dtype("uint16"), fill_value=np.uint16(NODATA),
        rescale=False, xy_coords="center", sortby_date="asc", properties=False, **kw,
    )


def cube_stackstac(job: Job) -> dict[str, Any]:
    """stackstac.stack with epsg/resolution/bounds of the forced grid; per day: ``stackstac.mosaic``."""
    from rasterio.enums import Resampling

    stackstac = _stackstac_prepare()
    grid = Grid.from_json(job["grid"])
    items = _items(job["items_perband"])
    epsg = int(grid.crs.split(":")[1])

    def build() -> Any:
        arr = _stackstac_stack(
            items, epsg=epsg, resolution=grid.resolution, bounds=grid.bounds, snap_bounds=False,
            resampling=Resampling[job["resampling"]],
        )
        check_coords(arr.x.values, arr.y.values, grid)
        assert arr.attrs["crs"].upper() == grid.crs, arr.attrs["crs"]
        if job["group"] == "day":
            # one image per UTC day (= solar day here), later images painted over earlier ones
            days = arr.time.dt.floor("D").values
            arr = arr.assign_coords(day=("time", days)).groupby("day").map(
                stackstac.mosaic, dim="time", nodata=NODATA
            )
            arr = arr.rename(day="time").transpose("time", "band", "y", "x")
        return arr

    def compute(arr: Any) -> Any:
        with _threads():
            return arr.compute()

    res, arr = _best_of(job, build, compute)

    def fill(out: np.ndarray) -> None:
        out[:] = arr.values

    res.update(_save_cube(job, arr.sizes["time"], fill))
    res["time_coords"] = _times_iso(arr.time.values)
    return res


# ---------------------------------------------------------------------------------------------------
# The floor: plain rasterio reads of the source windows an engine needs, all bands in one call


def _source_windows(job: Job, use_overviews: bool) -> list[tuple[str, int | None, Any]]:
    """(path, overview level or None, window) for every source intersecting the output grid.

    The window is the source-pixel bounding box of the output grid's outline (edges densified); with
    overviews, it is taken in the overview a correct engine reads: the coarsest whose pixel is no larger
    than the output pixel (measured at the grid's centre, in source pixels).
    """
    import rasterio
    from affine import Affine
    from pyproj import Transformer
    from rasterio.windows import Window

    grid = Grid.from_json(job["grid"])
    h, w = grid.shape
    n = 64
    t = np.linspace(0.0, 1.0, n + 1)
    cols = np.concatenate([t * w, np.full_like(t, w), t * w, np.zeros_like(t)])
    rows = np.concatenate([np.zeros_like(t), t * h, np.full_like(t, h), t * h])
    ex, ey = grid.affine * (cols, rows)
    cx, cy = grid.affine * (w / 2, h / 2)
    probe_x = np.array([cx, cx + grid.resolution, cx])
    probe_y = np.array([cy, cy, cy - grid.resolution])
    out: list[tuple[str, int | None, Any]] = []
    for feat in read_json(job["items_multiband"])["features"]:
        props = feat["properties"]
        path = feat["assets"]["reflectance"]["href"]
        src_crs = f"EPSG:{props['proj:epsg']}"
        inv = ~Affine(*props["proj:transform"])
        sh, sw = props["proj:shape"]
        tr = Transformer.from_crs(grid.crs, src_crs, always_xy=True)
        sx, sy = tr.transform(ex, ey)
        sc, sr = inv * (np.asarray(sx), np.asarray(sy))
        c0, c1 = max(0.0, float(np.min(sc))), min(float(sw), float(np.max(sc)))
        r0, r1 = max(0.0, float(np.min(sr))), min(float(sh), float(np.max(sr)))
        if c1 <= c0 or r1 <= r0:
            continue
        level: int | None = None
        factor = 1
        if use_overviews:
            px, py = tr.transform(probe_x, probe_y)
            pc, pr = inv * (np.asarray(px), np.asarray(py))
            ratio = min(math.hypot(pc[1] - pc[0], pr[1] - pr[0]), math.hypot(pc[2] - pc[0], pr[2] - pr[0]))
            with rasterio.open(path) as src:
                factors = src.overviews(1)
            for i, f in enumerate(factors):
                if f <= ratio * (1 + 1e-9):
                    level, factor = i, f
        win_c0, win_r0 = math.floor(c0 / factor), math.floor(r0 / factor)
        win_c1 = min(math.ceil(c1 / factor), math.ceil(sw / factor))
        win_r1 = min(math.ceil(r1 / factor), math.ceil(sh / factor))
        out.append((path, level, Window(win_c0, win_r0, win_c1 - win_c0, win_r1 - win_r0)))
    return out


def _floor_reads(reads: list[tuple[str, int | None, Any]], threads: int = THREADS) -> int:
    import rasterio

    def one(read: tuple[str, int | None, Any]) -> int:
        path, level, window = read
        kw = {} if level is None else {"overview_level": level}
        with rasterio.open(path, **kw) as src:
            return int(src.read(window=window).size)

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(one, reads))


def cube_floor(job: Job) -> dict[str, Any]:
    """Read every needed source window (full resolution or from the right overview); no warping."""
    reads = _source_windows(job, use_overviews=job["tool"] == FLOOR_OVR)
    res, samples = _best_of(job, lambda: reads, _floor_reads)
    res["samples_read"] = samples
    res["reads"] = [
        {"path": Path(p).name, "overview_level": lvl, "window": [w.col_off, w.row_off, w.width, w.height]}
        for p, lvl, w in reads
    ]
    return res


# ---------------------------------------------------------------------------------------------------
# geocube_dask


def _geocube_catalogue(job: Job) -> tuple[Any, Any, float]:
    """A fresh SQLite catalogue with every scene of ``job["scenes"]`` indexed; (gc, inst, seconds)."""
    import geocube_dask as gd
    from geocube_dask.catalog.ingest.requests import IndexRequest, NewRecord

    db = Path(job["db"])
    db.parent.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    t0 = time.perf_counter()
    gc = gd.connect(f"sqlite:///{db}")
    var = gc.create_variable(
        "reflectance", dformat=("uint16", NODATA, 0, 10000), bands=list(BANDS), resampling="near"
    )
    inst = gc.instantiate(var, "master")
    requests = [
        IndexRequest(
            uri=s["path"],
            record=NewRecord(name=s["name"], datetime=s["datetime"], tags=s["tags"]),
            instance=inst.id,
            dformat=("uint16", NODATA, 0, 10000),
            real_min=0,
            real_max=10000,
        )
        for s in read_json(job["scenes"])
    ]
    gc.index_datasets(requests)
    return gc, inst, time.perf_counter() - t0


def _geocube_cube(gc: Any, inst: Any, job: Job, grid: Grid) -> Any:
    return gc.get_cube(
        inst,
        tags={"bench": job["tag"]},
        crs=grid.crs,
        transform=grid.affine,
        shape=grid.shape,
        resampling="near" if job["resampling"] == "nearest" else job["resampling"],
        group_by=job["group"],
        chunks=CHUNK,
    )


def cube_geocube(job: Job) -> dict[str, Any]:
    """gc.get_cube on the forced grid, then .compute() (or gd.load) with the threaded scheduler."""
    grid = Grid.from_json(job["grid"])
    gc, inst, index_seconds = _geocube_catalogue(job)

    def build() -> Any:
        cube = _geocube_cube(gc, inst, job, grid)
        check_coords(cube.x.values, cube.y.values, grid)
        assert tuple(cube.dims) == ("time", "band", "y", "x"), cube.dims
        crs = cube.rio.crs if hasattr(cube, "rio") else None
        assert crs is None or f"EPSG:{crs.to_epsg()}" == grid.crs, crs
        return cube

    def compute(cube: Any) -> Any:
        with _threads():
            if job["tool"] == GEOCUBE_LOAD:
                import geocube_dask as gd

                return gd.load(cube)
            return cube.compute()

    res, cube = _best_of(job, build, compute)
    # informative: the same request again, with the set-ups of the previous run still cached
    cube = None
    res["warm_time"], cube = _timed_run(build, compute)

    def fill(arr: np.ndarray) -> None:
        arr[:] = cube.values

    res.update(_save_cube(job, cube.sizes["time"], fill))
    res["time_coords"] = _times_iso(cube.time.values)
    res["index_seconds"] = index_seconds
    return res


# ---------------------------------------------------------------------------------------------------
# Point timeseries


def _ts_result(job: Job, build: Callable[[], Any], compute: Callable[[Any], Any],
               to_rows: Callable[[Any], tuple[list[str], np.ndarray]]) -> dict[str, Any]:
    res, out = _best_of(job, build, compute)
    times, values = to_rows(out)
    res["time_coords"] = times
    res["values"] = np.asarray(values).astype("int64").tolist()
    return res


def ts_odc(job: Job) -> dict[str, Any]:
    """odc.stac.load over the tile's native grid, then ``.sel(x, y, method="nearest").compute()``."""
    items = _items(job["items_multiband"])
    x, y = job["point_xy"]

    def build() -> Any:
        ds = _odc_load(job, items, crs=job["crs"], resolution=job["resolution"], groupby="time")
        return ds.sel(x=x, y=y, method="nearest")

    def compute(ds: Any) -> Any:
        with _threads():
            return ds.compute()

    return _ts_result(job, build, compute, lambda ds: (
        _times_iso(ds.time.values), np.stack([ds[b].values for b in BANDS], axis=1)))


def ts_stackstac(job: Job) -> dict[str, Any]:
    """stackstac.stack over the tile's native grid, then ``.sel(x, y, method="nearest").compute()``."""
    items = _items(job["items_perband"])
    x, y = job["point_xy"]
    epsg = int(job["crs"].split(":")[1])

    def build() -> Any:
        arr = _stackstac_stack(items, epsg=epsg, resolution=job["resolution"])
        return arr.sel(x=x, y=y, method="nearest")

    def compute(arr: Any) -> Any:
        with _threads():
            return arr.compute()

    return _ts_result(job, build, compute, lambda a: (
        _times_iso(a.time.values), a.transpose("time", "band").values))


def _point_pixel(job: Job) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1): the bounds of the tile's pixel holding the point (every date shares the tile's grid)."""
    from affine import Affine

    x, y = job["point_xy"]
    t = Affine(*read_json(job["items_multiband"])["features"][0]["properties"]["proj:transform"])
    col, row = ~t * (x, y)
    x0, y1 = t * (math.floor(col), math.floor(row))
    return x0, y1 + t.e, x0 + t.a, y1


def ts_odc_bbox(job: Job) -> dict[str, Any]:
    """odc.stac.load of only the pixel holding the point (a 1×1 GeoBox on the tile's grid), without dask on
    its own pool of ``THREADS`` threads: what a user who knows odc-stac writes for a point."""
    import odc.stac
    from affine import Affine
    from odc.geo.geobox import GeoBox

    items = _items(job["items_multiband"])
    x0, _, _, y1 = _point_pixel(job)
    res = job["resolution"]
    box = GeoBox((1, 1), Affine(res, 0, x0, 0, -res, y1), job["crs"])

    def compute(_: Any) -> Any:
        with ThreadPoolExecutor(THREADS) as pool:
            return odc.stac.load(items, bands=list(BANDS), geobox=box, groupby="time", dtype="uint16",
                                 fail_on_error=True, pool=pool)

    return _ts_result(job, lambda: None, compute, lambda ds: (
        _times_iso(ds.time.values), np.stack([ds[b].values[:, 0, 0] for b in BANDS], axis=1)))


def ts_stackstac_bbox(job: Job) -> dict[str, Any]:
    """stackstac.stack on the bounds of the pixel holding the point, then ``.compute()`` on 2 threads."""
    items = _items(job["items_perband"])
    epsg = int(job["crs"].split(":")[1])
    bounds = _point_pixel(job)

    def build() -> Any:
        return _stackstac_stack(items, epsg=epsg, resolution=job["resolution"], bounds=bounds, snap_bounds=False)

    def compute(arr: Any) -> Any:
        with _threads():
            return arr.compute()

    return _ts_result(job, build, compute, lambda a: (
        _times_iso(a.time.values), a.isel(x=0, y=0).transpose("time", "band").values))


def ts_floor(job: Job) -> dict[str, Any]:
    """One 1×1 window (all bands) per file, 2 threads: the least any engine reads."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    x, y = job["point_xy"]
    feats = read_json(job["items_multiband"])["features"]

    def one(feat: dict[str, Any]) -> np.ndarray:
        inv = ~Affine(*feat["properties"]["proj:transform"])
        col, row = inv * (x, y)
        with rasterio.open(feat["assets"]["reflectance"]["href"]) as src:
            return src.read(window=Window(math.floor(col), math.floor(row), 1, 1))[:, 0, 0]

    def compute(_: Any) -> Any:
        with ThreadPoolExecutor(THREADS) as pool:
            return np.stack(list(pool.map(one, feats)))

    return _ts_result(job, lambda: None, compute, lambda v: (
        [f["properties"]["datetime"].rstrip("Z") for f in feats], v))


def ts_geocube(job: Job) -> dict[str, Any]:
    """gc.get_timeseries(inst, point=(lon, lat), crs="EPSG:4326")."""
    gc, inst, index_seconds = _geocube_catalogue(job)
    lon, lat = job["point_lonlat"]

    def build() -> Any:  # get_timeseries computes the series (to leave out images without a value)
        with _threads():
            return gc.get_timeseries(inst, point=(lon, lat), crs="EPSG:4326")

    def compute(ts: Any) -> Any:
        return ts

    res = _ts_result(job, build, compute, lambda ts: (
        _times_iso(ts.time.values), ts.transpose("time", "band").values))
    res["index_seconds"] = index_seconds
    return res


# ---------------------------------------------------------------------------------------------------
# Graph construction


def _graph_stats(arr: Any) -> dict[str, Any]:
    graph = arr.__dask_graph__()
    return {"tasks": len(graph), "images": int(arr.sizes["time"])}


def graph_geocube(job: Job) -> dict[str, Any]:
    """gc.get_cube over every record: graph only, nothing computed."""
    grid = Grid.from_json(job["grid"])
    gc, inst, index_seconds = _geocube_catalogue(job)
    res, cube = _best_of(job, lambda: _geocube_cube(gc, inst, job, grid), lambda c: c)
    res.update(_graph_stats(cube))
    res["index_seconds"] = index_seconds
    return res


def graph_odc(job: Job) -> dict[str, Any]:
    """odc.stac.load(chunks=…) over every item (parsing the Items is timed too)."""
    from odc.geo.geobox import GeoBox

    grid = Grid.from_json(job["grid"])
    feats = read_json(job["items_multiband"])["features"]
    gbox = GeoBox(grid.shape, grid.affine, grid.crs)

    def build() -> Any:
        import pystac

        items = [pystac.Item.from_dict(f) for f in feats]
        return _odc_load(job, items, geobox=gbox, resampling=job["resampling"], groupby="time")

    res, ds = _best_of(job, build, lambda d: d)
    res.update({"tasks": len(ds.__dask_graph__()), "images": int(ds.sizes["time"])})
    return res


def graph_stackstac(job: Job) -> dict[str, Any]:
    """stackstac.stack over every item (parsing the Items is timed too)."""
    from rasterio.enums import Resampling

    grid = Grid.from_json(job["grid"])
    feats = read_json(job["items_perband"])["features"]
    epsg = int(grid.crs.split(":")[1])

    def build() -> Any:
        import pystac

        items = [pystac.Item.from_dict(f) for f in feats]
        return _stackstac_stack(
            items, epsg=epsg, resolution=grid.resolution, bounds=grid.bounds, snap_bounds=False,
            resampling=Resampling[job["resampling"]],
        )

    res, arr = _best_of(job, build, lambda a: a)
    res.update(_graph_stats(arr))
    return res


# ---------------------------------------------------------------------------------------------------
# Out-of-core export to zarr on a LocalCluster


def _zarr_ready(ds: Any) -> Any:
    """Keep dimension coordinates and plain attributes only (CRS objects etc. do not go to zarr)."""
    import xarray as xr

    ds = ds.drop_vars([c for c in ds.coords if c not in ds.dims])
    plain = (str, int, float, bool, list, tuple)
    ds.attrs = {k: v for k, v in ds.attrs.items() if isinstance(v, plain)}
    for v in ds.data_vars.values():
        v.attrs = {k: a for k, a in v.attrs.items() if isinstance(a, plain)}
        v.encoding = {}
    return xr.Dataset(ds.data_vars, attrs=ds.attrs)


def ooc_run(job: Job) -> dict[str, Any]:
    """Export the cube to zarr on LocalCluster(n_workers=2, threads_per_worker=1, memory_limit)."""
    import shutil

    from distributed import Client, LocalCluster

    grid = Grid.from_json(job["grid"])
    if job["tool"] == GEOCUBE:
        gc, inst, _ = _geocube_catalogue(job)
        ds = _geocube_cube(gc, inst, job, grid).to_dataset(name="reflectance")
    elif job["tool"] == ODC:
        from odc.geo.geobox import GeoBox

        ds = _odc_load(job, _items(job["items_multiband"]), geobox=GeoBox(grid.shape, grid.affine, grid.crs),
                       resampling=job["resampling"], groupby="time")
    else:
        raise ValueError(f"no out-of-core runner for {job['tool']}")
    ds = _zarr_ready(ds)
    nbytes = int(sum(v.nbytes for v in ds.data_vars.values()))
    store = Path(job["store"])
    shutil.rmtree(store, ignore_errors=True)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, memory_limit=job["memory_limit"], processes=True,
        dashboard_address=None,
    ) as cluster, Client(cluster) as client:
        t0 = time.perf_counter()
        ds.to_zarr(store, mode="w", compute=True)
        seconds = time.perf_counter() - t0
        workers = list(client.scheduler_info()["workers"])
        # what the cluster logs after this line is its shutdown, not the export
        sys.stderr.flush()
        print(EXPORT_DONE, flush=True)
    disk = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    shutil.rmtree(store, ignore_errors=True)
    return {"time": seconds, "cube_bytes": nbytes, "zarr_bytes": disk, "workers_at_end": len(workers),
            "peak_rss": peak_rss_bytes()}


# ---------------------------------------------------------------------------------------------------

RUNNERS: dict[tuple[str, str], Callable[[Job], dict[str, Any]]] = {
    ("cube", ODC): cube_odc,
    ("cube", STACKSTAC): cube_stackstac,
    ("cube", FLOOR): cube_floor,
    ("cube", FLOOR_OVR): cube_floor,
    ("cube", GEOCUBE): cube_geocube,
    ("cube", GEOCUBE_LOAD): cube_geocube,
    ("timeseries", ODC): ts_odc,
    ("timeseries", STACKSTAC): ts_stackstac,
    ("timeseries", ODC_BBOX): ts_odc_bbox,
    ("timeseries", STACKSTAC_BBOX): ts_stackstac_bbox,
    ("timeseries", FLOOR): ts_floor,
    ("timeseries", GEOCUBE): ts_geocube,
    ("graph", GEOCUBE): graph_geocube,
    ("graph", ODC): graph_odc,
    ("graph", STACKSTAC): graph_stackstac,
    ("ooc", GEOCUBE): ooc_run,
    ("ooc", ODC): ooc_run,
}


def tool_version(tool: str) -> str:
    """The version string of ``tool`` (and of the GDAL it reads with)."""
    import rasterio

    gdal = f"GDAL {rasterio.__gdal_version__}"
    if tool in (ODC, ODC_BBOX):
        import odc.stac

        return f"odc-stac {odc.stac.__version__}, {gdal}"
    if tool in (STACKSTAC, STACKSTAC_BBOX):
        import stackstac

        return f"stackstac {stackstac.__version__}, {gdal}"
    if tool in (GEOCUBE, GEOCUBE_LOAD):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"geocube_dask {version('geocube_dask')}, {gdal}"
        except PackageNotFoundError:
            return f"geocube_dask (source tree), {gdal}"
    return f"rasterio {rasterio.__version__}, {gdal}"


def main(argv: list[str]) -> int:
    """Entry point: ``run_tool.py JOB.json RESULT.json``."""
    job_path, result_path = argv[1], argv[2]
    job = read_json(job_path)
    runner = RUNNERS[(job["kind"], job["tool"])]
    result = runner(job)
    result.setdefault("peak_rss", peak_rss_bytes())
    result["tool"] = job["tool"]
    result["version"] = tool_version(job["tool"])
    write_json(result_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
