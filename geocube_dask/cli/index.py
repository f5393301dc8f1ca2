"""``geocube index``: files (or STAC items) → records and datasets of one instance, in one transaction."""

from __future__ import annotations

from dataclasses import replace
from time import perf_counter
from typing import Annotated, Any

import typer

from ..catalog.ingest.requests import IndexRequest, NewRecord
from ..entities import utc_datetime
from ..errors import InvalidArgument
from ..geocube import Geocube
from . import parse
from .common import Json, state
from .output import Output, dataset_dict, fmt_resolution, fmt_time, table


def index(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(metavar="PATH_OR_URI", help=(
        "Files to index: local paths (a directory: its .tif/.tiff/.jp2/.vrt files), file://, http(s)://, s3://…; "
        "with --stac, STAC Item/ItemCollection JSON files or URLs."))],
    instance: Annotated[str, typer.Option(metavar="INSTANCE", help=(
        "Instance name (with --variable), VARIABLE/INSTANCE, or an instance id."))],
    variable: Annotated[str | None, typer.Option(metavar="VARIABLE", help="Variable name or id.")] = None,
    record_name: Annotated[str | None, typer.Option(metavar="NAME", help=(
        "Record name for every file (files sharing name, date and tags form one record, e.g. the tiles of one "
        "acquisition). Default: each file's name without extension."))] = None,
    when: Annotated[str | None, typer.Option("--datetime", metavar="ISO", help=(
        "Acquisition datetime of every file (ISO 8601, UTC unless an offset is given). Default: the first "
        "date in each file name (YYYYMMDD, YYYYMMDDTHHMMSS, YYYY-MM-DD…); a file without one is an error."))]
    = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "--tags", metavar="KEY=VALUE", help=(
        "Record tag; repeatable."))] = None,
    bands: Annotated[str | None, typer.Option(metavar="1,2,3", help=(
        "1-based band indexes in the file, one per variable band (default: the first ones)."))] = None,
    dformat: Annotated[str | None, typer.Option(metavar="DTYPE,NODATA,MIN,MAX", help=(
        "Stored values' DTYPE,NODATA,MIN,MAX, e.g. uint16,0,0,10000 (default: from the file header; 'none' "
        "nodata: no nodata)."))] = None,
    real_min: Annotated[float | None, typer.Option(metavar="VALUE", help=(
        "Variable value that the dformat's MIN stands for (default: the variable's min)."))] = None,
    real_max: Annotated[float | None, typer.Option(metavar="VALUE", help=(
        "Variable value that the dformat's MAX stands for (default: the variable's max)."))] = None,
    exponent: Annotated[float, typer.Option(metavar="E", help="Mapping exponent (> 0; 1 is linear).")] = 1.0,
    subdir: Annotated[str, typer.Option(metavar="SUBDIR", help=(
        "Sub-image of a multi-image file, e.g. GTIFF_DIR:2."))] = "",
    stac: Annotated[bool, typer.Option("--stac", help=(
        "The arguments are STAC Items/ItemCollections: index their --asset(s)."))] = False,
    asset: Annotated[list[str] | None, typer.Option(metavar="KEY", help=(
        "With --stac: the key of an asset to index; repeatable."))] = None,
    as_json: Json = False,
) -> None:
    """Index files as datasets of one instance: one record per file by default, all in one transaction.

    **Records.** Each file gets the record named after the file (its name without extension, characters
    other than letters, digits, `-`, `:` and `_` replaced by `_`), or `--record-name` for all of
    them; dated `--datetime`, else by the first date in its file name (`20240105`, `20240105T103000`,
    `2024-01-05`, `2024-01-05T10:30:00`; UTC); tagged with every `--tag`. Files with the same record
    name, date and tags share one record (e.g. the tiles of one acquisition); a record that already
    exists is reused. A record's AOI is the union of its files' footprints.

    **Datasets.** Each file's header is read (CRS, footprint, overviews, dtype) and checked against the
    variable, then all records and datasets are created in one transaction: all or nothing. Indexing a
    file again is a no-op.

    **STAC** (`--stac`): each item is a record (name from the item id, datetime and tags from its
    properties, AOI from its geometry) and each `--asset` a dataset; `--tag` adds tags and
    `--bands`/`--dformat`/`--real-min`/`--real-max`/`--exponent` override the STAC raster metadata.
    """
    gc = state(ctx).gc
    inst, var = parse.resolve_instance(gc, instance, variable)
    fmt = parse.dformat(dformat)
    chosen = parse.band_indexes(bands)
    tags = parse.pairs(tag, "--tag")
    if stac:
        if record_name is not None or when is not None or subdir:
            raise InvalidArgument("--stac takes records from the STAC items: drop --record-name/--datetime/--subdir")
        if not asset:
            raise InvalidArgument("--stac needs at least one --asset KEY (the asset to index, e.g. --asset visual)")
        requests = _stac_requests(gc, paths, asset, inst.id, chosen, tags, fmt, real_min, real_max, exponent)
    else:
        if asset:
            raise InvalidArgument("--asset goes with --stac")
        requests = []
        for uri in parse.expand_paths(paths):
            dt = when or parse.datetime_in_name(uri)
            if dt is None:
                raise InvalidArgument(
                    f"no date in the file name {parse.file_name(uri)!r}: give --datetime (ISO 8601, e.g. "
                    "2024-01-05T10:30:00Z) or name files with their date (…_20240105T103000…)"
                )
            record = NewRecord(record_name or parse.record_name_for(uri), dt, tags)
            requests.append(IndexRequest(uri=uri, record=record, instance=inst.id, bands=chosen, dformat=fmt,
                                         real_min=real_min, real_max=real_max, exponent=exponent, subdir=subdir))
    out = Output(as_json)
    start = perf_counter()
    with out.progress("reading file headers", len(requests)) as update:
        datasets = gc.index_datasets(requests, progress=update)
    seconds = perf_counter() - start
    recs = [r.record for r in requests]
    n_records = len({d.record_id for d in datasets})
    out.emit({"instance": f"{var.name}/{inst.name}", "records": n_records, "seconds": round(seconds, 3),
              "datasets": [{**dataset_dict(d), "record": r.name} for d, r in zip(datasets, recs, strict=True)]})
    out.show(table(None, ["id", "record", "datetime", "file", "CRS", "size (px)", "res", "bands"], [
        [d.id, r.name, fmt_time(utc_datetime(r.datetime)), d.uri, d.crs, f"{d.width}×{d.height}",
         fmt_resolution(d.transform), ",".join(map(str, d.bands))] for d, r in zip(datasets, recs, strict=True)]))
    out.show(f"indexed {len(datasets)} dataset(s) of {var.name}/{inst.name} for {n_records} record(s) in "
             f"{seconds:.1f} s (files already indexed are left as they were)")


def _stac_requests(
    gc: Geocube, paths: list[str], assets: list[str], instance_id: str, bands: tuple[int, ...] | None,
    tags: dict[str, str], fmt: Any, real_min: float | None, real_max: float | None, exponent: float,
) -> list[IndexRequest]:
    from ..catalog.ingest.stac import catalogue_variables, stac_index_requests

    lookup = catalogue_variables(gc)
    requests: list[IndexRequest] = []
    for path in paths:
        requests += stac_index_requests(path, {a: (instance_id, bands) for a in assets}, variables=lookup)
    changed = []
    for r in requests:
        rec = r.record
        if tags and isinstance(rec, NewRecord):
            rec = replace(rec, tags={**(rec.tags or {}), **tags})
        changed.append(replace(
            r, record=rec, dformat=fmt if fmt is not None else r.dformat,
            real_min=real_min if real_min is not None else r.real_min,
            real_max=real_max if real_max is not None else r.real_max, exponent=exponent,
        ))
    return changed
