"""What the CLI prints: rich tables for people, JSON for scripts, progress bars, one-line errors.

Human output goes to stdout; with ``--json`` stdout carries exactly one JSON document and nothing else.
Progress bars go to stderr, only when stderr is a terminal (piped or captured output stays clean), and
vanish when done. Errors are one line on stderr: ``error: <what was wrong and what to do>``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
import typer
from dask.callbacks import Callback
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..entities import Dataset, DFormat, Instance, Record, Variable

# width used for tables when stdout is not a terminal (files, pipes, tests) and $COLUMNS is unset
PIPE_WIDTH = 160


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` as one line on stderr; return the Exit to raise."""
    text = " ".join(str(message).split())
    typer.echo(f"{typer.style('error:', fg='red', bold=True)} {text}", err=True)
    return typer.Exit(code)


def jsonable(value: Any) -> Any:
    """Plain JSON values: NaN/inf become null, datetimes ISO 8601 (UTC, ``Z``), numpy scalars numbers."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return fmt_time(value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    return value


class Output:
    """One command's output channel: human (rich) or JSON."""

    def __init__(self, as_json: bool = False) -> None:
        self.as_json = as_json
        self.out = Console(highlight=False, markup=False, emoji=False)
        if not self.out.is_terminal and not os.environ.get("COLUMNS"):
            self.out.width = PIPE_WIDTH
        self.err = Console(stderr=True, highlight=False, markup=False, emoji=False)

    def show(self, *things: Any, style: str | None = None) -> None:
        """Print for people (nothing in JSON mode)."""
        if not self.as_json:
            self.out.print(*things, style=style, soft_wrap=True)

    def note(self, text: str) -> None:
        """A dim side remark for people."""
        self.show(text, style="dim")

    def emit(self, data: Any) -> None:
        """Print the JSON document (JSON mode only)."""
        if self.as_json:
            typer.echo(json.dumps(jsonable(data), indent=2, allow_nan=False, ensure_ascii=False))

    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Callable[[int, int], None]]:
        """A progress bar on stderr; yields ``update(done, total)``."""
        with self._bar() as bar:
            task = bar.add_task(description, total=total)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield update

    @contextmanager
    def computing(self, description: str) -> Iterator[None]:
        """A progress bar on stderr following the dask computations run inside the block."""
        with self._bar() as bar:
            task = bar.add_task(description, total=None)
            with DaskProgress(bar, task):
                yield

    def _bar(self) -> Progress:
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.err,
            transient=True,
            disable=not self.err.is_terminal,
        )


class DaskProgress(Callback):
    """Reports the tasks finished by dask's local schedulers to a rich progress bar."""

    def __init__(self, bar: Progress, task: TaskID) -> None:
        super().__init__()
        self._bar = bar
        self._task = task

    def _start_state(self, dsk: Any, state: dict[str, Any]) -> None:
        done = len(state["finished"])
        total = done + sum(len(state[k]) for k in ("ready", "waiting", "running"))
        self._bar.update(self._task, total=total, completed=done)

    def _posttask(self, key: Any, result: Any, dsk: Any, state: dict[str, Any], worker_id: Any) -> None:
        self._bar.update(self._task, completed=len(state["finished"]))


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], **kw: Any) -> Table:
    """A rich table of plain text cells (``None`` shows as an empty cell)."""
    t = Table(title=title, title_justify="left", title_style="bold", header_style="bold", **kw)
    for c in columns:
        t.add_column(c, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


# --- formatting -------------------------------------------------------------------------------------


def fmt_num(value: float | None) -> str:
    """``10000`` rather than ``10000.0``; ``nan``; up to 6 significant digits."""
    if value is None:
        return "none"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def fmt_value(value: float | None) -> str:
    """A cube value for a table: empty for nodata, else up to 6 significant digits."""
    return "" if value is None else f"{value:.6g}"


def fmt_dformat(fmt: DFormat) -> str:
    return f"{fmt.dtype} nodata={fmt_num(fmt.nodata)} [{fmt_num(fmt.min)}, {fmt_num(fmt.max)}]"


def fmt_time(value: datetime | np.datetime64) -> str:
    """ISO 8601 in UTC with a ``Z`` (naive values are UTC)."""
    if isinstance(value, np.datetime64):
        value = datetime.fromisoformat(str(np.datetime_as_string(value, unit="s")))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def fmt_catalogue(url: str) -> str:
    """A catalogue URL for people: ``SQLite file /path/geocube.db``, or the URL (password hidden)."""
    prefix, sep, path = url.partition(":///")
    if prefix.startswith("sqlite") and sep:
        return f"SQLite file /{path.lstrip('/')}" if path.startswith("/") else f"SQLite file {path}"
    return url


def fmt_tags(tags: dict[str, str] | Any) -> str:
    return " ".join(f"{k}={v}" for k, v in dict(tags).items())


def lonlat_bounds(ds: Dataset) -> tuple[float, float, float, float] | None:
    """The dataset footprint's (lon_min, lat_min, lon_max, lat_max)."""
    if not ds.footprint_4326_wkt:
        return None
    return tuple(round(v, 6) for v in shapely.from_wkt(ds.footprint_4326_wkt).bounds)  # type: ignore[return-value]


def fmt_lonlat(b: Sequence[float] | None) -> str:
    if b is None:
        return ""
    return f"{b[0]:.4f},{b[1]:.4f} → {b[2]:.4f},{b[3]:.4f}"


def fmt_resolution(transform: Sequence[float]) -> str:
    xres, yres = abs(transform[0]), abs(transform[4])
    return fmt_num(xres) if math.isclose(xres, yres) else f"{fmt_num(xres)}×{fmt_num(yres)}"


# --- entities as JSON -------------------------------------------------------------------------------


def variable_dict(v: Variable, instances: Sequence[Instance] | None = None) -> dict[str, Any]:
    out = {
        "id": v.id, "name": v.name, "dformat": v.dformat.to_json(), "bands": list(v.bands), "unit": v.unit,
        "description": v.description, "palette": v.palette, "resampling": v.resampling,
    }
    if instances is not None:
        out["instances"] = [i.name for i in instances]
    return out


def instance_dict(i: Instance, variable: str | None = None) -> dict[str, Any]:
    out = {"id": i.id, "name": i.name, "variable_id": i.variable_id, "metadata": dict(i.metadata)}
    if variable is not None:
        out["variable"] = variable
    return out


def record_dict(r: Record) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "datetime": fmt_time(r.datetime), "tags": dict(r.tags), "aoi_id": r.aoi_id}


def dataset_dict(d: Dataset) -> dict[str, Any]:
    return {
        "id": d.id, "record_id": d.record_id, "instance_id": d.instance_id, "uri": d.uri, "subdir": d.subdir,
        "bands": list(d.bands), "dformat": d.dformat.to_json(), "real_min": d.real_min, "real_max": d.real_max,
        "exponent": d.exponent, "status": d.status.value, "crs": d.crs, "transform": list(d.transform),
        "width": d.width, "height": d.height, "overviews": [list(o) for o in d.overviews],
        "lonlat_bounds": lonlat_bounds(d),
    }


# --- timeseries ---------------------------------------------------------------------------------------


def _value(v: np.generic, nodata: float | None) -> float | int | None:
    """A cube value as a plain number (float32 at its shortest exact text), None for nodata/NaN."""
    if v.dtype.kind == "f":
        if np.isnan(v) or (nodata is not None and v == nodata):
            return None
        return float(str(v)) if v.dtype == np.float32 else float(v)
    if nodata is not None and not math.isnan(nodata) and v == nodata:
        return None
    return int(v)


def series_rows(ts: Any) -> list[dict[str, Any]]:
    """A computed ``(time, band)`` timeseries as rows: time, record ids/names, ``{band: value or None}``."""
    fill = ts.attrs.get("_FillValue", ts.rio.nodata)
    nodata = None if fill is None else float(fill)
    bands = [str(b) or "value" for b in ts.band.values]
    values = np.asarray(ts.values)
    return [
        {
            "time": fmt_time(t),
            "record_ids": str(ts.record_ids.values[i]).split(","),
            "record_names": str(ts.record_names.values[i]).split(","),
            "values": {b: _value(values[i, j], nodata) for j, b in enumerate(bands)},
        }
        for i, t in enumerate(ts.time.values)
    ]


def series_table(rows: Sequence[dict[str, Any]], bands: Sequence[str], title: str | None = None) -> Table:
    cells = [
        [r["time"], ", ".join(r["record_names"])] + [fmt_value(r["values"][b]) for b in bands]
        for r in rows
    ]
    return table(title, ["time", "records", *bands], cells)
