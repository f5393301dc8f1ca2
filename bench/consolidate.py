"""Consolidation benchmarks: throughput, requests and time of a block read over HTTP, a cube before/after.

    python bench/consolidate.py [--parts throughput,http,cube] [--dates 100] [--repeat 3]

Data are generated on first run (``bench/_data``, see ``collection.py``); catalogues and consolidated
files go to a temporary directory.

- **throughput**: the 14-scene collection (``main_collection(size=1024, dates=4)``: UTM 31/32,
  Lambert-93, lon/lat; 4-band uint16 DEFLATE COGs) consolidated onto a 10 m EPSG:32631 layout (2048-px
  cells, 256-px blocks, MUCOG, lossless ZSTD), with ``job.run()`` on threads and on a
  ``LocalCluster(2 workers × 1 thread, processes)``, against a plain loop of
  ``rasterio.shutil.copy(src, dst, driver="COG", COMPRESS="ZSTD", PREDICTOR=2, BLOCKSIZE=256)``
  (what ``gdal_translate -of COG`` does) over the same files, one file at a time and two in parallel.
  MB/s of output written.
- **http**: the 100-date tile of ``timeseries_collection`` (EPSG:32631, 10 m, 1024², 4 bands) in three
  forms: the original COGs, consolidated into one MUCOG (pattern ``mucog``, 256-px blocks) and into one
  COG per record (pattern ``cog``); the MUCOG is read in batches (``geocube.mucog-reads="remote"``, the
  default: per chunk, the tiles of all records in a few large ranges, see ``geocube_dask.graph.batch``)
  and image by image (``"never"``: what the cube engine did before). A 256×256 block over all dates
  (aligned on the 256-px tiles, then
  straddling four of them) is read with ``gd.cube_from_plan`` on a plan whose uris point at a local
  HTTP server in another process that counts the requests and bytes it serves and answers each after
  20 ms (``GEOCUBE_TEST_HTTP_LATENCY_MS``; object storage's first-byte latency is of that order). Each form is read
  with GDAL's defaults (plus ``GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR``, which any remote user sets) and
  with ``geocube_dask.gdal_settings.MUCOG_READ_SETTINGS`` (which GDAL reads once per process: each setting
  is measured in a fresh child process). Every run uses fresh URLs (a query string), so GDAL's
  download cache starts empty.
- **cube**: the same cube request (a 512² block over the 100 dates, local files) before and after each
  consolidation: time and equality of every value.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent), str(BENCH.parent / "tests")]

import collection as colls  # noqa: E402
from common import BANDS, NODATA, print_report  # noqa: E402
from servers import http_server  # noqa: E402

import geocube_dask as gd  # noqa: E402
from geocube_dask.catalog.ingest.requests import IndexRequest, NewRecord  # noqa: E402
from geocube_dask.gdal_settings import MUCOG_READ_SETTINGS  # noqa: E402

CRS = "EPSG:32631"
DFORMAT = ("uint16", NODATA, 0, 10000)


def catalogue(db: Path, scenes: list[dict[str, Any]]) -> tuple[Any, Any]:
    """A fresh SQLite catalogue with ``scenes`` indexed: (gc, instance)."""
    gc = gd.connect(f"sqlite:///{db}")
    var = gc.create_variable("reflectance", dformat=DFORMAT, bands=list(BANDS), resampling="near")
    inst = gc.instantiate(var, "master")
    gc.index_datasets([
        IndexRequest(uri=s["path"], record=NewRecord(name=s["name"], datetime=s["datetime"], tags=s["tags"]),
                     instance=inst.id, dformat=DFORMAT, real_min=0, real_max=10000)
        for s in scenes
    ])
    return gc, inst


def consolidate(gc: Any, inst: Any, store: Path, client: Any = None, **layout: Any) -> tuple[float, int]:
    """Consolidate everything of ``inst``; (seconds of job.run(), bytes written under ``store``)."""
    lay = gc.create_layout(f"bench-{len(gc.list_layouts())}", crs=CRS, resolution=10, **layout)
    job = gc.consolidate(inst, lay, storage_uri=str(store))
    t0 = time.perf_counter()
    job = job.run(client=client)
    seconds = time.perf_counter() - t0
    if job.state.value != "DONE":
        raise RuntimeError(f"consolidation ended {job.state}: {job.logs[-5:]}")
    return seconds, sum(p.stat().st_size for p in store.rglob("*.tif"))


def copy_loop(paths: list[str], out: Path, workers: int) -> tuple[float, int]:
    """``rasterio.shutil.copy(..., driver="COG")`` of every file; (seconds, bytes written)."""
    import rasterio.shutil

    out.mkdir(parents=True, exist_ok=True)

    def one(path: str) -> int:
        dst = out / Path(path).name
        rasterio.shutil.copy(path, dst, driver="COG", COMPRESS="ZSTD", PREDICTOR=2, BLOCKSIZE=256)
        return dst.stat().st_size

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        written = sum(pool.map(one, paths))
    return time.perf_counter() - t0, written


def part_throughput(root: Path, repeat: int) -> None:
    from distributed import Client, LocalCluster

    coll = colls.ensure(colls.main_collection(size=1024, dates=4))
    scenes = colls.load_scenes(coll)
    paths = [s["path"] for s in scenes]
    rows = []
    layout = {"cell_size": 2048, "block_size": 256, "max_records": 1000, "pattern": "mucog"}

    def best(fn: Callable[[int], tuple[float, int]]) -> tuple[float, int]:
        return min(fn(i) for i in range(repeat))

    def threads(i: int) -> tuple[float, int]:
        gc, inst = catalogue(root / f"tp-threads-{i}.db", scenes)
        return consolidate(gc, inst, root / f"tp-threads-{i}", **layout)

    rows.append(("geocube_dask consolidation, threads (2)", *best(threads)))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        def procs(i: int) -> tuple[float, int]:
            gc, inst = catalogue(root / f"tp-procs-{i}.db", scenes)
            return consolidate(gc, inst, root / f"tp-procs-{i}", client=client, **layout)

        rows.append(("geocube_dask consolidation, LocalCluster 2×1", *best(procs)))
    rows.append(("rasterio copy → COG, 1 file at a time", *best(lambda i: copy_loop(paths, root / f"cp1-{i}", 1))))
    rows.append(("rasterio copy → COG, 2 files at a time", *best(lambda i: copy_loop(paths, root / f"cp2-{i}", 2))))
    insize = sum(Path(p).stat().st_size for p in paths)
    print_report(
        f"Consolidation throughput: {len(paths)} scenes of 1024² × 4 bands ({insize / 2**20:.0f} MiB of DEFLATE "
        f"COGs in four CRSs), best of {repeat}",
        ["what", "seconds", "MiB written", "MiB/s written"],
        [(name, f"{s:.2f}", f"{b / 2**20:.0f}", f"{b / 2**20 / s:.1f}") for name, s, b in rows], "lrrr",
    )


HTTP_FORMS = ("original COGs", "MUCOG (pattern mucog)", "COG per record")
# what is read over HTTP: (label, form's index in HTTP_FORMS, geocube.mucog-reads)
HTTP_READS = (("original COGs", 0, "remote"), ("MUCOG, in batches", 1, "remote"),
              ("MUCOG, image by image", 1, "never"), ("COG per record", 2, "remote"))
HTTP_WINDOWS = {"aligned on the tiles": (512, 256), "across 4 tiles": (640, 384)}  # (row, col) of the block


def part_http(root: Path, dates: int, repeat: int, extra: list[str] | None = None) -> None:
    """Consolidate the 100-date tile twice, then read the block in child processes, one per setting."""
    import json
    import subprocess

    coll = colls.ensure(colls.timeseries_collection(dates=dates))
    scenes = colls.load_scenes(coll)
    layouts = {"MUCOG (pattern mucog)": {"max_records": 1000, "pattern": "mucog"},
               "COG per record": {"max_records": 1, "pattern": "cog"}}
    www = root / "www"
    www.mkdir()
    (www / "0").symlink_to(Path(scenes[0]["path"]).parent, target_is_directory=True)
    for i, name in enumerate(HTTP_FORMS):
        gc, inst = catalogue(root / f"http-{i}.db", scenes)
        if name in layouts:
            seconds, nbytes = consolidate(gc, inst, root / f"store-{i}", cell_size=1024, block_size=256,
                                          origin=colls.TS_ORIGIN, **layouts[name])
            (www / str(i)).symlink_to(root / f"store-{i}", target_is_directory=True)
            print(f"{name}: {dates} records consolidated in {seconds:.1f} s ({nbytes / 2**20:.0f} MiB)")
        gc.close()
    rows = []
    base = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
    os.environ.setdefault("GEOCUBE_TEST_HTTP_LATENCY_MS", "20")  # the server process inherits it
    with http_server(www) as server:
        variants = [("GDAL defaults", base), ("MUCOG_READ_SETTINGS", {**base, **MUCOG_READ_SETTINGS})]
        for text in extra or []:  # --read-settings K=V,K=V: another row of settings to compare
            variants.append((text, {**base, **dict(kv.split("=", 1) for kv in text.split(","))}))
        for label, env in variants:
            out = subprocess.run(
                [sys.executable, __file__, "--parts", "http-read", "--root", str(root), "--url", server.base_url,
                 "--repeat", str(repeat), "--scenes-dir", str(Path(scenes[0]["path"]).parent)],
                env={**os.environ, **env}, check=True, capture_output=True, text=True,
            )
            for line in out.stdout.splitlines():
                if line.startswith("ROW "):
                    rows.append(json.loads(line[4:])[:1] + [label] + json.loads(line[4:])[1:])
    print_report(
        f"A 256×256 block × 4 bands over {dates} dates, read over HTTP with "
        f"{os.environ['GEOCUBE_TEST_HTTP_LATENCY_MS']} ms of latency per request (2 threads, best of {repeat})",
        ["block", "GDAL settings", "files", "images", "requests", "MiB", "seconds"],
        rows, "lllrrrr",
    )


def http_read(root: Path, url: str, scenes_dir: str, repeat: int) -> None:
    """(In a child process) read the block of every form through the server; print a ROW per form."""
    import json
    import urllib.request

    def stats(reset: bool = False) -> dict[str, int]:
        with urllib.request.urlopen(f"{url}/__stats__" + ("?reset=1" if reset else "")) as resp:
            return json.loads(resp.read())

    import dask.config
    import distributed  # noqa: F401 - dask imports it at the first compute: not timed

    run = 0
    for wname, (row, col) in HTTP_WINDOWS.items():
        x0, y0 = colls.TS_ORIGIN[0] + 10 * col, colls.TS_ORIGIN[1] - 10 * (row + 256)
        bounds = (x0, y0, x0 + 2560, y0 + 2560)
        results = {}
        for name, i, mode in HTTP_READS:
            gc = gd.connect(f"sqlite:///{root / f'http-{i}.db'}")
            inst = gc.get_instance("reflectance", "master")
            plan = gc.get_cube_plan(inst, crs=CRS, resolution=10, bounds=bounds, chunks=256).to_json()
            gc.close()
            local = scenes_dir if i == 0 else str(root / f"store-{i}")
            best = None
            for _ in range(repeat):
                run += 1
                text = plan.replace(local + "/", f"{url}/{i}/").replace('.tif"', f'.tif?run={run}"')
                with dask.config.set({"geocube.mucog-reads": mode}):
                    cube = gd.cube_from_plan(gd.CubePlan.from_json(text))
                stats(reset=True)
                t0 = time.perf_counter()
                values = cube.compute(scheduler="threads", num_workers=2).values
                seconds = time.perf_counter() - t0
                got = stats()
                if best is None or seconds < best[0]:
                    best = (seconds, got["requests"], got["bytes"])
            results[name] = values
            print("ROW " + json.dumps([wname, name, str(values.shape[0]), str(best[1]), f"{best[2] / 2**20:.1f}",
                                       f"{best[0]:.2f}"]), flush=True)
        ref = results[HTTP_READS[0][0]]
        if not all(np.array_equal(ref, v) for v in results.values()):
            raise AssertionError("every form must give the same cube")


def part_cube(root: Path, dates: int, repeat: int) -> None:
    coll = colls.ensure(colls.timeseries_collection(dates=dates))
    scenes = colls.load_scenes(coll)
    x0, y0 = colls.TS_ORIGIN[0] + 2560, colls.TS_ORIGIN[1] - 2560 - 5120
    request = {"crs": CRS, "resolution": 10, "bounds": (x0, y0, x0 + 5120, y0 + 5120), "chunks": 512}
    rows = []
    before = None
    for name, layout in (("MUCOG", {"max_records": 1000, "pattern": "mucog"}),
                         ("COG per record", {"max_records": 1, "pattern": "cog"})):
        gc, inst = catalogue(root / f"cube-{name[:4]}.db", scenes)

        def timed(gc: Any = gc, inst: Any = inst) -> tuple[float, np.ndarray]:
            from geocube_dask.graph import clear_caches

            out = []
            for _ in range(repeat):
                clear_caches()
                t0 = time.perf_counter()
                values = gc.get_cube(inst, **request).compute(scheduler="threads", num_workers=2).values
                out.append((time.perf_counter() - t0, values))
            return min(out, key=lambda t: t[0])

        t_before, before = timed()
        consolidate(gc, inst, root / f"cube-{name[:4]}", cell_size=1024, block_size=256, origin=colls.TS_ORIGIN,
                    **layout)
        t_after, after = timed()
        rows.append((name, f"{t_before:.2f}", f"{t_after:.2f}", f"{t_before / t_after:.1f}×",
                     str(np.array_equal(before, after))))
    shape = "×".join(str(n) for n in before.shape)
    print_report(f"The same cube ({shape}, local files, 2 threads, best of {repeat}) before and after",
                 ["consolidated into", "before s", "after s", "speed-up", "values equal"], rows, "lrrrl")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="throughput,http,cube")
    parser.add_argument("--dates", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--read-settings", action="append", default=[],
                        help="http part: another set of GDAL settings to read with, as K=V,K=V (repeatable)")
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--scenes-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parts == "http-read":
        http_read(Path(args.root), args.url, args.scenes_dir, args.repeat)
        return 0
    root = Path(tempfile.mkdtemp(prefix="geocube-bench-consolidate-"))
    try:
        for part in args.parts.split(","):
            if part == "throughput":
                part_throughput(root, args.repeat)
            elif part == "http":
                part_http(root, args.dates, args.repeat, args.read_settings)
            elif part == "cube":
                part_cube(root, args.dates, args.repeat)
            else:
                parser.error(f"unknown part {part!r}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
