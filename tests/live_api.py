"""``geocube serve`` in a child process, for tests and benchmarks that need the real server (uvicorn, sockets).

The child listens on port 0 of 127.0.0.1 and the port is read from uvicorn's "Uvicorn running on" line,
so parallel test workers never race for a port. Its log is drained in a thread (and kept, for messages).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

RUNNING_RE = re.compile(r"Uvicorn running on (http://[0-9.]+:\d+)")
START_TIMEOUT = 60.0


@dataclass
class LiveServer:
    """A running ``geocube serve``: its base ``url`` and the log lines it printed so far."""

    url: str
    process: subprocess.Popen
    log: list[str] = field(default_factory=list)


@contextlib.contextmanager
def live_server(db_url: str, *extra: str, env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    """Start ``geocube serve --db db_url --port 0`` (the package this process imports) and stop it after."""
    code = "from geocube_dask.cli import app; app()"
    cmd = [sys.executable, "-c", code, "serve", "--db", db_url, "--host", "127.0.0.1", "--port", "0", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})
    log: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line.rstrip())
            match = RUNNING_RE.search(line)
            if match and not found.is_set():
                url.append(match.group(1))
                found.set()
        found.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        if not found.wait(START_TIMEOUT) or not url:
            raise RuntimeError("geocube serve did not start:\n" + "\n".join(log[-30:]))
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # the socket is bound when uvicorn says so; wait until the app answers too
            try:
                httpx.get(url[0] + "/openapi.json", timeout=5).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("geocube serve does not answer:\n" + "\n".join(log[-30:])) from None
                time.sleep(0.1)
        yield LiveServer(url[0], proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
