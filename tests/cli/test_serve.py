"""``geocube token create|list|revoke`` and ``geocube serve``, run for real: tokens made by the command line
work against a server the command line started in a child process (one worker, and two), and bad arguments
end with a clear message and exit code.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import typer
from click.testing import CliRunner

from geocube_dask.cli import app

runner = CliRunner(env={"COLUMNS": "250"})
COMMAND = typer.main.get_command(app)
GEOCUBE = [sys.executable, "-c", "import sys; from geocube_dask.cli import app; sys.argv[0] = 'geocube'; app()"]
TOKEN_RE = re.compile(r"gct_[A-Za-z0-9_-]{20,}")


def cli(*args: Any) -> Any:
    return runner.invoke(COMMAND, [str(a) for a in args])


def create_token(db: str, scope: str, name: str = "") -> tuple[str, str]:
    """``geocube token create``: (the token, alone on the last line of stdout; the id it reports on stderr)."""
    result = cli("token", "create", "--scope", scope, "--name", name, "--db", db)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    token = result.stdout.splitlines()[-1]
    assert TOKEN_RE.fullmatch(token), result.stdout
    reported = re.fullmatch(rf"created {scope} token ([0-9a-f-]{{36}})(?: \(.*\))?", result.stderr.strip())
    assert reported, result.stderr
    return token, reported.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(db: str, *extra: str, timeout: float = 90.0) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``geocube serve --db DB --port <free> …`` in a child process (its own session), once it answers."""
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"geocube-serve-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*GEOCUBE, "serve", "--db", db, "--port", str(port), *extra],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, f"geocube serve exited with {proc.returncode}:\n{log.read_text()}"
            try:
                if httpx.get(base + "/openapi.json", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"geocube serve did not answer:\n{log.read_text()}"
            time.sleep(0.2)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.terminate()  # uvicorn stops its workers itself
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the session started for it above
                proc.wait(10)
        log.unlink(missing_ok=True)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_from_the_command_line_work_against_geocube_serve(catalog_url: str) -> None:
    read, read_id = create_token(catalog_url, "read", name="a reader")
    write, _ = create_token(catalog_url, "write")
    listed = cli("token", "list", "--json", "--db", catalog_url)
    assert listed.exit_code == 0, listed.stderr
    (row,) = [t for t in json.loads(listed.stdout) if t["id"] == read_id]
    assert (row["name"], row["scope"], row["revoked"]) == ("a reader", "read", None)
    with serving(catalog_url) as (base, _):
        info = httpx.get(base + "/info", headers=bearer(read), timeout=30)
        assert info.status_code == 200 and info.json()["scope"] == "read", info.text
        variable = {"name": "refl", "dformat": {"dtype": "uint16", "nodata": 0, "min": 0, "max": 10000},
                    "bands": ["B2", "B3"]}
        refused = httpx.post(base + "/variables", json=variable, headers=bearer(read), timeout=30)
        assert refused.status_code == 403 and refused.json()["error"] == "PermissionDenied", refused.text
        assert httpx.get(base + "/variables", timeout=30).status_code == 401
        made = httpx.post(base + "/variables", json=variable, headers=bearer(write), timeout=30)
        assert made.status_code == 201, made.text
        assert [v["name"] for v in httpx.get(base + "/variables", headers=bearer(read), timeout=30).json()] == ["refl"]
        revoked = cli("token", "revoke", read_id, "--db", catalog_url)
        assert revoked.exit_code == 0 and read_id in revoked.stdout, revoked.stderr
        gone = httpx.get(base + "/info", headers=bearer(read), timeout=30)
        assert gone.status_code == 401 and gone.json()["error"] == "AuthenticationError"


def test_serve_with_two_workers(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'catalog.db'}"
    token, _ = create_token(db, "read")
    with serving(db, "--workers", "2") as (base, proc):
        for _ in range(4):
            info = httpx.get(base + "/info", headers=bearer(token), timeout=30)
            assert info.status_code == 200 and info.json()["scope"] == "read", info.text
        assert httpx.get(base + "/info", timeout=30).status_code == 401
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
                   if "spawn_main" in " ".join(p.cmdline())]  # uvicorn's worker processes
        assert len(workers) == 2


def test_a_path_for_db_is_a_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--db`` without a scheme is a SQLite file, for the tokens and the server alike."""
    monkeypatch.chdir(tmp_path)
    token, _ = create_token("cat.db", "admin")
    with serving("cat.db") as (base, _):
        assert httpx.get(base + "/tokens", headers=bearer(token), timeout=30).status_code == 200
    assert (tmp_path / "cat.db").is_file()


def error_line(result: Any) -> str:
    """The command failed with exit code 1 and one ``error:`` line on stderr, without a traceback."""
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'catalog.db'}"
    assert "unknown token scope 'superuser'" in error_line(cli("token", "create", "--scope", "superuser", "--db", db))
    assert "no token with id 'nope'" in error_line(cli("token", "revoke", "nope", "--db", db))
    line = error_line(cli("serve", "--db", "postgresql+psycopg2://someone:s3cret@127.0.0.1:9/nowhere",
                          "--port", free_port()))
    assert "cannot open the catalogue" in line and "s3cret" not in line
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = error_line(cli("serve", "--db", db, "--port", port))
        assert f"cannot listen on 127.0.0.1:{port}" in line and "--port" in line
    assert "cannot listen on" in error_line(cli("serve", "--db", db, "--host", "no-such-host.invalid"))
    for usage in (["token", "create", "--db", db], ["serve", "--workers", "0"], ["serve", "--port", "70000"],
                  ["serve", "--port", "http"]):
        result = cli(*usage)
        assert result.exit_code == 2, (usage, result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
