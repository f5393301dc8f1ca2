"""Graph construction benchmark: a lazy cube over 10,000 records (nothing is computed).

    python bench/graph.py [--tools geocube,odc,stackstac] [--records 10000] [--repeat 3]

The catalogue holds 10,000 records: the main collection's four Sentinel-2-like tiles (two UTM zones),
one date a day for 2,500 days. Their files are symbolic links to the main collection's files (indexing
reads headers; nothing else is read). The request is the main output grid (EPSG:32631, 20 m,
2035 × 1876 px, chunks of 1024): one image per record.

- geocube_dask: ``gc.get_cube(inst, tags=…, crs=…, transform=…, shape=…, chunks=1024)`` — the
  catalogue query, the plan and the dask graph (target < 2 s);
- odc-stac / stackstac (informative): parsing the 10,000 STAC Items and building their lazy array.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import collection as colls  # noqa: E402
from common import (  # noqa: E402
    DATA_DIR,
    GEOCUBE,
    LABELS,
    ODC,
    PEERS,
    STACKSTAC,
    ensure_peers,
    fmt_bytes,
    fmt_seconds,
    print_report,
    run_job,
    write_json,
)

TOOLS = (GEOCUBE, ODC, STACKSTAC)
TARGET_SECONDS = 2.0


def run(tools: list[str], records: int, repeat: int) -> dict[str, Any]:
    """Build the lazy cube with each tool (best of ``repeat``) and print the table."""
    colls.ensure(colls.main_collection())
    coll, targets = colls.graph_collection(records)
    colls.ensure_links(coll, targets)
    if any(t in PEERS for t in tools):
        ensure_peers()
    out_dir = DATA_DIR / "results" / f"graph-{coll.key}"
    grid = colls.MAIN_GRID
    results: dict[str, Any] = {}
    for tool in tools:
        job = {
            "kind": "graph", "tool": tool, "scenario": str(records),
            "items_multiband": str(coll.items_multiband), "items_perband": str(coll.items_perband),
            "scenes": str(coll.scenes_json), "db": str(out_dir / "geocube.db"), "tag": coll.name,
            "grid": grid.to_json(), "resampling": "nearest", "group": None, "repeat": repeat,
        }
        results[tool] = run_job(job, out_dir / "jobs", timeout=3600)
        r = results[tool]
        print(f"  graph {LABELS[tool]:<17} {fmt_seconds(r['time']) + ' s' if 'time' in r else 'error'}",
              flush=True)
    write_json(out_dir / "results.json", results)

    header = ["tool", "build s", "images", "tasks", "peak RSS", "target", "indexing s"]
    rows = []
    notes = []
    for tool, r in results.items():
        if "error" in r:
            rows.append([LABELS[tool], "error", "", "", "", "", ""])
            notes.append(f"{LABELS[tool]}: {r['error'].splitlines()[-1]}")
            continue
        target = ""
        if tool == GEOCUBE:
            target = f"< {TARGET_SECONDS:g} s " + ("ok" if r["time"] < TARGET_SECONDS else "MISS")
        rows.append([
            LABELS[tool], fmt_seconds(r["time"]), str(r["images"]), f"{r['tasks']:,}", fmt_bytes(r["peak_rss"]),
            target, fmt_seconds(r.get("index_seconds")) if "index_seconds" in r else "",
        ])
    print_report(
        f"Graph construction: {records:,} records, output {grid.crs} {grid.resolution:g} m "
        f"{grid.shape[1]} × {grid.shape[0]} px, chunks 1024; best of {repeat}",
        header, rows, "lrrrrrr", notes,
    )
    return results


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tools", default=",".join(TOOLS))
    p.add_argument("--records", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    tools = [t for t in TOOLS if t in args.tools.split(",")]
    run(tools, args.records, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
