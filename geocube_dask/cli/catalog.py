"""``geocube variable|instance|record|dataset|aoi …`` and ``geocube tidy``: catalogue entities and clean-up."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import shapely.geometry
import typer

from ..errors import GeocubeError, InvalidArgument
from ..geocube import Geocube
from . import parse
from .common import Json, Limit, Page, Tags, Time, more_hint, state
from .output import (
    Output,
    dataset_dict,
    fmt_dformat,
    fmt_lonlat,
    fmt_resolution,
    fmt_tags,
    fmt_time,
    instance_dict,
    lonlat_bounds,
    record_dict,
    table,
    variable_dict,
)

variable_app = typer.Typer(no_args_is_help=True, help="Variables: what is measured (dformat, bands, unit).")
instance_app = typer.Typer(no_args_is_help=True, help="Instances: versions of a variable that datasets belong to.")
record_app = typer.Typer(no_args_is_help=True, help="Records: dated acquisitions with tags and a footprint.")
dataset_app = typer.Typer(no_args_is_help=True, help="Datasets: indexed files (or bands of files).")
aoi_app = typer.Typer(no_args_is_help=True, help="AOIs: the lon/lat footprints records point to (stored once).")


@variable_app.command("create")
def variable_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Variable name (letters, digits, - : _ and / between parts).")],
    dtype: Annotated[str, typer.Option(metavar="DTYPE", help=(
        "uint8, int8, uint16, int16, uint32, int32, float32 or float64."))],
    vmin: Annotated[float, typer.Option("--min", metavar="VALUE", help="Smallest meaningful value.")],
    vmax: Annotated[float, typer.Option("--max", metavar="VALUE", help="Largest meaningful value.")],
    nodata: Annotated[str | None, typer.Option(metavar="VALUE", help=(
        "No-data value (nan allowed; default nan for floats)."))] = None,
    bands: Annotated[str, typer.Option(metavar="NAMES", help=(
        "Band names, comma-separated, e.g. B2,B3,B4 (default: one band)."))] = "",
    unit: Annotated[str, typer.Option(metavar="TEXT", help="Unit of the values.")] = "",
    description: Annotated[str, typer.Option(metavar="TEXT", help="Free text.")] = "",
    resampling: Annotated[str, typer.Option(metavar="NAME", help=(
        "Default resampling (near, bilinear, cubic, average…)."))] = "near",
    palette: Annotated[str | None, typer.Option(metavar="NAME", help="Name of a palette (one-band variables).")] = None,
    as_json: Json = False,
) -> None:
    """Create a variable: its values' format (dtype, nodata, min, max) and bands never change."""
    if nodata is None:
        if not dtype.startswith("float"):
            raise InvalidArgument(f"--nodata is required for an integer dtype ({dtype}): e.g. --nodata 0")
        nodata = "nan"
    gc = state(ctx).gc
    var = gc.create_variable(name, dformat=(dtype, nodata, vmin, vmax), bands=parse.band_names(bands), unit=unit,
                             description=description, palette=palette, resampling=resampling)
    out = Output(as_json)
    out.emit(variable_dict(var, []))
    out.show(f"created variable {var.name} ({fmt_dformat(var.dformat)}, bands {','.join(var.bands) or '-'}, "
             f"id {var.id}); next: geocube instance create {var.name} master")


@variable_app.command("list")
def variable_list(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(metavar="PATTERN", help="Name pattern (* and ?).")] = None,
    ignore_case: Annotated[bool, typer.Option("--ignore-case", "-i", help="Case-insensitive name match.")] = False,
    as_json: Json = False,
) -> None:
    """List variables (with their instances)."""
    gc = state(ctx).gc
    variables = gc.list_variables(name=name, case_insensitive=ignore_case)
    by_var: dict[str, list[Any]] = {}
    for inst in gc.list_instances():
        by_var.setdefault(inst.variable_id, []).append(inst)
    out = Output(as_json)
    out.emit([variable_dict(v, by_var.get(v.id, [])) for v in variables])
    out.show(table(None, ["name", "dformat", "bands", "unit", "resampling", "palette", "instances", "description"], [
        [v.name, fmt_dformat(v.dformat), ",".join(v.bands), v.unit, v.resampling, v.palette,
         ",".join(i.name for i in by_var.get(v.id, [])), v.description] for v in variables]))
    out.note(f"{len(variables)} variable(s)")


@instance_app.command("create")
def instance_create(
    ctx: typer.Context,
    variable: Annotated[str, typer.Argument(help="Variable name or id.")],
    name: Annotated[str, typer.Argument(help="Instance name (no '/').")],
    meta: Annotated[list[str] | None, typer.Option(metavar="KEY=VALUE", help="Metadata KEY=VALUE; repeatable.")] = None,
    as_json: Json = False,
) -> None:
    """Create an instance (a version or flavour) of a variable."""
    gc = state(ctx).gc
    var = parse.get_variable(gc, variable)
    inst = gc.instantiate(var, name, metadata=parse.pairs(meta, "--meta"))
    out = Output(as_json)
    out.emit(instance_dict(inst, var.name))
    out.show(f"created instance {var.name}/{inst.name} (id {inst.id})")


@instance_app.command("list")
def instance_list(
    ctx: typer.Context,
    variable: Annotated[str | None, typer.Argument(help="Only this variable's instances (name or id).")] = None,
    as_json: Json = False,
) -> None:
    """List instances."""
    gc = state(ctx).gc
    var = parse.get_variable(gc, variable) if variable is not None else None
    names = {v.id: v.name for v in ([var] if var else gc.list_variables())}
    instances = gc.list_instances(var)
    out = Output(as_json)
    out.emit([instance_dict(i, names.get(i.variable_id)) for i in instances])
    out.show(table(None, ["instance", "id", "metadata"], [
        [f"{names.get(i.variable_id)}/{i.name}", i.id, fmt_tags(i.metadata)] for i in instances]))
    out.note(f"{len(instances)} instance(s)")


# --- records and datasets -----------------------------------------------------------------------------


@record_app.command("list")
def record_list(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(metavar="PATTERN", help="Name pattern (* and ?).")] = None,
    ignore_case: Annotated[bool, typer.Option("--ignore-case", "-i", help="Case-insensitive name/tag values.")]
    = False,
    tag: Tags = None,
    time: Time = None,
    aoi: Annotated[str | None, typer.Option(metavar="BBOX|WKT", help=(
        "LON_MIN,LAT_MIN,LON_MAX,LAT_MAX or WKT (EPSG:4326)."))] = None,
    limit: Limit = None,
    page: Page = 0,
    as_json: Json = False,
) -> None:
    """List records matching every filter, by datetime."""
    gc = state(ctx).gc
    records = gc.list_records(
        name=name, tags=parse.tag_filters(tag), time=parse.time_range(time),
        aoi=None if aoi is None else parse.area(aoi), case_insensitive=ignore_case, limit=limit, page=page,
    )
    out = Output(as_json)
    out.emit([record_dict(r) for r in records])
    out.show(table(None, ["name", "datetime", "tags", "id"],
                   [[r.name, fmt_time(r.datetime), fmt_tags(r.tags), r.id] for r in records]))
    out.note(f"{len(records)} record(s){more_hint(limit, page, len(records))}")


@dataset_app.command("list")
def dataset_list(
    ctx: typer.Context,
    instance: Annotated[str | None, typer.Option(metavar="VARIABLE/INSTANCE", help=(
        "VARIABLE/INSTANCE or an instance id."))] = None,
    record: Annotated[list[str] | None, typer.Option(metavar="ID|PATTERN", help=(
        "Record id, or record name pattern; repeatable."))] = None,
    status: Annotated[list[str] | None, typer.Option(metavar="STATUS", help=(
        "ACTIVE, INACTIVE or TODELETE; repeatable."))] = None,
    uri: Annotated[str | None, typer.Option(metavar="URI", help="File uri, or a pattern (* and ?).")] = None,
    limit: Limit = None,
    page: Page = 0,
    as_json: Json = False,
) -> None:
    """List datasets (indexed files), by id."""
    gc = state(ctx).gc
    inst = parse.resolve_instance(gc, instance)[0] if instance is not None else None
    record_ids = None if not record else _record_ids(gc, record)
    datasets = gc.list_datasets(instance=inst, records=record_ids, status=status or None, uri=uri, limit=limit,
                                page=page)
    names = _instance_names(gc)
    records: dict[str, Any] = {}
    for d in datasets:
        if d.record_id not in records:
            records[d.record_id] = gc.get_record(d.record_id)
    out = Output(as_json)
    out.emit([{**dataset_dict(d), "instance": names.get(d.instance_id), "record": records[d.record_id].name}
              for d in datasets])
    out.show(table(None, ["id", "instance", "record", "status", "uri", "CRS", "size (px)", "res", "bands",
                          "lon/lat bounds"], [
        [d.id, names.get(d.instance_id), records[d.record_id].name, d.status.value, d.uri, d.crs,
         f"{d.width}×{d.height}", fmt_resolution(d.transform), ",".join(map(str, d.bands)),
         fmt_lonlat(lonlat_bounds(d))] for d in datasets]))
    out.note(f"{len(datasets)} dataset(s){more_hint(limit, page, len(datasets))}")


# --- AOIs and tidying -----------------------------------------------------------------------------------


@aoi_app.command("list")
def aoi_list(
    ctx: typer.Context,
    aoi: Annotated[str | None, typer.Option(metavar="BBOX|WKT", help=(
        "Only AOIs meeting LON_MIN,LAT_MIN,LON_MAX,LAT_MAX or a WKT geometry (EPSG:4326)."))] = None,
    limit: Limit = None,
    page: Page = 0,
    as_json: Json = False,
) -> None:
    """List AOIs by id (JSON: with their GeoJSON geometry)."""
    gc = state(ctx).gc
    found = gc.list_aois(aoi=None if aoi is None else parse.area(aoi), limit=limit, page=page)
    out = Output(as_json)
    out.emit([{"id": a.id, "geometry": shapely.geometry.mapping(a.geometry)} for a in found])
    out.show(table(None, ["id", "polygons", "lon/lat bounds"], [
        [a.id, len(a.geometry.geoms), fmt_lonlat(a.geometry.bounds)] for a in found]))
    out.note(f"{len(found)} AOI(s){more_hint(limit, page, len(found))}")


@aoi_app.command("delete")
def aoi_delete(
    ctx: typer.Context,
    aoi_id: Annotated[int, typer.Argument(metavar="ID", help="AOI id (see 'geocube aoi list').")],
    as_json: Json = False,
) -> None:
    """Delete an AOI that no record uses."""
    state(ctx).gc.delete_aoi(aoi_id)
    out = Output(as_json)
    out.emit({"deleted": aoi_id})
    out.show(f"deleted AOI {aoi_id}")


def tidy(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be deleted.")] = False,
    records: Annotated[bool, typer.Option("--records/--no-records", help="Records without datasets.")] = True,
    aois: Annotated[bool, typer.Option("--aois/--no-aois", help="AOIs no record uses.")] = True,
    containers: Annotated[bool, typer.Option("--containers/--no-containers", help=(
        "Containers (files) without datasets; the files are never deleted by this command."))] = True,
    instances: Annotated[bool, typer.Option("--instances", help="Also instances without datasets.")] = False,
    variables: Annotated[bool, typer.Option("--variables", help="Also variables without instances.")] = False,
    layouts: Annotated[bool, typer.Option("--layouts", help="Also layouts nothing refers to.")] = False,
    grids: Annotated[bool, typer.Option("--grids", help="Also stored grids no layout uses.")] = False,
    as_json: Json = False,
) -> None:
    """Delete from the catalogue what nothing uses any more, in one transaction.

    Empty *managed* containers are files the geocube wrote: their paths are listed so that you can delete
    the files; files you indexed yourself are never touched.
    """
    report = state(ctx).gc.tidy(dry_run, records=records, aois=aois, containers=containers, instances=instances,
                                variables=variables, layouts=layouts, grids=grids)
    out = Output(as_json)
    out.emit({**dataclasses.asdict(report), "counts": report.counts})
    verb = "would delete" if dry_run else "deleted"
    out.show(table(None, ["kind", verb], [[k.replace("_", " "), n] for k, n in report.counts.items() if n]))
    if report.containers:
        out.show(("managed files to delete after this tidy: " if dry_run else "managed files to delete: ")
                 + " ".join(report.containers))
    out.note(f"{verb} {report.total} row(s)" + ("; nothing was changed" if dry_run else ""))


def _record_ids(gc: Geocube, refs: list[str]) -> list[str]:
    ids: list[str] = []
    for ref in refs:
        try:
            ids.append(gc.get_record(ref).id)
            continue
        except GeocubeError:
            pass
        found = gc.list_records(name=ref)
        if not found:
            raise InvalidArgument(f"--record {ref!r}: no record has this id or name (see 'geocube record list')")
        ids += [r.id for r in found]
    return ids


def _instance_names(gc: Geocube) -> dict[str, str]:
    variables = {v.id: v.name for v in gc.list_variables()}
    return {i.id: f"{variables.get(i.variable_id)}/{i.name}" for i in gc.list_instances()}
