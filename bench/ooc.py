"""Out-of-core benchmark: a cube larger than the cluster's memory exported to zarr.

    python bench/ooc.py [--tools geocube,odc] [--resolution 7]

The main collection's 38 images on EPSG:32631 at 7 m over the main extent (5815 × 5360 px, 4 bands
uint16: 9.5 GB, ≥ 4× the 2 GiB that the cluster's two workers may use together) are written to a zarr
store on ``distributed.LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="1GiB")``.
The resident memory of the job's process tree (client, scheduler, nannies, workers) is summed every
0.1 s with psutil; target: no error and a peak < 2.5 GiB. odc-stac is informative.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import collection as colls  # noqa: E402
from common import (  # noqa: E402
    DATA_DIR,
    EXPORT_DONE,
    GEOCUBE,
    LABELS,
    ODC,
    PEERS,
    Grid,
    ensure_peers,
    fmt_bytes,
    fmt_seconds,
    print_report,
    run_job,
    write_json,
)

TOOLS = (GEOCUBE, ODC)
MEMORY_LIMIT = "1GiB"
WORKERS = 2
TARGET_RSS = 2.5 * 1024**3
# distributed's log lines that mean failures (TROUBLE) or memory pressure (PRESSURE, informative)
TROUBLE = {
    "worker restarted": re.compile(r"Restarting worker|Worker process \d+ was killed|Nanny.*restart"),
    "killed worker": re.compile(r"KilledWorker"),
    "traceback": re.compile(r"Traceback"),
}
PRESSURE = {"worker paused": re.compile(r"Pausing worker"), "spilled": re.compile(r"[Ss]pill")}


def log_events(log: str) -> dict[str, int]:
    """Counts of the trouble and memory-pressure events in a job's log."""
    counts = {name: len(rx.findall(log)) for name, rx in {**TROUBLE, **PRESSURE}.items()}
    return {k: v for k, v in counts.items() if v}


def ooc_grid(resolution: float) -> Grid:
    """The main output extent at ``resolution`` m."""
    minx, miny, maxx, maxy = colls.MAIN_GRID.bounds
    shape = (math.ceil((maxy - miny) / resolution), math.ceil((maxx - minx) / resolution))
    return Grid("EPSG:32631", (resolution, 0.0, minx, 0.0, -resolution, maxy), shape)


def run(tools: list[str], resolution: float, timeout: float = 900) -> dict[str, Any]:
    """Export with each tool and print the table."""
    coll = colls.ensure(colls.main_collection())
    if any(t in PEERS for t in tools):
        ensure_peers()
    out_dir = DATA_DIR / "results" / f"ooc-{coll.key}"
    grid = ooc_grid(resolution)
    results: dict[str, Any] = {}
    for tool in tools:
        job = {
            "kind": "ooc", "tool": tool, "scenario": f"{resolution:g}m",
            "items_multiband": str(coll.items_multiband), "items_perband": str(coll.items_perband),
            "scenes": str(coll.scenes_json), "db": str(out_dir / "geocube.db"), "tag": coll.name,
            "grid": grid.to_json(), "resampling": "nearest", "group": None,
            "store": str(out_dir / f"{tool}.zarr"), "memory_limit": MEMORY_LIMIT,
        }
        r = run_job(job, out_dir / "jobs", timeout=timeout, sample_tree=True)
        # events of the export only: a cluster's shutdown logs harmless heartbeat failures
        r["events"] = log_events(r.pop("stderr", "").split(EXPORT_DONE)[0])
        results[tool] = r
        print(f"  out-of-core {LABELS[tool]:<17} {fmt_seconds(r['time']) + ' s' if 'time' in r else 'error'}",
              flush=True)
    write_json(out_dir / "results.json", results)

    limit = WORKERS * 1024**3
    header = ["tool", "cube", "× cluster memory", "time s", "MB/s", "zarr", "peak RSS (tree)", "target",
              "cluster log"]
    rows = []
    notes = []
    for tool, r in results.items():
        events = ", ".join(f"{k} ×{v}" for k, v in r["events"].items()) or "clean"
        if "error" in r:
            rows.append([LABELS[tool], "error", "", "", "", "", fmt_bytes(r.get("tree_peak_rss")), "MISS", events])
            notes.append(f"{LABELS[tool]}: {r['error'].splitlines()[-1]}")
            continue
        ok = r["tree_peak_rss"] < TARGET_RSS and not any(k in TROUBLE for k in r["events"])
        rows.append([
            LABELS[tool], fmt_bytes(r["cube_bytes"]), f"{r['cube_bytes'] / limit:.1f}×", fmt_seconds(r["time"]),
            f"{r['cube_bytes'] / r['time'] / 1e6:.0f}", fmt_bytes(r["zarr_bytes"]), fmt_bytes(r["tree_peak_rss"]),
            f"< {fmt_bytes(TARGET_RSS)} " + ("ok" if ok else "MISS"), events,
        ])
    print_report(
        f"Out-of-core: {grid.crs} {resolution:g} m, {len(coll.scenes)} images × 4 bands × {grid.shape[1]} × "
        f"{grid.shape[0]} px → zarr on LocalCluster({WORKERS} workers × 1 thread, memory_limit={MEMORY_LIMIT})",
        header, rows, "lrrrrrrrl", notes,
    )
    return results


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tools", default=GEOCUBE)
    p.add_argument("--resolution", type=float, default=7.0)
    p.add_argument("--timeout", type=float, default=900, help="seconds before a tool's export is abandoned")
    args = p.parse_args(argv)
    tools = [t for t in TOOLS if t in args.tools.split(",")]
    run(tools, args.resolution, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
