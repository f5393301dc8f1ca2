"""``geocube consolidate`` and ``geocube job list|show|next|retry|cancel|clean``.

A job runs in the process of the command that drives it (``consolidate``, ``next``, ``retry``) on an
in-process dask cluster of threads, or on the ``distributed`` scheduler given by ``--scheduler``;
``--progress`` shows a progress bar of the files written. Whatever stops the command, the job stays in
the catalogue: ``geocube job retry NAME`` takes it up again once its driver is gone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from ..jobs import Job
from . import parse
from .common import Json, Tags, Time, state
from .output import Output, fmt_time, table

job_app = typer.Typer(no_args_is_help=True, help=(
    "Jobs: consolidations, deletions and exports, their states, tasks and logs."))

ShowProgress = Annotated[bool, typer.Option("--progress", help="Show a progress bar of the files (on stderr).")]
Scheduler = Annotated[str | None, typer.Option(metavar="ADDRESS", help=(
    "A dask distributed scheduler (tcp://host:8786) to run on (default: threads in this process)."))]


# the options that say which consolidation job to make (geocube consolidate, geocube submit consolidate)
InstanceArg = Annotated[str, typer.Argument(metavar="VARIABLE/INSTANCE", help="VARIABLE/INSTANCE or an instance id.")]
LayoutOpt = Annotated[str, typer.Option(metavar="NAME", help="The layout of the files (see 'geocube layout list').")]
RecordOpt = Annotated[list[str] | None, typer.Option(metavar="ID|PATTERN", help=(
    "Record id, or record name pattern; repeatable (default: every record matching --tag/--time)."))]
AoiOpt = Annotated[str | None, typer.Option(metavar="BBOX|WKT", help=(
    "Only the cells over LON_MIN,LAT_MIN,LON_MAX,LAT_MAX or a WKT geometry (EPSG:4326)."))]
NameOpt = Annotated[str | None, typer.Option(metavar="NAME", help="Job name (default: generated).")]
StorageOpt = Annotated[str | None, typer.Option(metavar="URI", help=(
    "Where the files go: a folder or s3://bucket/prefix (default: $GEOCUBE_STORAGE, else ./geocube-data)."))]
LevelOpt = Annotated[str, typer.Option("--level", metavar="LEVEL", help=(
    "async, step-by-step-critical, step-by-step-major or step-by-step-all: where the job waits for "
    "'geocube job next'."))]


def job_dict(job: Job, details: bool = False) -> dict[str, Any]:
    info = job.info
    tasks = job.tasks
    out: dict[str, Any] = {
        "id": info.id, "name": info.name, "type": info.type.value, "state": info.state.value,
        "execution_level": info.execution_level.value, "waiting": info.waiting, "created": fmt_time(info.created),
        "updated": fmt_time(info.updated), "owner": info.owner,
        "tasks": dict(sorted(Counter(t.state.value for t in tasks).items())),
    }
    if details:
        out["payload"] = {k: v for k, v in info.payload.items() if k not in ("settings", "datasets", "records", "plan")}
        out["task_list"] = [{"key": t.key, "state": t.state.value, "uri": t.plan.get("uri"), "error": t.error}
                            for t in tasks]
        out["logs"] = [{"time": fmt_time(e.time), "level": e.level, "message": e.message} for e in job.logs]
    return out


def _fmt_tasks(counts: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in counts.items()) or "-"


@contextmanager
def _client(address: str | None) -> Iterator[Any]:
    if address is None:
        yield None
        return
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        yield client


def _drive(out: Output, show: bool, action: Callable[[Any, Any], Job], address: str | None) -> Job:
    with _client(address) as client:
        if not show:
            return action(client, None)
        with out.progress("consolidating (files)") as update:
            return action(client, update)


def _report(out: Output, job: Job) -> None:
    info = job.info
    out.emit(job_dict(job))
    wait = " (waiting: geocube job next " + info.name + ")" if info.waiting else ""
    out.show(f"job {info.name}: {info.state.value}{wait}")
    failed = [t for t in job.tasks if t.error]
    for t in failed[:5]:
        out.show(f"  task {t.key} failed: {t.error}", style="red")
    if failed:
        out.note(f"{len(failed)} failed task(s); fix the cause, then: geocube job retry {info.name}")


def create_consolidation(
    gc: Any, instance: str, layout: str, record: list[str] | None, tag: list[str] | None, time: str | None,
    aoi: str | None, name: str | None, storage: str | None, level: str,
) -> Job:
    """The consolidation job the options of ``geocube consolidate`` (and ``geocube submit consolidate``) ask for."""
    from .catalog import _record_ids

    inst = parse.resolve_instance(gc, instance)[0]
    return gc.consolidate(
        inst, layout, records=None if not record else _record_ids(gc, record), tags=parse.tag_filters(tag),
        time=parse.time_range(time), aoi=None if aoi is None else parse.area(aoi), name=name, storage_uri=storage,
        execution_level=level,
    )


def consolidate(
    ctx: typer.Context,
    instance: InstanceArg,
    layout: LayoutOpt,
    record: RecordOpt = None,
    tag: Tags = None,
    time: Time = None,
    aoi: AoiOpt = None,
    name: NameOpt = None,
    storage: StorageOpt = None,
    level: LevelOpt = "async",
    no_run: Annotated[bool, typer.Option("--no-run", help="Only create the job (run it with 'geocube job retry').")]
    = False,
    scheduler: Scheduler = None,
    show_progress: ShowProgress = False,
    as_json: Json = False,
) -> None:
    """Consolidate an instance's datasets into the files of a layout (a job: created, then run here)."""
    job = create_consolidation(state(ctx).gc, instance, layout, record, tag, time, aoi, name, storage, level)
    out = Output(as_json)
    if not no_run:
        job = _drive(out, show_progress, lambda client, progress: job.run(client=client, progress=progress),
                     scheduler)
    _report(out, job)


@job_app.command("list")
def job_list(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(metavar="PATTERN", help="Name pattern (* and ?).")] = None,
    job_state: Annotated[list[str] | None, typer.Option("--state", metavar="STATE", help=(
        "Only jobs in this state (DONE, CONSOLIDATIONFAILED…); repeatable."))] = None,
    as_json: Json = False,
) -> None:
    """List jobs, oldest first."""
    jobs = state(ctx).gc.list_jobs(name_like=name, state=job_state or None)
    rows = [job_dict(j) for j in jobs]
    out = Output(as_json)
    out.emit(rows)
    out.show(table(None, ["name", "type", "state", "waiting", "level", "tasks", "updated"], [
        [r["name"], r["type"], r["state"], "yes" if r["waiting"] else "", r["execution_level"], _fmt_tasks(r["tasks"]),
         r["updated"]] for r in rows]))
    out.note(f"{len(rows)} job(s)")


@job_app.command("show")
def job_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Job name or id.")],
    as_json: Json = False,
) -> None:
    """Show a job: its state, its tasks (with their errors) and its log."""
    job = state(ctx).gc.get_job(name)
    d = job_dict(job, details=True)
    out = Output(as_json)
    out.emit(d)
    out.show(table(f"job {d['name']}", ["", ""], [
        ["id", d["id"]], ["type", d["type"]], ["state", d["state"] + (" (waiting)" if d["waiting"] else "")],
        ["execution level", d["execution_level"]], ["tasks", _fmt_tasks(d["tasks"])], ["created", d["created"]],
        ["updated", d["updated"]], ["driven by", d["owner"] or "-"],
    ], show_header=False))
    if d["task_list"]:
        out.show(table("tasks", ["key", "state", "file", "error"],
                       [[t["key"], t["state"], t["uri"], t["error"]] for t in d["task_list"]]))
    out.show(table("log", ["time", "level", "message"], [[e["time"], e["level"], e["message"]] for e in d["logs"]]))


@job_app.command("next")
def job_next(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Job name or id.")],
    scheduler: Scheduler = None,
    show_progress: ShowProgress = False,
    as_json: Json = False,
) -> None:
    """Let a waiting job go on to its next step (and on, until it waits again or ends)."""
    job = state(ctx).gc.get_job(name)
    out = Output(as_json)
    job = _drive(out, show_progress, lambda client, progress: job.next(client=client, progress=progress), scheduler)
    _report(out, job)


@job_app.command("retry")
def job_retry(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Job name or id.")],
    force: Annotated[bool, typer.Option("--force", help=(
        "Take over a job in progress on another host (whose driver is known to be gone)."))] = False,
    scheduler: Scheduler = None,
    show_progress: ShowProgress = False,
    as_json: Json = False,
) -> None:
    """Start a failed or interrupted job again (only its failed tasks are re-run)."""
    job = state(ctx).gc.get_job(name)
    out = Output(as_json)
    job = _drive(out, show_progress,
                 lambda client, progress: job.retry(force=force, client=client, progress=progress), scheduler)
    _report(out, job)


@job_app.command("cancel")
def job_cancel(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Job name or id.")],
    force: Annotated[bool, typer.Option("--force", help=(
        "Roll back here even if another process seems to drive the job (known to be gone)."))] = False,
    as_json: Json = False,
) -> None:
    """Cancel a job and roll it back (its new files and datasets deleted, its locks released)."""
    job = state(ctx).gc.get_job(name).cancel(force=force)
    _report(Output(as_json), job)


@job_app.command("clean")
def job_clean(
    ctx: typer.Context,
    job_state: Annotated[list[str] | None, typer.Option("--state", metavar="DONE|FAILED", help=(
        "Only jobs in this state; repeatable (default: DONE and FAILED)."))] = None,
    name: Annotated[str | None, typer.Option(metavar="PATTERN", help="Name pattern (* and ?).")] = None,
    as_json: Json = False,
) -> None:
    """Delete finished jobs (DONE, FAILED) with their tasks and logs."""
    gc = state(ctx).gc
    count = gc.clean_jobs(state=job_state or ("DONE", "FAILED"), name_like=name)
    out = Output(as_json)
    out.emit({"deleted": count})
    out.show(f"deleted {count} job(s)")
