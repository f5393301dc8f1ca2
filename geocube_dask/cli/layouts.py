"""``geocube layout create|list|show``: how consolidated files are cut and laid out."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..entities import Layout
from . import parse
from .common import Json, state
from .output import Output, fmt_num, table

layout_app = typer.Typer(no_args_is_help=True, help="Layouts: the grid and tiling of consolidated files.")


def layout_dict(layout: Layout) -> dict[str, Any]:
    return {
        "name": layout.name, "grid": layout.grid, "crs": layout.crs, "resolution": layout.resolution,
        "cell_size": layout.cell_size, "origin": list(layout.origin), "block_size": layout.block_size,
        "max_records": layout.max_records, "overview_min_size": layout.overview_min_size, "pattern": layout.pattern,
        "compression": layout.compression,
    }


def _rows(layout: Layout) -> list[list[Any]]:
    return [
        ["grid", layout.grid], ["crs", layout.crs], ["resolution", fmt_num(layout.resolution)],
        ["cell size (px)", layout.cell_size], ["origin", ",".join(fmt_num(v) for v in layout.origin)],
        ["block size (px)", layout.block_size], ["records per file", layout.max_records],
        ["overviews down to (px)", {-1: "256 (default)", 0: "none"}.get(layout.overview_min_size,
                                                                       layout.overview_min_size)],
        ["interlacing pattern", layout.pattern], ["compression", layout.compression],
    ]


@layout_app.command("create")
def layout_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Layout name.")],
    grid: Annotated[str, typer.Option(metavar="regular|single|GRID", help=(
        "'regular' (square cells of --cell-size pixels), 'single' (one cell) or a stored grid's name."))]
    = "regular",
    crs: Annotated[str | None, typer.Option(metavar="CRS", help="CRS of the files, e.g. EPSG:32631.")] = None,
    resolution: Annotated[float | None, typer.Option(metavar="RES", help="Pixel size in CRS units.")] = None,
    cell_size: Annotated[int, typer.Option(metavar="PIXELS", help="Cell side in pixels.")] = 4096,
    origin: Annotated[str, typer.Option(metavar="X,Y", help="Origin of the regular grid, in CRS units.")] = "0,0",
    block_size: Annotated[int, typer.Option(metavar="PIXELS", help="Tile (block) side in the files.")] = 256,
    max_records: Annotated[int, typer.Option(metavar="N", help="Records per file at most.")] = 1000,
    overview_min_size: Annotated[int, typer.Option(metavar="PIXELS", help=(
        "Overviews down to this size (-1: 256, 0: none)."))] = -1,
    pattern: Annotated[str, typer.Option(metavar="PATTERN", help=(
        "'mucog', 'cog' or an interlacing pattern such as 'Z=0>T>R>B;Z=1:>R>T>B'."))] = "mucog",
    compression: Annotated[
        str, typer.Option(metavar="CODEC", help="lossless codec of the files: zstd, deflate, lzw, lzma, lerc…")
    ] = "zstd",
    as_json: Json = False,
) -> None:
    """Create a layout: the grid consolidated files follow and how they are tiled."""
    x, y = parse.numbers(origin, 2, "--origin", "X,Y")
    layout = state(ctx).gc.create_layout(
        name, grid, crs=crs, resolution=resolution, cell_size=cell_size, origin=(x, y), block_size=block_size,
        max_records=max_records, overview_min_size=overview_min_size, pattern=pattern, compression=compression,
    )
    out = Output(as_json)
    out.emit(layout_dict(layout))
    out.show(f"created layout {layout.name}; next: geocube consolidate VARIABLE/INSTANCE --layout {layout.name}")


@layout_app.command("list")
def layout_list(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(metavar="PATTERN", help="Name pattern (* and ?).")] = None,
    as_json: Json = False,
) -> None:
    """List layouts."""
    layouts = state(ctx).gc.list_layouts(name)
    out = Output(as_json)
    out.emit([layout_dict(lay) for lay in layouts])
    out.show(table(None, ["name", "grid", "crs", "resolution", "cell", "block", "records/file", "pattern"], [
        [lay.name, lay.grid, lay.crs, fmt_num(lay.resolution), lay.cell_size, lay.block_size, lay.max_records,
         lay.pattern] for lay in layouts]))
    out.note(f"{len(layouts)} layout(s)")


@layout_app.command("show")
def layout_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Layout name.")],
    as_json: Json = False,
) -> None:
    """Show a layout."""
    layout = state(ctx).gc.get_layout(name)
    out = Output(as_json)
    out.emit(layout_dict(layout))
    out.show(table(f"layout {layout.name}", ["", ""], _rows(layout), show_header=False))
