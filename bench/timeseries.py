"""Point timeseries benchmark: one pixel through 120 dates.

    python bench/timeseries.py [--tools geocube,odc,stackstac,floor] [--repeat 3]

The collection: one Sentinel-2-like tile (EPSG:32631, 10 m, 1024² px, 4 bands, DEFLATE COG) on 120
dates, 3 days apart; a quarter of the dates have a no-data swath over the point.

- geocube_dask: ``gc.get_timeseries(inst, point=(lon, lat), crs="EPSG:4326")``;
- odc-stac: ``odc.stac.load(items, crs="EPSG:32631", resolution=10, chunks=1024)
  .sel(x=…, y=…, method="nearest").compute()`` (what a user writes; target: geocube_dask ≥ 10× faster);
- stackstac: the same with ``stackstac.stack`` (informative);
- odc-stac, 1 px bbox: ``odc.stac.load(items, geobox=<1×1 GeoBox of the pixel holding the point>,
  groupby="time", pool=2)``, without dask on its own 2 threads: what a user who knows odc-stac writes
  for a point (informative);
- stackstac, 1 px bbox: ``stackstac.stack(items, epsg=32631, resolution=10, bounds=<that pixel>,
  snap_bounds=False).compute()`` over the single-band COGs (informative);
- floor: rasterio reads of one 1×1 window (all bands) per file, 2 threads.

Each timed run includes everything after the catalogue/Items are loaded: the request and its compute.
"same values" compares with geocube_dask's answer on the dates both return.
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
    FLOOR,
    GEOCUBE,
    LABELS,
    ODC,
    ODC_BBOX,
    PEERS,
    STACKSTAC,
    STACKSTAC_BBOX,
    ensure_peers,
    fmt_bytes,
    fmt_seconds,
    print_report,
    run_job,
    write_json,
)

TOOLS = (GEOCUBE, ODC, STACKSTAC, ODC_BBOX, STACKSTAC_BBOX, FLOOR)
TARGETS = {ODC: 10.0}
NAMES = {**LABELS, FLOOR: "floor (1×1 reads)"}


def agreement(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    """'equal/common dates' between two timeseries results, compared on the dates both return."""
    mine = {t[:19]: v for t, v in zip(ours["time_coords"], ours["values"], strict=True)}
    other = {t[:19]: v for t, v in zip(theirs["time_coords"], theirs["values"], strict=True)}
    common = sorted(set(mine) & set(other))
    equal = sum(1 for t in common if list(mine[t]) == list(other[t]))
    return f"{equal}/{len(common)} dates"


def run(tools: list[str], repeat: int) -> dict[str, Any]:
    """Run each tool once (best of ``repeat``) and print the table."""
    coll = colls.ensure(colls.timeseries_collection())
    if any(t in PEERS for t in tools):
        ensure_peers()
    x, y, lon, lat = colls.timeseries_point()
    out_dir = DATA_DIR / "results" / f"timeseries-{coll.key}"
    results: dict[str, Any] = {}
    for tool in tools:
        job = {
            "kind": "timeseries", "tool": tool, "scenario": "point",
            "items_multiband": str(coll.items_multiband), "items_perband": str(coll.items_perband),
            "scenes": str(coll.scenes_json), "db": str(out_dir / "geocube.db"), "tag": coll.name,
            "point_xy": [x, y], "point_lonlat": [lon, lat], "crs": "EPSG:32631", "resolution": 10.0,
            "repeat": repeat,
        }
        results[tool] = run_job(job, out_dir / "jobs", timeout=3600)
        r = results[tool]
        print(f"  timeseries {NAMES[tool]:<17} {fmt_seconds(r['time']) + ' s' if 'time' in r else 'error'}",
              flush=True)
    write_json(out_dir / "results.json", results)

    ours = results.get(GEOCUBE, {})
    header = ["tool", "time s", "dates", "peak RSS", "geocube speed-up", "target", "same values"]
    rows = []
    notes = []
    for tool, r in results.items():
        if "error" in r:
            rows.append([NAMES[tool], "error", "", "", "", "", ""])
            notes.append(f"{NAMES[tool]}: {r['error'].splitlines()[-1]}")
            continue
        speed = target = same = ""
        if tool != GEOCUBE and "time" in ours:
            speed = f"{r['time'] / ours['time']:.1f}×"
            same = agreement(ours, r)
        if tool in TARGETS:
            target = f"≥ {TARGETS[tool]:g}×"
            if "time" in ours:
                target += " ok" if r["time"] / ours["time"] >= TARGETS[tool] else " MISS"
        rows.append([NAMES[tool], fmt_seconds(r["time"]), str(len(r["time_coords"])),
                     fmt_bytes(r["peak_rss"]), speed, target, same])
    print_report(
        f"Point timeseries: {len(coll.scenes)} dates, {coll.notes['size']}² px tile, "
        f"point ({lon:.5f}, {lat:.5f}) = EPSG:32631 ({x:.1f}, {y:.1f}); best of {repeat}",
        header, rows, "lrrrrrr", notes,
    )
    return results


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tools", default=",".join(TOOLS))
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    tools = [t for t in TOOLS if t in args.tools.split(",")]
    run(tools, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
