"""Real local servers for tests: a static HTTP server with byte ranges, and an S3-compatible server.

Each runs in its own process. GDAL reading over HTTP from a server that runs in the reading process can
deadlock, and a separate process is also what production looks like. The child binds port 0 on
127.0.0.1 and prints the port it got, so parallel test workers never race for a port.

Run directly (what the fixtures do)::

    python tests/servers.py http DIRECTORY    # prints "PORT <n>", serves DIRECTORY with Range support
    python tests/servers.py s3                # prints "PORT <n>", moto's S3 (any credentials accepted)
    python tests/servers.py api DB_URL        # prints "PORT <n>", the Geocube HTTP API (uvicorn) over DB_URL
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")

S3_REGION = "us-east-1"
S3_KEY_ID = "geocube-test-key"
S3_SECRET = "geocube-test-secret"


# files under /private/ are only served to requests carrying this header (GDAL sends it when the
# GDAL_HTTP_HEADERS setting says so): tests use it to prove GDAL settings reach remote workers
PRIVATE_HEADER = "X-Geocube-Token"
PRIVATE_TOKEN = "let-me-in"


STATS_PATH = "/__stats__"
# seconds each GET waits before it is answered (GEOCUBE_TEST_HTTP_LATENCY_MS): benchmarks use it to
# give loopback the first-byte latency of object storage (tens of milliseconds), where requests cost
LATENCY_S = float(os.environ.get("GEOCUBE_TEST_HTTP_LATENCY_MS", "0")) / 1000


class _Stats:
    """Requests served and body bytes sent since the last reset (``GET /__stats__?reset=1``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes = 0

    def add(self, nbytes: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes += nbytes

    def snapshot(self, reset: bool) -> dict[str, int]:
        with self.lock:
            out = {"requests": self.requests, "bytes": self.bytes}
            if reset:
                self.requests = self.bytes = 0
        return out


class RangeRequestHandler(SimpleHTTPRequestHandler):
    """Static files with single byte-range support (RFC 9110), as GDAL's /vsicurl/ needs.

    ``Range: bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` get a 206 with that slice; an unsatisfiable
    range gets 416; a multi-range request gets the whole file (200), which the RFC allows. Missing
    files get 404. ``GET /__stats__`` answers how many requests were served and how many body bytes
    sent (``?reset=1`` also resets the counts): benchmarks count a reader's requests with it.
    """

    protocol_version = "HTTP/1.1"  # keep-alive, as GDAL's curl expects from a real server
    stats = _Stats()

    def do_GET(self) -> None:  # noqa: N802 - name of the base class's method
        if LATENCY_S and self.path.split("?")[0] != STATS_PATH:
            time.sleep(LATENCY_S)
        if self.path.split("?")[0] == STATS_PATH:
            body = json.dumps(self.stats.snapshot(reset="reset=1" in self.path)).encode()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def send_response(self, code: int, message: str | None = None) -> None:
        if self.path.split("?")[0] != STATS_PATH:
            self.stats.add(0)
        super().send_response(code, message)

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "content-length" and self.command == "GET" and self.path.split("?")[0] != STATS_PATH:
            with self.stats.lock:
                self.stats.bytes += int(value)
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        if os.environ.get("GEOCUBE_TEST_HTTP_LOG"):
            super().log_message(format, *args)

    def send_head(self):  # type: ignore[override]
        self._range: tuple[int, int] | None = None
        if self.path.startswith("/private/") and self.headers.get(PRIVATE_HEADER) != PRIVATE_TOKEN:
            self.send_error(HTTPStatus.FORBIDDEN, f"{PRIVATE_HEADER} required")
            return None
        header = self.headers.get("Range")
        path = self.translate_path(self.path)
        if header is None or not os.path.isfile(path):
            return super().send_head()
        match = _RANGE_RE.match(header.strip())
        if match is None:  # several ranges, or another unit: answer with the whole file
            return super().send_head()
        try:
            f = open(path, "rb")  # noqa: SIM115 - returned to the base class, which closes it
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        size = os.fstat(f.fileno()).st_size
        first, last = match.groups()
        if first == "":
            length = int(last) if last else 0
            start, end = max(size - length, 0), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        if start >= size or end < start:
            f.close()
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Last-Modified", self.date_time_string(int(os.fstat(f.fileno()).st_mtime)))
        self.end_headers()
        f.seek(start)
        self._range = (start, end)
        return f

    def copyfile(self, source, outputfile) -> None:  # type: ignore[override]
        if self._range is None:
            shutil.copyfileobj(source, outputfile)
            return
        remaining = self._range[1] - self._range[0] + 1
        while remaining > 0:
            chunk = source.read(min(remaining, 1 << 16))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)


def _serve_http(directory: str) -> None:
    handler = partial(RangeRequestHandler, directory=directory)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


def _serve_api(db_url: str) -> None:
    """The Geocube HTTP API over ``db_url`` with uvicorn, on a socket bound here (port 0: no race)."""
    import socket

    import uvicorn

    from geocube_dask.api import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    app = create_app(db=db_url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])


def _serve_s3() -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(f"PORT {server.get_host_and_port()[1]}", flush=True)
    threading.Event().wait()


# --- the parent side: start, wait, stop ---------------------------------------------------------------


class ServerProcess:
    """A child process started with this file's ``mode`` that prints ``PORT <n>`` once it listens."""

    def __init__(self, *args: str, timeout: float = 60.0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, env=env,
        )
        self.port = self._read_port(timeout)

    def _read_port(self, timeout: float) -> int:
        assert self.proc.stdout is not None
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        line = box[0] if box else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"test server did not start (got {line!r}, exit code {self.proc.returncode})")
        return int(line.split()[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _wait_http(url: str, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers with any HTTP status."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@dataclass
class HttpServer:
    """A running static server: files put in ``directory`` are at ``base_url`` + their relative path."""

    base_url: str
    directory: Path
    process: ServerProcess

    def url(self, relative: str) -> str:
        return f"{self.base_url}/{relative.lstrip('/')}"

    def stats(self, reset: bool = False) -> dict[str, int]:
        """``{"requests": n, "bytes": b}`` served since the last reset (and reset them if asked)."""
        with urllib.request.urlopen(self.url(STATS_PATH + ("?reset=1" if reset else ""))) as resp:
            return json.loads(resp.read())

    def put(self, local: str | os.PathLike[str], relative: str) -> str:
        """Copy a local file under the served directory and return its URL."""
        target = self.directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, target)
        return self.url(relative)

    def __iter__(self) -> Iterator[Any]:  # unpacks as (base_url, directory)
        return iter((self.base_url, self.directory))


@contextlib.contextmanager
def http_server(directory: str | os.PathLike[str]) -> Iterator[HttpServer]:
    """Serve ``directory`` over HTTP (with byte ranges) from a child process on 127.0.0.1."""
    directory = Path(directory)
    proc = ServerProcess("http", str(directory))
    try:
        base = f"http://127.0.0.1:{proc.port}"
        _wait_http(base + "/")
        yield HttpServer(base, directory, proc)
    finally:
        proc.stop()


@dataclass
class S3Server:
    """A running S3-compatible server (moto). Buckets and objects live as long as the server."""

    host: str
    port: int
    process: ServerProcess
    _client: Any = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        """``host:port``, the form GDAL's ``AWS_S3_ENDPOINT`` takes."""
        return f"{self.host}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        """``http://host:port``, the form boto3/s3fs take."""
        return f"http://{self.endpoint}"

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "s3", endpoint_url=self.endpoint_url, region_name=S3_REGION,
                aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET,
            )
        return self._client

    def create_bucket(self, name: str) -> str:
        """Create bucket ``name`` (if it does not exist yet) and return ``s3://name``."""
        with contextlib.suppress(self.client.exceptions.BucketAlreadyOwnedByYou):
            self.client.create_bucket(Bucket=name)
        return f"s3://{name}"

    def upload(self, local: str | os.PathLike[str], bucket: str, key: str) -> str:
        """Upload a local file (creating the bucket if needed) and return its ``s3://`` URI."""
        self.create_bucket(bucket)
        self.client.upload_file(str(local), bucket, key)
        return f"s3://{bucket}/{key}"

    def gdal_env(self) -> dict[str, str]:
        """The GDAL settings that make ``/vsis3/`` (and so ``s3://`` uris) read from this server."""
        return {
            "AWS_S3_ENDPOINT": self.endpoint,
            "AWS_HTTPS": "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",
            "AWS_ACCESS_KEY_ID": S3_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_REGION": S3_REGION,
            "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        }

    @contextlib.contextmanager
    def env(self) -> Iterator[dict[str, str]]:
        """Apply :meth:`gdal_env` as environment variables for the duration of the block.

        Environment variables (rather than ``rasterio.Env``) reach every thread of this process, as dask
        threads need, and are what ``geocube_dask.gdal_settings.gdal_env`` captures for other workers.
        """
        settings = self.gdal_env()
        saved = {k: os.environ.get(k) for k in settings}
        os.environ.update(settings)
        try:
            yield settings
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """Run moto's S3 server in a child process on 127.0.0.1."""
    proc = ServerProcess("s3")
    try:
        _wait_http(f"http://127.0.0.1:{proc.port}/")
        yield S3Server("127.0.0.1", proc.port, proc)
    finally:
        proc.stop()


@dataclass
class ApiServer:
    """A running Geocube API: ``url``, and a token per scope in ``tokens`` (``read``, ``write``, ``admin``)."""

    url: str
    db_url: str
    tokens: dict[str, str]
    process: ServerProcess

    def connect(self, scope: str = "admin") -> Any:
        """A remote catalogue on this server with the token of ``scope``."""
        import geocube_dask as gd

        return gd.connect(self.url, token=self.tokens[scope])


@contextlib.contextmanager
def api_server(db_url: str) -> Iterator[ApiServer]:
    """Serve the catalogue at ``db_url`` (migrated, one token per scope created first) from a child process."""
    import geocube_dask as gd

    with gd.connect(db_url) as gc:
        tokens = {scope: gc.create_token(scope, name=f"test {scope}")[1] for scope in ("read", "write", "admin")}
    proc = ServerProcess("api", db_url)
    try:
        base = f"http://127.0.0.1:{proc.port}"
        _wait_http(base + "/openapi.json")
        yield ApiServer(base, db_url, tokens, proc)
    finally:
        proc.stop()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "http":
        _serve_http(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "s3":
        _serve_s3()
    elif len(sys.argv) == 3 and sys.argv[1] == "api":
        _serve_api(sys.argv[2])
    else:
        sys.exit(__doc__)
