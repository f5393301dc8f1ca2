"""The ``geocube`` command line (typer): catalogue, indexing, cubes and timeseries from a shell.

Every command prints rich tables for people, or with ``--json`` one JSON document on stdout and
nothing else. Any ``GeocubeError`` (and any file-system error) ends the command with exit code 1 and
one line on stderr, ``error: …``, saying what was wrong and what to do; usage errors exit with 2.
The catalogue is ``--db URL``, else ``$GEOCUBE_DB``, else the SQLite file ``./geocube.db``; it is only
opened by the commands that need it (``geocube cube --from-plan`` needs none).

The commands live in ``cli.catalog`` (variable, instance, record, dataset, aoi, tidy), ``cli.index`` (index),
``cli.cube`` (cube, timeseries), ``cli.layouts`` (layout), ``cli.jobs`` (consolidate, job) and
``cli.demo`` (demo), ``cli.cluster`` (cluster local|manifest), ``cli.submit`` (submit),
``cli.serve`` (serve, token); this module assembles them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ..errors import GeocubeError
from .catalog import aoi_app, dataset_app, instance_app, record_app, tidy, variable_app
from .cluster import cluster_app
from .common import Json, State, state
from .cube import cube, timeseries
from .index import index
from .jobs import consolidate, job_app
from .layouts import layout_app
from .output import Output, fail, fmt_catalogue, table
from .serve import serve, token_app
from .submit import submit_app


class GeocubeGroup(TyperGroup):
    """Turns GeocubeError and OSError into one ``error:`` line on stderr and exit code 1."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GeocubeError as exc:
            raise fail(str(exc)) from None
        except BrokenPipeError:  # `geocube … | head`: the reader left, stop quietly
            _drop_stdout()
            raise typer.Exit(1) from None
        except OSError as exc:
            raise fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)) from None


def _drop_stdout() -> None:
    """Point stdout at /dev/null so that flushing it at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (captured output)
        pass


app = typer.Typer(
    name="geocube", cls=GeocubeGroup, no_args_is_help=True, add_completion=False, rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False, context_settings={"help_option_names": ["-h", "--help"]},
    help="A Geocube: index images into a catalogue, get cubes and timeseries over them. "
         "Start with 'geocube demo'.",
)


@app.callback()
def main(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option(
        "--db", envvar="GEOCUBE_DB", show_envvar=True, metavar="URL",
        help="Catalogue: sqlite:///file.db, a file path, or postgresql+psycopg2://user:pw@host/db "
             "(default: ./geocube.db)")] = None,
) -> None:
    """Global options."""
    ctx.obj = State(db)
    ctx.call_on_close(ctx.obj.close)


# --- init, demo ---------------------------------------------------------------------------------------


@app.command()
def init(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Argument(help="Catalogue URL (default: --db, $GEOCUBE_DB or ./geocube.db).")]
    = None,
    as_json: Json = False,
) -> None:
    """Create a catalogue, or bring an existing one to this version's schema, and say what it is."""
    from ..catalog.db.engine import database_url
    from ..catalog.db.migrate import head_revision
    from ..geocube import default_url

    st = state(ctx)
    if url is not None:
        st.db = url
    parsed = database_url(st.db or default_url())
    is_sqlite = parsed.get_backend_name() == "sqlite"
    created = None if not is_sqlite else not os.path.exists(parsed.database or "")
    gc = st.gc
    variables, instances = gc.list_variables(), gc.list_instances()
    out = Output(as_json)
    info = {"url": gc.url, "backend": gc.backend, "created": created, "schema_revision": head_revision(),
            "variables": len(variables), "instances": len(instances)}
    out.emit(info)
    status = {True: "created", False: "existing", None: "ready"}[created]
    out.show(table(None, ["", ""], [
        ["catalogue", f"{fmt_catalogue(gc.url)} ({status})"],
        ["backend", "SQLite" if is_sqlite else "PostgreSQL/PostGIS"],
        ["schema", f"revision {info['schema_revision']} (up to date)"],
        ["contents", f"{len(variables)} variable(s), {len(instances)} instance(s)"],
    ], show_header=False, box=None))


@app.command()
def demo(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Option("--dir", metavar="DIR", help="Where the demo files go.")]
    = Path("geocube-demo"),
    size: Annotated[int, typer.Option(metavar="PIXELS", help=(
        "Pixels per side of the 10 m tiles (at least 32; the default takes a few seconds)."))] = 1024,
    as_json: Json = False,
) -> None:
    """Write a small synthetic collection, index it, compute a cube, a quicklook and a timeseries.

    Ten deterministic COGs (3 dates of 4-band tiles in EPSG:32631 and EPSG:32632, a Lambert-93 scene;
    uint16 0..10000 meaning reflectance 0..1, with nodata swaths and overviews) are written under
    `--dir` and indexed as `reflectance/demo`; a cube in EPSG:32631 at 20 m (one image per day) is
    computed, a quicklook PNG of one date (RGB = B4,B3,B2) written under `--dir`, and a point
    timeseries read. Running it again rewrites nothing and indexes nothing twice.
    """
    from .demo import run_demo

    out = Output(as_json)
    out.emit(run_demo(out, state(ctx).gc, directory, size))


app.add_typer(variable_app, name="variable")
app.add_typer(instance_app, name="instance")
app.add_typer(record_app, name="record")
app.add_typer(dataset_app, name="dataset")
app.add_typer(aoi_app, name="aoi")
app.command()(tidy)
app.command()(index)
app.command()(cube)
app.command()(timeseries)
app.add_typer(layout_app, name="layout")
app.add_typer(job_app, name="job")
app.command()(consolidate)
app.add_typer(cluster_app, name="cluster")
app.add_typer(submit_app, name="submit")
app.command()(serve)
app.add_typer(token_app, name="token")
