"""Cube benchmark: geocube_dask against odc-stac, stackstac and the raw-read floor.

Run from the repository root (a clean clone is enough; data and the peers' venv are made on demand):

    python bench/cube.py                          # the cube table, every tool
    python bench/cube.py --all                    # + point timeseries, graph construction, out-of-core
    python bench/cube.py --tools odc,stackstac,floor    # peers and floor only
    python bench/cube.py --tools geocube          # geocube_dask only (values compared with saved peers)
    python bench/cube.py --scenarios 80m-nearest --repeat 1    # a quick look

The first run generates the collection into ``bench/_data/`` (about 2.5 GB with the single-band copies,
~3 min on 2 cores, cached by its parameters) and creates ``bench/.venv-peers`` with
``bench/setup_peers.sh`` (~1 min). Each tool's output is saved under ``bench/_data/results/`` (about
15 GB for all scenarios) for the value comparison; a full run takes about 40 minutes.

The collection: 38 synthetic scenes of 2048² px (4 bands uint16 0..10000 pixel-interleaved, nodata 0
with no-data swaths, DEFLATE COG, 256² blocks, overviews x2 x4): four Sentinel-2-like 10 m tiles, two
in EPSG:32631 and two in EPSG:32632, on 10 dates (each tile misses one), a Landsat-like scene in
EPSG:4326 and a SPOT-like one in Lambert-93, 11 days in all. The same pixels also exist as one
single-band COG per band (same blocks, compression and overviews), the layout stackstac reads.

Scenarios (output grids; see ``scenario_grid``): ``20m`` is EPSG:32631 at 20 m (2035 × 1876 px; the
32631 tiles' x2 overview is exactly on it, so they are read as they are); ``25m`` the same extent at
25 m (on no source level: everything is resampled); ``20m-offset`` the 20 m grid moved by (0.3, -0.45)
pixel (on no source level either); ``80m`` the extent at 80 m; ``3857`` the extent's bounding box in
EPSG:3857, a CRS no source uses, at 28 m (≈ 19.6 m on the ground: the sources are read at full
resolution). Resampling nearest, bilinear or cubic; one image per scene, or per day (``-day``).

How each tool is called (what a user who knows it well writes for an in-memory load):

* geocube_dask: ``gc.get_cube(inst, crs=, transform=, shape=, resampling=, chunks=1024)`` then
  ``.compute()`` ("geocube_dask") or ``gd.load(cube)`` ("geocube_dask load": every chunk task
  resamples into its block of one preallocated array), dask's threaded scheduler on 2 threads.
* odc-stac: ``odc.stac.load(items, bands=, geobox=GeoBox(shape, affine, crs), resampling=,
  groupby="time" or "solar_day", dtype="uint16", pool=2)``: without dask, on its own pool of 2 threads,
  each band loaded straight into the result; on this collection 15–25 % faster than ``chunks`` of
  1024 or 2048 followed by ``.compute()``. Items have one 4-band asset (``eo:bands``).
* stackstac: ``stackstac.stack(items, assets=bands, epsg=, resolution=, bounds=, snap_bounds=False,
  xy_coords="center", chunksize=1024, resampling=)`` (per day: ``stackstac.mosaic`` over each day)
  then ``.compute()`` on 2 threads. stackstac reads single-band assets only, so its Items point at the
  single-band COGs (a ``vrt://…?bands=N`` view of the pixel-interleaved file would decode four bands
  to return one). It reads full resolution whatever the output's.
* floor: rasterio reads, on 2 threads, of exactly the source windows that intersect the output (all
  bands in one call, no warping), at full resolution and from the overview a correct engine reads;
  measured once per grid.

Each tool runs in its own process (peers with the venv's python), best of ``--repeat`` runs, each
run timing the request (graph construction plus compute) with a fresh thread pool; geocube_dask's
process-wide resampling set-ups are forgotten before each of its runs, so each repetition is a new
request with only the OS page cache warm (a note gives the time with its set-ups cached).

Columns: Mpix/s counts output pixels × bands per second. "peak RSS" is the process's peak resident
memory during its last run. "mem/out" is the resident memory a request adds at its peak (the
process's peak reset before each run and its RSS at the start subtracted, after freed memory is
returned by ``malloc_trim``; the worst run after the first, which also pays one-time loading) over
the output array's size; targets: ≤ 2× for ``.compute()`` (dask holds every chunk while it
concatenates them), ≤ 1.2× for ``gd.load``. "vs compute" / "vs load" are the tool's time over
geocube_dask's ``.compute()`` / ``gd.load`` time. Targets compare with geocube_dask's faster in-memory
call: odc-stac ≥ 3× (bilinear, cubic at 20 and 25 m), ≥ 5× (nearest at 25 m and on the offset grid),
≥ 1.3× otherwise; stackstac ≥ 1.5×; the floor from overviews ≥ 0.7× (nearest: the floor resamples
nothing, the other kernels' work comes on top of its reads by nature). "same px" is the share of
output values equal to geocube_dask's (informative: odc-stac keeps the first valid pixel per day where
Geocube paints later pixels over earlier ones; stackstac reads full resolution; nearest picks across
CRSs depend on each warper's approximations).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import collection as colls  # noqa: E402
from common import (  # noqa: E402
    BANDS,
    DATA_DIR,
    FLOOR,
    FLOOR_OVR,
    GEOCUBE,
    GEOCUBE_LOAD,
    LABELS,
    ODC,
    PEERS,
    STACKSTAC,
    Grid,
    ensure_peers,
    fmt_bytes,
    fmt_seconds,
    render_table,
    run_job,
    write_json,
)

TOOLS = (GEOCUBE, GEOCUBE_LOAD, ODC, STACKSTAC, FLOOR)  # "floor" stands for both floor variants
TARGETS = {STACKSTAC: 1.5, FLOOR_OVR: 0.7}  # odc-stac's is per scenario (Scenario.odc_target)
# peak resident memory a request adds, over the output array's size
MEMORY_TARGETS = {GEOCUBE: 2.0, GEOCUBE_LOAD: 1.2}


# The fractional-pixel offset of the "offset" grid: the 20 m grid moved by (0.3, -0.45) of its pixel, so
# that no source level is on it (nothing is read as is) and no pixel centre lies on a source pixel edge.
OFFSET_PX = (0.3, -0.45)
# The EPSG:3857 grid: 28 m Web Mercator pixels (about 19.6 m on the ground at 45.6°N) over the bounding
# box of the 20 m grid's extent.
MERCATOR_RES = 28.0


def mercator_grid() -> Grid:
    """The main extent in EPSG:3857, a CRS no source uses."""
    from pyproj import Transformer

    minx, miny, maxx, maxy = colls.MAIN_GRID.bounds
    t = np.linspace(0.0, 1.0, 65)
    along_x, along_y = minx + t * (maxx - minx), miny + t * (maxy - miny)
    xs = np.concatenate([along_x, np.full_like(t, maxx), along_x, np.full_like(t, minx)])
    ys = np.concatenate([np.full_like(t, miny), along_y, np.full_like(t, maxy), along_y])
    mx, my = Transformer.from_crs(colls.MAIN_GRID.crs, "EPSG:3857", always_xy=True).transform(xs, ys)
    r = MERCATOR_RES
    x0, y0 = math.floor(min(mx) / r) * r, math.ceil(max(my) / r) * r
    shape = (math.ceil((y0 - min(my)) / r), math.ceil((max(mx) - x0) / r))
    return Grid("EPSG:3857", (r, 0.0, x0, 0.0, -r, y0), shape)


def scenario_grid(kind: str) -> Grid:
    """The output grid called ``kind``: 20m, 25m, 80m, 20m-offset or 3857."""
    main = colls.MAIN_GRID
    if kind == "20m":
        return main
    if kind == "25m":
        return main.scaled(1.25)
    if kind == "80m":
        return main.scaled(4)
    if kind == "20m-offset":
        a, b, c, d, e, f = main.transform
        return Grid(main.crs, (a, b, c + OFFSET_PX[0] * a, d, e, f + OFFSET_PX[1] * e), main.shape)
    if kind == "3857":
        return mercator_grid()
    raise ValueError(f"unknown grid {kind!r}")


@dataclass(frozen=True)
class Scenario:
    """One output request: output grid (see :func:`scenario_grid`), resampling, grouping."""

    name: str
    grid_kind: str
    resampling: str
    group: str | None
    odc_target: float = 1.3  # geocube_dask's speed-up over odc-stac that the scenario asks for

    def grid(self) -> Grid:
        """The output grid."""
        return scenario_grid(self.grid_kind)


SCENARIOS = (
    Scenario("20m-nearest", "20m", "nearest", None),
    Scenario("20m-bilinear", "20m", "bilinear", None, 3.0),
    Scenario("20m-cubic", "20m", "cubic", None, 3.0),
    Scenario("20m-nearest-day", "20m", "nearest", "day"),
    Scenario("25m-nearest", "25m", "nearest", None, 5.0),
    Scenario("25m-bilinear", "25m", "bilinear", None, 3.0),
    Scenario("25m-cubic", "25m", "cubic", None, 3.0),
    Scenario("offset-nearest", "20m-offset", "nearest", None, 5.0),
    Scenario("3857-bilinear", "3857", "bilinear", None),
    Scenario("80m-nearest", "80m", "nearest", None),
    Scenario("80m-bilinear", "80m", "bilinear", None),
    Scenario("80m-nearest-day", "80m", "nearest", "day"),
)


def expected_images(coll: colls.Collection, group: str | None) -> int:
    """Images in the answer: one per scene, or one per (UTC) day."""
    if group == "day":
        return len({s.datetime[:10] for s in coll.scenes})
    return len(coll.scenes)


def same_share(a_path: Path, b_path: Path) -> float | None:
    """Share of equal values between two saved (time, band, y, x) outputs; None if not comparable."""
    if not (a_path.exists() and b_path.exists()):
        return None
    a = np.load(a_path, mmap_mode="r")
    b = np.load(b_path, mmap_mode="r")
    if a.shape != b.shape:
        return None
    equal = sum(int(np.count_nonzero(a[i] == b[i])) for i in range(a.shape[0]))
    return equal / a.size


def build_jobs(coll: colls.Collection, scen: Scenario, tool: str, repeat: int, out_dir: Path) -> dict[str, Any]:
    """The JSON job for one (scenario, tool)."""
    return {
        "kind": "cube",
        "tool": tool,
        "scenario": scen.name if tool not in (FLOOR, FLOOR_OVR) else scen.grid_kind,
        "items_multiband": str(coll.items_multiband),
        "items_perband": str(coll.items_perband),
        "scenes": str(coll.scenes_json),
        "db": str(out_dir / "geocube.db"),
        "tag": coll.name,
        "grid": scen.grid().to_json(),
        "resampling": scen.resampling,
        "group": scen.group,
        "repeat": repeat,
        "save": str(out_dir / scen.name / f"{tool}.npy") if tool not in (FLOOR, FLOOR_OVR) else None,
    }


def run(tools: list[str], scenarios: list[Scenario], repeat: int) -> dict[str, dict[str, Any]]:
    """Run every (scenario, tool); return results[scenario][tool]."""
    coll = colls.ensure(colls.main_collection())
    if any(t in PEERS for t in tools):
        ensure_peers()
    out_dir = DATA_DIR / "results" / f"cube-{coll.key}"
    work = out_dir / "jobs"
    runs: list[str] = []
    for t in TOOLS:  # table order, whatever the order asked
        if t in tools:
            runs.extend([FLOOR, FLOOR_OVR] if t == FLOOR else [t])
    floors: dict[tuple[str, str], dict[str, Any]] = {}
    results: dict[str, dict[str, Any]] = {}
    print(f"collection: {len(coll.scenes)} scenes, {coll.size_bytes() / 1e9:.2f} GB in {coll.root}", flush=True)
    for scen in scenarios:
        results[scen.name] = {}
        for tool in runs:
            if tool in (FLOOR, FLOOR_OVR) and (scen.grid_kind, tool) in floors:
                results[scen.name][tool] = floors[(scen.grid_kind, tool)]
                continue
            job = build_jobs(coll, scen, tool, repeat, out_dir)
            if job["save"]:
                Path(job["save"]).unlink(missing_ok=True)  # a failed run leaves no stale output behind
            res = run_job(job, work, timeout=3600)
            if tool in (FLOOR, FLOOR_OVR):
                floors[(scen.grid_kind, tool)] = res
            results[scen.name][tool] = res
            status = res.get("error", "").splitlines()[-1:] if "error" in res else [fmt_seconds(res["time"]) + " s"]
            print(f"  {scen.name:<16} {LABELS[tool]:<17} {status[0] if status else 'failed'}", flush=True)
    # values against geocube_dask's (saved outputs of earlier runs count: values do not depend on the run)
    for scen in scenarios:
        saved = {t: out_dir / scen.name / f"{t}.npy" for t in (GEOCUBE, GEOCUBE_LOAD, ODC, STACKSTAC)}
        for tool in (GEOCUBE_LOAD, ODC, STACKSTAC):
            if tool in results[scen.name] and "error" not in results[scen.name][tool]:
                results[scen.name][tool]["same_px"] = same_share(saved[GEOCUBE], saved[tool])
        if all(t in results[scen.name] for t in (ODC, STACKSTAC)):
            results[scen.name]["peers_same_px"] = same_share(saved[ODC], saved[STACKSTAC])
    write_json(out_dir / "results.json", results)
    print_table(coll, scenarios, results)
    return results


def print_table(coll: colls.Collection, scenarios: list[Scenario], results: dict[str, dict[str, Any]]) -> None:
    """The one table: time, Mpix/s, peak RSS, memory over the output, geocube_dask's speed-ups, targets
    and value agreement."""
    header = ["scenario", "tool", "time s", "Mpix/s", "peak RSS", "mem/out", "vs compute", "vs load", "target",
              "same px"]
    rows: list[list[str]] = []
    notes: list[str] = []
    for scen in scenarios:
        grid = scen.grid()
        images = expected_images(coll, scen.group)
        mpix = images * len(BANDS) * grid.pixels() / 1e6
        out_bytes = images * len(BANDS) * grid.pixels() * 2
        res = results[scen.name]
        ours = {t: res[t]["time"] for t in (GEOCUBE, GEOCUBE_LOAD) if "time" in res.get(t, {})}
        best = min(ours.values()) if ours else None
        first = True
        if "warm_time" in res.get(GEOCUBE, {}):
            notes.append(f"{scen.name}: geocube_dask repeating the request with its set-ups cached: "
                         f"{fmt_seconds(res[GEOCUBE]['warm_time'])} s")
        peers_same = res.get("peers_same_px")
        if peers_same is not None:
            notes.append(f"{scen.name}: odc-stac and stackstac agree on {100 * peers_same:.2f} % of values")
        for tool, r in res.items():
            if tool not in LABELS:
                continue
            label = scen.name if first else ""
            first = False
            if "error" in r:
                rows.append([label, LABELS[tool], "error", "", "", "", "", "", "", ""])
                notes.append(f"{scen.name} / {LABELS[tool]}: {r['error'].splitlines()[-1]}")
                continue
            rate = mpix / r["time"]
            if "shape" in r and r["shape"][0] != images:
                notes.append(f"{scen.name} / {LABELS[tool]}: {r['shape'][0]} images, expected {images}")
            mem = None
            added = r.get("request_rss") or []
            if added and tool not in (FLOOR, FLOOR_OVR):  # after the first run, if there were others
                mem = max(added[1:] or added) / out_bytes
            ratios = [f"{r['time'] / ours[t]:.2f}×" if t in ours and t != tool and tool not in ours else ""
                      for t in (GEOCUBE, GEOCUBE_LOAD)]
            want = scen.odc_target if tool == ODC else TARGETS.get(tool)
            if tool == FLOOR_OVR and scen.resampling != "nearest":
                want = None  # the floor reads and resamples nothing: a yardstick for nearest only
            target = ""
            if want is not None:
                target = f"≥ {want:g}×"
                if best is not None:
                    target += " ok" if r["time"] / best >= want else " MISS"
            elif tool in MEMORY_TARGETS and mem is not None:
                target = f"mem ≤ {MEMORY_TARGETS[tool]:g}×" + (" ok" if mem <= MEMORY_TARGETS[tool] else " MISS")
            same = r.get("same_px")
            rows.append([
                label, LABELS[tool], fmt_seconds(r["time"]), f"{rate:.0f}" if rate >= 100 else f"{rate:.1f}",
                fmt_bytes(r.get("peak_rss")), "" if mem is None else f"{mem:.2f}×", *ratios, target,
                "" if same is None else f"{100 * same:.2f} %",
            ])
    print()
    print(render_table(header, rows, "llrrrrrrrr"))
    print()
    for scen in scenarios:
        grid = scen.grid()
        images = expected_images(coll, scen.group)
        print(f"  {scen.name}: {grid.crs} {grid.resolution:g} m, {images} images × {len(BANDS)} bands × "
              f"{grid.shape[1]} × {grid.shape[0]} px")
    versions = sorted({
        r["version"] for res in results.values() for r in res.values() if isinstance(r, dict) and "version" in r
    })
    print("  versions: " + "; ".join(versions))
    for note in notes:
        print("  note: " + note)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated among {','.join(TOOLS)}")
    p.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS),
                   help="comma-separated among " + ",".join(s.name for s in SCENARIOS))
    p.add_argument("--repeat", type=int, default=3, help="runs per tool, the best is reported")
    p.add_argument("--all", action="store_true", help="also the timeseries, graph and out-of-core benchmarks")
    args = p.parse_args(argv)
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(args.tools) - set(TOOLS)
    if unknown:
        p.error(f"unknown tools {sorted(unknown)}")
    by_name = {s.name: s for s in SCENARIOS}
    try:
        args.scenarios = [by_name[s.strip()] for s in args.scenarios.split(",") if s.strip()]
    except KeyError as e:
        p.error(f"unknown scenario {e}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    run(args.tools, args.scenarios, args.repeat)
    if args.all:
        import graph
        import ooc
        import timeseries

        tools = ",".join(args.tools)
        timeseries.main(["--tools", tools, "--repeat", str(args.repeat)])
        graph.main(["--tools", tools, "--repeat", str(args.repeat)])
        ooc.main(["--tools", ",".join(t for t in args.tools if t in (GEOCUBE, ODC))])
    return 0


if __name__ == "__main__":
    sys.exit(main())
