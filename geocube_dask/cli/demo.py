"""``geocube demo``: write the demo collection, index it, and show what a Geocube does with it.

Steps (each one idempotent, see :mod:`geocube_dask.demo`): write the COGs (kept when already there),
index them (nothing indexed twice), summarise the catalogue (variable, records per date, datasets and
footprints), compute the demo cube (EPSG:32631 at 20 m over the collection, one image per day) and
report its valid pixels per date, write a quicklook PNG of the most complete date (kept when already
there), and read one point timeseries.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from time import perf_counter
from typing import Any

from .. import demo
from ..entities import Record, Variable
from .export import cube_info
from .output import (
    Output,
    dataset_dict,
    fmt_bytes,
    fmt_catalogue,
    fmt_dformat,
    fmt_lonlat,
    fmt_num,
    fmt_resolution,
    fmt_time,
    lonlat_bounds,
    record_dict,
    series_rows,
    series_table,
    table,
    variable_dict,
)


def _write_files(out: Output, directory: Path, size: int) -> tuple[list[Any], int]:
    existing = sum(demo.scene_path(directory, sc).exists() for sc in demo.scenes(size))
    with out.progress("writing the demo files") as update:
        files = demo.write_collection(directory, size, progress=update)
    return files, len(files) - existing


def _quicklook(values: Any, shares: list[float], directory: Path) -> tuple[Path, int, bool]:
    best = max(range(len(shares)), key=lambda i: shares[i])
    path = directory / demo.QUICKLOOK
    if path.exists():
        return path, best, False
    tmp = path.with_name(f".{path.stem}.tmp.png")
    demo.quicklook(values[best], tmp)
    tmp.replace(path)
    for sidecar in tmp.parent.glob(f"{tmp.name}.aux.xml"):
        sidecar.unlink()
    return path, best, True


def run_demo(out: Output, gc: Any, directory: Path, size: int) -> dict[str, Any]:
    """Run the demo against catalogue ``gc``; print for people, return the JSON summary."""
    start = perf_counter()
    demo.check_size(size)
    files, written = _write_files(out, directory, size)
    var, inst = demo.ensure_variable(gc)
    before = {d.id for d in gc.list_datasets(instance=inst)}
    t = perf_counter()
    with out.progress("indexing") as update:
        datasets = demo.index_collection(gc, files, progress=update)
    index_seconds = perf_counter() - t
    new = [d for d in datasets if d.id not in before]
    records: dict[str, Record] = {rid: gc.get_record(rid) for rid in dict.fromkeys(d.record_id for d in datasets)}

    bounds = demo.collection_bounds(datasets)
    cube = gc.get_cube(inst, records=list(records), crs=demo.CUBE_CRS, resolution=demo.CUBE_RESOLUTION,
                       bounds=bounds, group_by="day", chunks=512)
    t = perf_counter()
    with out.computing("computing the cube"):
        values = cube.values
    cube_seconds = perf_counter() - t
    shares = demo.valid_shares(values)
    ql_path, ql_index, ql_written = _quicklook(values, shares, directory)

    lon, lat = demo.sample_point(size)
    with out.computing("reading the timeseries"):
        ts = gc.get_timeseries(inst, point=(lon, lat), records=list(records))
    rows = series_rows(ts)
    info = cube_info(cube)
    summary = {
        "catalogue": gc.url,
        "directory": str(directory.resolve()),
        "size": size,
        "files": {"total": len(files), "written": written, "kept": len(files) - written},
        "indexed": {"datasets": len(datasets), "new": len(new), "already_indexed": len(datasets) - len(new)},
        "variable": variable_dict(var, [inst]),
        "instance": f"{var.name}/{inst.name}",
        "records": [record_dict(r) for r in records.values()],
        "datasets": [dataset_dict(d) for d in datasets],
        "cube": {
            **info, "group_by": "day", "seconds": round(cube_seconds, 3),
            "valid_share": [round(s, 4) for s in shares],
        },
        "quicklook": {"path": str(ql_path.resolve()), "time": info["times"][ql_index], "written": ql_written,
                      "bands": [demo.BANDS[b] for b in demo.QUICKLOOK_BANDS]},
        "timeseries": {"point": [lon, lat], "bands": list(var.bands), "series": rows},
        "seconds": round(perf_counter() - start, 3),
    }
    _show(out, summary, var, records, datasets, index_seconds)
    return summary


def _show(
    out: Output, s: dict[str, Any], var: Variable, records: dict[str, Record], datasets: list[Any], index_s: float
) -> None:
    if out.as_json:
        return
    files, idx, cube = s["files"], s["indexed"], s["cube"]
    out.show(f"geocube demo: catalogue {fmt_catalogue(s['catalogue'])}", style="bold")
    if files["written"]:
        out.show(f"files      wrote {files['written']} of {files['total']} COGs under {s['directory']}")
    else:
        out.show(f"files      the {files['total']} COGs under {s['directory']} were already there: kept as they are")
    if idx["new"] == idx["datasets"]:
        out.show(f"catalogue  indexed {idx['new']} datasets in {index_s:.1f} s")
    elif idx["new"]:
        out.show(f"catalogue  indexed {idx['new']} new datasets ({idx['already_indexed']} were already indexed)")
    else:
        out.show(f"catalogue  the {idx['datasets']} datasets were already indexed: nothing indexed twice")

    out.show(table("\nVariable", ["name", "instance", "dformat", "bands", "description"],
                   [[var.name, s["instance"].split("/", 1)[1], fmt_dformat(var.dformat), ",".join(var.bands),
                     var.description]]))
    by_day: dict[str, list[Record]] = defaultdict(list)
    for r in records.values():
        by_day[fmt_time(r.datetime)[:10]].append(r)
    out.show(table("Records per date", ["date", "records", "names"],
                   [[day, len(rs), ", ".join(r.name for r in rs)] for day, rs in sorted(by_day.items())]))
    names = {r.id: r.name for r in records.values()}
    out.show(table(f"Datasets ({len(datasets)})", ["id", "record", "file", "CRS", "size (px)", "res", "lon/lat bounds"],
                   [[d.id, names[d.record_id], Path(d.uri).name, d.crs, f"{d.width}×{d.height}",
                     fmt_resolution(d.transform), fmt_lonlat(lonlat_bounds(d))] for d in datasets]))
    out.show(f"footprint  lon/lat {fmt_lonlat(_union_bounds(datasets))}   files under {s['directory']}")

    shape = cube["shape"]
    out.show(f"\nCube  {s['instance']} in {cube['crs']} at {fmt_num(cube['resolution'][0])} m, one image per day: "
             f"{shape[0]} images × {shape[1]} bands × {shape[2]} × {shape[3]} px ({cube['dtype']}, "
             f"{fmt_bytes(cube['nbytes'])}), computed in {cube['seconds']:.1f} s")
    out.show(table(None, ["date", "records", "valid pixels"],
                   [[t[:10], len(n), f"{100 * v:.1f} %"]
                    for t, n, v in zip(cube["times"], cube["record_names"], cube["valid_share"], strict=True)]))
    ql = s["quicklook"]
    state = "written" if ql["written"] else "already there, kept"
    out.show(f"quicklook  {ql['path']} ({ql['time'][:10]}, RGB = {','.join(ql['bands'])}): {state}")

    ts = s["timeseries"]
    lon, lat = ts["point"]
    out.show(series_table(ts["series"], ts["bands"], title=f"\nTimeseries at lon {lon}, lat {lat}"))
    b = cube["bounds"]
    out.show(f"\ndone in {s['seconds']:.1f} s. Try:")
    out.show(f"  geocube record list --tag demo=yes\n"
             f"  geocube cube --instance {s['instance']} --crs {cube['crs']} --resolution 20 "
             f"--bounds {fmt_num(b[0])},{fmt_num(b[1])},{fmt_num(b[2])},{fmt_num(b[3])} --group-by day "
             f"--out demo.zarr\n"
             f"  geocube timeseries --instance {s['instance']} --point {lon},{lat}")


def _union_bounds(datasets: list[Any]) -> tuple[float, float, float, float] | None:
    bounds = [b for b in (lonlat_bounds(d) for d in datasets) if b is not None]
    if not bounds:
        return None
    return (min(b[0] for b in bounds), min(b[1] for b in bounds), max(b[2] for b in bounds), max(b[3] for b in bounds))
