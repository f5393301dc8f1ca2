"""``geocube cube`` and ``geocube timeseries``: pixels out of the catalogue, streamed to files or printed."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from time import perf_counter
from typing import Annotated, Any

import typer

from ..errors import InvalidArgument
from ..geocube import Geocube
from ..graph.plan import CubePlan
from . import parse
from .common import InstanceRef, Json, Tags, Time, state
from .export import check_target, cube_info, output_format, read_plan, write_geotiff, write_plan, write_zarr
from .output import Output, fmt_bytes, fmt_num, fmt_resolution, series_rows, series_table

# the options of a cube request (geocube cube, geocube submit export)
InstanceOpt = Annotated[str | None, typer.Option(metavar="VARIABLE/INSTANCE", help=(
    "VARIABLE/INSTANCE, or an instance id."))]
CrsOpt = Annotated[str | None, typer.Option(metavar="CRS", help="Output CRS, e.g. EPSG:32631.")]
ResolutionOpt = Annotated[str | None, typer.Option(metavar="RES", help="Pixel size in CRS units: 20, or XRES,YRES.")]
BoundsOpt = Annotated[str | None, typer.Option(metavar="XMIN,YMIN,XMAX,YMAX", help=(
    "Extent in the output CRS (snapped outwards to the resolution)."))]
AoiExtentOpt = Annotated[str | None, typer.Option(metavar="BBOX|WKT", help=(
    "Instead of --bounds: the extent of LON_MIN,LAT_MIN,LON_MAX,LAT_MAX or of a WKT geometry (EPSG:4326)."))]
ResamplingOpt = Annotated[str | None, typer.Option(help="near, bilinear, cubic, average… (default: the variable's).")]
GroupByOpt = Annotated[str | None, typer.Option(metavar="day", help=(
    "'day': mosaic the records of one UTC day into one image."))]
ChunksOpt = Annotated[int | None, typer.Option(metavar="PIXELS", help=(
    "Spatial chunk size: memory per task is one image × all bands × PIXELS² (default: 1024, or the plan's)."))]
FromPlanOpt = Annotated[Path | None, typer.Option(metavar="FILE", help=(
    "Compute the cube of a plan file written by --plan (no catalogue needed)."))]
ZarrFormatOpt = Annotated[int, typer.Option(metavar="2|3", help=(
    "Zarr format of a .zarr output: 2 (widest support) or 3."))]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]


def cube(
    ctx: typer.Context,
    instance: InstanceOpt = None,
    crs: CrsOpt = None,
    resolution: ResolutionOpt = None,
    bounds: BoundsOpt = None,
    aoi: AoiExtentOpt = None,
    tag: Tags = None,
    time: Time = None,
    resampling: ResamplingOpt = None,
    group_by: GroupByOpt = None,
    chunks: ChunksOpt = None,
    out_path: Annotated[Path | None, typer.Option("--out", metavar="FILE", help=(
        "Output: a .zarr store or a .tif GeoTIFF."))] = None,
    plan_path: Annotated[Path | None, typer.Option("--plan", metavar="FILE", help=(
        "Write the cube plan (metadata only: files, grid, mapping) as JSON."))] = None,
    from_plan: FromPlanOpt = None,
    zarr_format: ZarrFormatOpt = 2,
    overwrite: OverwriteOpt = False,
    as_json: Json = False,
) -> None:
    """Compute a cube (records × bands over an extent) into a zarr store or a GeoTIFF, streaming.

    Memory is bounded by the chunks (one image × all bands × chunk × chunk per task), not by the cube.
    A `.zarr` output is written in Zarr format 2 by default; read it with
    `xr.open_zarr(path, decode_coords="all")`. A `.tif` output is a tiled GeoTIFF with one band per
    (image, band), described `TIME/BAND`. `--plan` writes the plan (which files, where, how to map
    them: no pixels), which `--from-plan` later turns into pixels without the catalogue.
    """
    out = Output(as_json)
    if out_path is None and plan_path is None:
        raise InvalidArgument("give --out FILE.zarr|FILE.tif (the pixels) and/or --plan FILE.json (the plan)")
    kind = output_format(out_path) if out_path is not None else None
    for target in (out_path, plan_path):
        if target is not None:
            check_target(target, overwrite)
    plan = request_plan(ctx, instance, crs, resolution, bounds, aoi, tag, time, resampling, group_by, chunks,
                        from_plan, others=(("--plan", plan_path),))
    result: dict[str, Any] = {"plan": None, "out": None}
    if plan_path is not None:
        write_plan(plan, plan_path, overwrite=overwrite)
        g = plan.grid
        result["plan"] = {"path": str(plan_path), "images": len(plan.images),
                          "sources": sum(len(i.sources) for i in plan.images), "grid": g.to_json()}
        out.show(f"wrote plan {plan_path}: {len(plan.images)} image(s) from {result['plan']['sources']} source(s), "
                 f"grid {g.width}×{g.height} px in {g.crs} at {fmt_resolution(g.transform)}")
        if not plan.images:
            out.note("the plan has no image: no dataset of this request touches its extent")
    if out_path is not None:
        result["out"] = _write_cube(out, plan, out_path, kind, zarr_format, overwrite)
    out.emit(result)


def request_plan(
    ctx: typer.Context, instance: str | None, crs: str | None, resolution: str | None, bounds: str | None,
    aoi: str | None, tag: list[str] | None, time: str | None, resampling: str | None, group_by: str | None,
    chunks: int | None, from_plan: Path | None, others: Sequence[tuple[str, Any]] = (),
) -> CubePlan:
    """The plan of a cube request: read from ``from_plan`` (then no other request option, nor any of
    ``others``, (option, value) pairs), else resolved in the catalogue."""
    if from_plan is None:
        return _plan(state(ctx).gc, instance, crs, resolution, bounds, aoi, tag, time, resampling, group_by,
                     1024 if chunks is None else chunks)
    given = [n for n, v in (("--instance", instance), ("--crs", crs), ("--resolution", resolution),
                            ("--bounds", bounds), ("--aoi", aoi), ("--tag", tag), ("--time", time),
                            ("--resampling", resampling), ("--group-by", group_by), *others) if v]
    if given:
        raise InvalidArgument(f"--from-plan takes the whole request from the plan: drop {', '.join(given)}")
    plan = read_plan(from_plan)
    return plan if chunks is None else plan.with_chunks(chunks)


def _plan(
    gc: Geocube, instance: str | None, crs: str | None, resolution: str | None, bounds: str | None,
    aoi: str | None, tag: list[str] | None, time: str | None, resampling: str | None, group_by: str | None,
    chunks: int,
) -> CubePlan:
    missing = [n for n, v in (("--instance", instance), ("--crs", crs), ("--resolution", resolution)) if v is None]
    if missing or (bounds is None) == (aoi is None):
        raise InvalidArgument("a cube needs --instance, --crs, --resolution and --bounds (or --aoi): "
                              f"{', '.join(missing) or 'give one of --bounds and --aoi'}")
    if group_by not in (None, "day"):
        raise InvalidArgument(f"--group-by {group_by!r}: only 'day' is supported")
    inst = parse.resolve_instance(gc, instance)[0]  # type: ignore[arg-type]
    return gc.get_cube_plan(
        inst, tags=parse.tag_filters(tag) or None, time=parse.time_range(time), crs=crs,
        resolution=parse.resolution(resolution),  # type: ignore[arg-type]
        bounds=None if bounds is None else parse.bounds(bounds), aoi=None if aoi is None else parse.area(aoi),
        resampling=resampling, group_by=group_by, chunks=chunks,
    )


def _write_cube(
    out: Output, plan: CubePlan, path: Path, kind: str | None, zarr_format: int, overwrite: bool
) -> dict[str, Any]:
    from ..graph.cube import cube_from_plan

    if not plan.images:
        raise InvalidArgument(
            "no image matches this request: check --instance, --tag, --time, and that the extent overlaps the "
            "data (see 'geocube dataset list'); nothing written"
        )
    data = cube_from_plan(plan)
    start = perf_counter()

    def compute(delayed: Any) -> None:
        with out.computing(f"writing {path.name}"):
            delayed.compute()

    if kind == "zarr":
        write_zarr(data, path, zarr_format=zarr_format, overwrite=overwrite, compute=compute)
    else:
        write_geotiff(data, path, overwrite=overwrite, compute=compute)
    seconds = perf_counter() - start
    info = {"path": str(path), "format": "zarr" if kind == "zarr" else "geotiff", **cube_info(data),
            "seconds": round(seconds, 3)}
    if kind == "zarr":
        info["zarr_format"] = zarr_format
    t, b, h, w = data.shape
    out.show(f"wrote {path} ({info['format']}{f' v{zarr_format}' if kind == 'zarr' else ''}): {t} image(s) × {b} "
             f"band(s) × {h} × {w} px, {data.dtype}, {info['crs']} at {fmt_num(info['resolution'][0])}, "
             f"{fmt_bytes(data.nbytes)} in {seconds:.1f} s")
    return info


def timeseries(
    ctx: typer.Context,
    instance: InstanceRef,
    point: Annotated[str, typer.Option(metavar="LON,LAT", help="The point: LON,LAT (or X,Y in --crs).")],
    crs: Annotated[str, typer.Option(metavar="CRS", help="CRS of --point.")] = "EPSG:4326",
    time: Time = None,
    tag: Tags = None,
    group_by: Annotated[str | None, typer.Option(metavar="day", help="'day': one value per UTC day.")] = None,
    resampling: Annotated[str | None, typer.Option(help="near (default: the source pixel holding the point), "
                                                        "bilinear…")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV (time, records, one column per band).")] = False,
    as_json: Json = False,
) -> None:
    """The values at one point over time: one row per image (record, or day with `--group-by day`).

    Only the pixel under the point is read, one small read per file. Images without data at the point
    (their files do not cover it, or are nodata there) are left out.
    """
    if as_csv and as_json:
        raise InvalidArgument("give --csv or --json, not both")
    if group_by not in (None, "day"):
        raise InvalidArgument(f"--group-by {group_by!r}: only 'day' is supported")
    gc = state(ctx).gc
    inst, var = parse.resolve_instance(gc, instance)
    xy = parse.point(point)
    out = Output(as_json)
    with out.computing("reading"):
        ts = gc.get_timeseries(inst, point=xy, crs=crs, time=parse.time_range(time),
                               tags=parse.tag_filters(tag) or None, group_by=group_by, resampling=resampling)
    rows = series_rows(ts)
    bands = [b or "value" for b in var.bands]
    out.emit({"instance": f"{var.name}/{inst.name}", "point": list(xy), "crs": crs, "bands": bands, "series": rows})
    if as_csv:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["time", "records", *bands])
        for r in rows:
            writer.writerow([r["time"], " ".join(r["record_names"])]
                            + ["" if r["values"][b] is None else repr(r["values"][b]) for b in bands])
        typer.echo(buf.getvalue(), nl=False)
        return
    out.show(series_table(rows, bands))
    out.note(f"{len(rows)} image(s) at {xy[0]},{xy[1]} ({crs})")
