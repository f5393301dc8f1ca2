"""Load test of the HTTP API on loopback: concurrent clients asking tiles and cube plans of ``geocube serve``.

``geocube serve`` runs in a child process (the package of this checkout, ``--workers`` processes) over a
fresh catalogue holding the demo collection (``geocube_dask.demo``: three dates of four UTM tiles and a
Lambert-93 scene, 4 bands; files generated once under ``bench/_data/api_load``). ``--clients`` clients
(asyncio + httpx, one connection each) then loop for ``--duration`` seconds, each sending, in turn,
three tile requests and one plan request:

* tiles: ``GET /tiles/{instance}/{z}/{x}/{y}.png`` of the tiles over the collection at zooms 11 to 15,
  every record mosaicked (the default), RGB of B4,B3,B2 (no ``If-None-Match``: every tile is drawn);
* plans: ``POST /cube/plan`` of a 5 km × 5 km window of the collection at 20 m in EPSG:32631, one
  image per day, the window's origin moving from request to request.

Reported per kind: requests, requests per second, latency p50 / p99 (ms) and errors (any answer but
200 with a PNG / a plan, or no answer within ``--timeout``). ``--json FILE`` writes the same figures.

    python bench/api_load.py                      # 50 clients for 30 s
    python bench/api_load.py --clients 10 --duration 5 --db postgresql+psycopg2://…
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "_data" / "api_load"
if str(REPO_DIR) not in sys.path:  # geocube_dask from this checkout when it is not installed
    sys.path.append(str(REPO_DIR))

import httpx  # noqa: E402
import morecantile  # noqa: E402
import numpy as np  # noqa: E402

RUNNING_RE = re.compile(r"Uvicorn running on (http://[0-9.]+:\d+)")
START_TIMEOUT = 60.0
ZOOMS = (11, 12, 13, 14, 15)
TILE_BANDS = "B4,B3,B2"
PLAN_WINDOW = 5000.0  # metres
PLAN_RESOLUTION = 20.0
TILES_PER_PLAN = 3


# --- the server -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def serve(db_url: str, workers: int = 1) -> Iterator[str]:
    """Run ``geocube serve --db db_url --port 0`` in a child process; yield its base URL, stop it after.

    The port is read from uvicorn's "Uvicorn running on" line (port 0: no race for a port); the child's
    log is drained in a thread and shown if it does not start."""
    code = "from geocube_dask.cli import app; app()"
    cmd = [sys.executable, "-c", code, "serve", "--db", db_url, "--host", "127.0.0.1", "--port", "0",
           "--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_DIR), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    log: list[str] = []
    found = threading.Event()
    urls: list[str] = []

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line.rstrip())
            match = RUNNING_RE.search(line)
            if match and not urls:
                urls.append(match.group(1))
                found.set()
        found.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        if not found.wait(START_TIMEOUT) or not urls or urls[0].endswith(":0"):
            raise RuntimeError("geocube serve did not start (or did not say its port):\n" + "\n".join(log[-30:]))
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                httpx.get(urls[0] + "/openapi.json", timeout=5).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("geocube serve does not answer:\n" + "\n".join(log[-30:])) from None
                time.sleep(0.1)
        yield urls[0]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)


# --- the catalogue and the requests ------------------------------------------------------------------------


@dataclass
class Setup:
    """What the clients ask for: the instance, the tiles over the collection, the plan windows, a read token."""

    instance_id: str
    tiles: list[tuple[int, int, int]]
    windows: list[tuple[float, float, float, float]]
    token: str


def prepare(db_url: str, size: int = 1024, data_dir: Path = DATA_DIR) -> Setup:
    """Index the demo collection (written once under ``data_dir``) into the catalogue at ``db_url``."""
    import geocube_dask as gd
    from geocube_dask import demo

    files = demo.write_collection(data_dir / f"size{size}", size=size)
    with gd.connect(db_url) as gc:
        datasets = demo.index_collection(gc, files)
        _, inst = demo.ensure_variable(gc)
        _, token = gc.create_token("read", name="api load test")
    west, south, east, north = demo.collection_bounds(datasets, "EPSG:4326")
    tms = morecantile.tms.get("WebMercatorQuad")
    tiles = [(t.z, t.x, t.y) for t in tms.tiles(west, south, east, north, list(ZOOMS))]
    x0, y0, x1, y1 = demo.collection_bounds(datasets)
    step = PLAN_WINDOW / 2
    windows = [(x, y, x + PLAN_WINDOW, y + PLAN_WINDOW)
               for x in np.arange(x0, max(x0 + step, x1 - PLAN_WINDOW), step)
               for y in np.arange(y0, max(y0 + step, y1 - PLAN_WINDOW), step)]
    return Setup(inst.id, tiles, [tuple(float(v) for v in w) for w in windows], token)


# --- the clients ---------------------------------------------------------------------------------------------


@dataclass
class Kind:
    """The requests of one kind: latencies (s) of the successful ones, and the errors (first few kept)."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    examples: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.examples) < 5:
            self.examples.append(text)


async def _client(http: httpx.AsyncClient, setup: Setup, deadline: float, start: int, kinds: dict[str, Kind]) -> None:
    tiles = itertools.cycle(setup.tiles[start % len(setup.tiles):] + setup.tiles[:start % len(setup.tiles)])
    windows = itertools.cycle(setup.windows[start % len(setup.windows):] + setup.windows[:start % len(setup.windows)])
    for n in itertools.count():
        if time.monotonic() >= deadline:
            return
        if n % (TILES_PER_PLAN + 1) < TILES_PER_PLAN:
            kind, (z, x, y) = "tile", next(tiles)
            request = http.build_request("GET", f"/tiles/{setup.instance_id}/{z}/{x}/{y}.png",
                                         params={"bands": TILE_BANDS})
        else:
            kind = "plan"
            body = {"instance": setup.instance_id, "crs": "EPSG:32631", "resolution": PLAN_RESOLUTION,
                    "bounds": list(next(windows)), "group_by": "day"}
            request = http.build_request("POST", "/cube/plan", json=body)
        t0 = time.perf_counter()
        try:
            response = await http.send(request)
            elapsed = time.perf_counter() - t0
        except httpx.HTTPError as exc:
            kinds[kind].error(f"{request.method} {request.url.path}: {type(exc).__name__}: {exc}")
            continue
        ok = response.status_code == 200 and (
            response.content[:8] == b"\x89PNG\r\n\x1a\n" if kind == "tile" else response.content[:1] == b"{")
        if ok:
            kinds[kind].latencies.append(elapsed)
        else:
            kinds[kind].error(f"{request.method} {request.url.path}: {response.status_code} {response.text[:200]}")


async def _load(base_url: str, setup: Setup, clients: int, duration: float, timeout: float) -> dict[str, Kind]:
    kinds = {"tile": Kind(), "plan": Kind()}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {setup.token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=timeout) as http:
        deadline = time.monotonic() + duration
        await asyncio.gather(*(_client(http, setup, deadline, i * 7, kinds) for i in range(clients)))
    return kinds


@dataclass
class Row:
    kind: str
    requests: int
    per_second: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    error_examples: list[str]


def summarise(kinds: dict[str, Kind], duration: float) -> list[Row]:
    rows = []
    for name, kind in kinds.items():
        lat = np.array(kind.latencies) * 1000
        p50, p99 = (float(np.percentile(lat, 50)), float(np.percentile(lat, 99))) if lat.size else (None, None)
        total = lat.size + kind.errors
        rows.append(Row(name, total, total / duration, p50, p99, kind.errors, kind.examples))
    return rows


def run(db_url: str | None = None, *, clients: int = 50, duration: float = 30.0, size: int = 1024,
        workers: int = 1, timeout: float = 60.0, data_dir: Path = DATA_DIR) -> list[Row]:
    """Prepare a catalogue (a temporary SQLite file unless ``db_url``), serve it, load it; the figures per kind."""
    with tempfile.TemporaryDirectory(prefix="geocube-api-load-") as tmp:
        url = db_url or f"sqlite:///{Path(tmp) / 'catalog.db'}"
        setup = prepare(url, size, data_dir)
        with serve(url, workers) as base:
            t0 = time.monotonic()
            kinds = asyncio.run(_load(base, setup, clients, duration, timeout))
            elapsed = time.monotonic() - t0
    return summarise(kinds, elapsed)


def show(rows: list[Row], clients: int, duration: float) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    lines = [f"{clients} clients, {duration:g} s, loopback",
             f"{'kind':<6} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"]
    for r in rows:
        lines.append(f"{r.kind:<6} {r.requests:>9} {r.per_second:>7.1f} {ms(r.p50_ms):>8} {ms(r.p99_ms):>8} "
                     f"{r.errors:>7}")
        lines += [f"    {e}" for e in r.error_examples]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds")
    parser.add_argument("--size", type=int, default=1024, help="pixels per side of the demo scenes")
    parser.add_argument("--workers", type=int, default=1, help="geocube serve --workers")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--db", help="catalogue URL (default: a temporary SQLite file); its tables get the demo")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    rows = run(args.db, clients=args.clients, duration=args.duration, size=args.size, workers=args.workers,
               timeout=args.timeout)
    print(show(rows, args.clients, args.duration))
    if args.json:
        args.json.write_text(json.dumps({"clients": args.clients, "duration": args.duration, "size": args.size,
                                         "workers": args.workers, "rows": [asdict(r) for r in rows]}, indent=2))
    return 1 if any(r.errors for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
