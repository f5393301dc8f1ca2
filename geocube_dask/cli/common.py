"""What the ``geocube`` commands share: the global state (catalogue opened on first use) and options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from ..geocube import Geocube, connect

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout (for scripts).")]
Tags = Annotated[list[str] | None, typer.Option("--tag", "--tags", metavar="KEY[=VALUE]", help=(
    "Record tag filter: KEY=VALUE, KEY=PATTERN (with * and ?) or KEY (has the tag); repeatable."))]
Time = Annotated[str | None, typer.Option(metavar="START,END", help=(
    "ISO 8601 dates/times, start inclusive, end exclusive, either may be empty; or one day YYYY-MM-DD."))]
InstanceRef = Annotated[str, typer.Option("--instance", metavar="VARIABLE/INSTANCE", help=(
    "VARIABLE/INSTANCE, or an instance id."))]
Limit = Annotated[int | None, typer.Option(metavar="N", help="At most N results (a page).")]
Page = Annotated[int, typer.Option(metavar="P", help="Page number (0-based), with --limit.")]


@dataclass
class State:
    """The global options; the catalogue is opened on first use (``cube --from-plan`` never opens it)."""

    db: str | None
    _gc: Geocube | None = None

    @property
    def gc(self) -> Geocube:
        if self._gc is None:
            self._gc = connect(self.db)
        return self._gc

    def close(self) -> None:
        if self._gc is not None:
            self._gc.close()
            self._gc = None


def state(ctx: typer.Context) -> State:
    """The State of the root command (set by the ``geocube`` callback)."""
    obj = ctx.find_root().obj
    if not isinstance(obj, State):  # a command invoked without the root callback (e.g. from Python)
        obj = ctx.find_root().obj = State(None)
    return obj


def more_hint(limit: int | None, page: int, count: int) -> str:
    """``; next page: --page N`` when a page came back full."""
    return f"; next page: --page {page + 1}" if limit is not None and count == limit else ""
