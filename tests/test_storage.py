"""storage: uri normalisation, GDAL names, captured GDAL settings, fsspec writes — and the test servers."""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import rasterio
import rasterio.env
from rasters import write_scene

from geocube_dask import storage
from geocube_dask.errors import InvalidArgument


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/data/a.tif", "/data/a.tif"),
        ("file:///data/a.tif", "/data/a.tif"),
        ("file://localhost/data/a%20b.tif", "/data/a b.tif"),
        ("https://host:8080/x/a.tif?sig=1", "/vsicurl/https://host:8080/x/a.tif?sig=1"),
        ("http://host/a.tif", "/vsicurl/http://host/a.tif"),
        ("s3://bucket/dir/a.tif", "/vsis3/bucket/dir/a.tif"),
        ("gs://bucket/a.tif", "/vsigs/bucket/a.tif"),
        ("az://container/a.tif", "/vsiaz/container/a.tif"),
        ("/vsis3/bucket/a.tif", "/vsis3/bucket/a.tif"),
        ("/vsizip//data/a.zip/a.tif", "/vsizip//data/a.zip/a.tif"),
    ],
)
def test_to_gdal_path(uri: str, expected: str) -> None:
    assert storage.to_gdal_path(uri) == expected


def test_to_gdal_path_relative_and_subdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert storage.to_gdal_path("a.tif") == str(tmp_path / "a.tif")
    assert storage.to_gdal_path("s3://b/k.tif", "GTIFF_DIR:3") == "GTIFF_DIR:3:/vsis3/b/k.tif"
    assert storage.to_gdal_path("/x/k.tif", subdir="GTIFF_DIR:1") == "GTIFF_DIR:1:/x/k.tif"


@pytest.mark.parametrize("subdir", ["3", "GTIFF_DIR:", "GTIFF_DIR:3:/x.tif", "GTIFF DIR:3"])
def test_bad_subdir(subdir: str) -> None:
    with pytest.raises(InvalidArgument, match="subdir"):
        storage.to_gdal_path("/x.tif", subdir)


@pytest.mark.parametrize("uri", ["ftp://host/a.tif", "", "   ", "file://otherhost/a.tif"])
def test_bad_uris(uri: str) -> None:
    with pytest.raises(InvalidArgument):
        storage.to_gdal_path(uri)


def test_normalize_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert storage.normalize_uri("sub/a.tif") == str(tmp_path / "sub" / "a.tif")
    assert storage.normalize_uri(Path("a.tif")) == str(tmp_path / "a.tif")
    assert storage.normalize_uri("file:///abs/a.tif") == "/abs/a.tif"
    for uri in ("s3://b/k.tif", "https://h/a.tif", "/vsicurl/https://h/a.tif"):
        assert storage.normalize_uri(uri) == uri
    assert storage.is_remote("s3://b/k") and storage.is_remote("/vsizip//vsicurl/http://h/a.zip")
    assert not storage.is_remote("/data/a.tif") and not storage.is_remote("file:///a.tif")


def test_gdal_env_captures_environment_and_rasterio_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_S3_ENDPOINT", "127.0.0.1:9")
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "3")
    monkeypatch.setenv("GDAL_DATA", "/somewhere/only/here")
    monkeypatch.setenv("NOT_A_GDAL_SETTING", "x")
    env = storage.gdal_env()
    assert env["AWS_S3_ENDPOINT"] == "127.0.0.1:9"
    assert env["GDAL_HTTP_MAX_RETRY"] == "3"
    assert "GDAL_DATA" not in env and "NOT_A_GDAL_SETTING" not in env
    with rasterio.Env(GDAL_HTTP_MAX_RETRY=5, CPL_VSIL_CURL_USE_HEAD=False, AWS_NO_SIGN_REQUEST=True):
        inside = storage.gdal_env()
    assert inside["GDAL_HTTP_MAX_RETRY"] == "5"  # rasterio.Env wins over the environment
    assert inside["CPL_VSIL_CURL_USE_HEAD"] == "NO" and inside["AWS_NO_SIGN_REQUEST"] == "YES"
    assert "GDAL_DATA" not in inside and "RASTERIO_ENV" not in inside
    assert storage.gdal_env()["GDAL_HTTP_MAX_RETRY"] == "3"  # the Env is gone


IDENTITIES = {"AWS_SECRET_ACCESS_KEY": "s3cr3t-value", "AWS_ACCESS_KEY_ID": "AKIDVALUE", "AWS_PROFILE": "my-profile",
              "AWS_SHARED_CREDENTIALS_FILE": "/home/me/.aws/credentials", "AWS_CONFIG_FILE": "/home/me/.aws/config",
              "AWS_SESSION_TOKEN": "session-value", "GOOGLE_APPLICATION_CREDENTIALS": "/home/me/gcp.json",
              "AWS_ROLE_ARN": "arn:aws:iam::1:role/me", "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token",
              "GDAL_HTTP_HEADERS": "Authorization: Bearer x", "GDAL_HTTP_USERPWD": "me:pw",
              "CPL_CURL_CA_BUNDLE": "/etc/ssl/mine.pem", "CPL_TMPDIR": "/scratch/me"}


def test_only_reading_settings_travel_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials, profiles, credential files and local paths stay on the client: a worker reads with
    its own identity. What changes how GDAL reads does travel."""
    for key, value in IDENTITIES.items():
        monkeypatch.setenv(key, value)
    reading = {"AWS_REGION": "eu-west-3", "AWS_S3_ENDPOINT": "minio:9000", "AWS_VIRTUAL_HOSTING": "FALSE",
               "AWS_NO_SIGN_REQUEST": "YES", "GDAL_HTTP_TIMEOUT": "30", "VSI_CACHE": "TRUE",
               "CPL_VSIL_CURL_CHUNK_SIZE": "1048576", "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
    for key, value in reading.items():
        monkeypatch.setenv(key, value)
    env = storage.gdal_env()
    assert {k: env[k] for k in reading} == reading
    assert not set(IDENTITIES) & set(env)
    with rasterio.Env(GDAL_HTTP_USERPWD="me:pw", AWS_REQUEST_PAYER="requester"):
        inside = storage.gdal_env()
    assert "GDAL_HTTP_USERPWD" not in inside and inside["AWS_REQUEST_PAYER"] == "requester"
    explicit = storage.gdal_env({"aws_secret_access_key": "given", "GDAL_HTTP_TIMEOUT": 5})
    assert explicit["AWS_SECRET_ACCESS_KEY"] == "given" and explicit["GDAL_HTTP_TIMEOUT"] == "5"
    with pytest.raises(InvalidArgument):
        storage.gdal_env({"": "x"})


def test_secret_keys() -> None:
    secret = ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "GS_OAUTH2_REFRESH_TOKEN",
              "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCESS_KEY", "GDAL_HTTP_USERPWD",
              "GDAL_HTTP_HEADERS", "GS_SECRET_ACCESS_KEY", "AZURE_STORAGE_SAS_TOKEN"]
    public = ["AWS_S3_ENDPOINT", "AWS_REGION", "AWS_HTTPS", "GDAL_DISABLE_READDIR_ON_OPEN", "AWS_NO_SIGN_REQUEST"]
    assert all(storage.is_secret_key(k) for k in secret)
    assert not any(storage.is_secret_key(k) for k in public)
    env = {k: "x" for k in secret + public}
    assert set(storage.public_env(env)) == set(public)


def test_gdal_env_context_is_per_thread_and_restored() -> None:
    env = {"GDAL_HTTP_MAX_RETRY": "7", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
           "GDAL_CACHEMAX": "1024"}
    seen: dict[str, dict[str, str]] = {}

    def task() -> None:
        with storage.gdal_env_context(env):
            seen["inside"] = {str(k): str(v) for k, v in rasterio.env.getenv().items()}
        seen["after"] = storage.gdal_env()

    thread = threading.Thread(target=task)
    thread.start()
    thread.join()
    assert {k: seen["inside"][k] for k in env if k != "GDAL_CACHEMAX"} == {
        k: v for k, v in env.items() if k != "GDAL_CACHEMAX"}  # rasterio.Env alone refuses the AWS keys
    assert "GDAL_CACHEMAX" not in seen["inside"]  # one per process: see set_block_cache_once
    assert not set(env) & set(seen["after"])
    with storage.gdal_env_context({}), storage.gdal_env_context({"GDAL_CACHEMAX": "5%"}):
        assert "GDAL_CACHEMAX" not in storage.gdal_env()


@pytest.mark.parametrize(("value", "nbytes"), [(128, 128 * 2**20), ("64", 64 * 2**20), ("32MB", 32 * 2**20),
                                               ("200000", 200000), ("2GB", 2 * 2**30), ("1.5 GiB", 3 * 2**29),
                                               ("512k", 512 * 2**10), ("abc", None), (0, None), ("-5", None),
                                               ("2 GBX", None), ("150%", None), (True, None), ("nan", None)])
def test_block_cache_bytes_reads_values_as_gdal_does(value: object, nbytes: int | None) -> None:
    assert storage.block_cache_bytes(value) == nbytes


@pytest.mark.parametrize("value", ["2 gigs", "-1", "0%"])
def test_an_unreadable_cache_size_is_refused_where_it_is_given(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgument, match=f"GDAL_CACHEMAX={value!r} is not a cache size.*'2GB'"):
        storage.gdal_env({"GDAL_CACHEMAX": value})
    monkeypatch.setenv("GDAL_CACHEMAX", value)
    with pytest.raises(InvalidArgument, match="GDAL_CACHEMAX"):
        storage.gdal_env()
    monkeypatch.setenv("GDAL_CACHEMAX", "2GB")
    assert storage.gdal_env()["GDAL_CACHEMAX"] == "2GB"


def test_block_cache_bytes_reads_a_share_of_memory() -> None:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert storage.block_cache_bytes("10%") == int(total * 0.1)


def test_fsspec_helpers(tmp_path: Path) -> None:
    local = tmp_path / "src.bin"
    local.write_bytes(b"geocube")
    target = tmp_path / "out" / "deep" / "copy.bin"
    assert not storage.exists(str(target))
    assert storage.upload(local, str(target)) == str(target)
    assert target.read_bytes() == b"geocube" and storage.exists(f"file://{target}")
    assert not list(target.parent.glob("*.partial-*"))
    assert storage.delete(str(target)) is True
    assert storage.delete(str(target)) is False and not target.exists()
    with pytest.raises(InvalidArgument, match="not a file"):
        storage.upload(tmp_path / "missing", str(target))
    with pytest.raises(InvalidArgument, match="virtual"):
        storage.exists("/vsis3/b/k")


def test_the_temporary_copies_of_a_killed_upload_go_with_the_next_upload_or_the_delete(tmp_path: Path) -> None:
    """A process killed while it uploads leaves ``<file>.partial-<pid>``: writing the file again (a job's task
    re-run) or deleting it (a rollback) removes it, and nothing of other files."""
    local = tmp_path / "src.bin"
    local.write_bytes(b"geocube")
    target = tmp_path / "out" / "a[1].tif"  # a name with glob characters
    target.parent.mkdir()
    left = [target.parent / f"a[1].tif.partial-{pid}" for pid in (12345, 67890)]
    other = target.parent / "a[1].tif2.partial-12345"
    for path in (*left, other):
        path.write_bytes(b"half")
    storage.upload(local, str(target))
    assert sorted(p.name for p in target.parent.iterdir()) == ["a[1].tif", other.name]
    left[0].write_bytes(b"half")
    assert storage.delete(str(target)) is True
    assert sorted(p.name for p in target.parent.iterdir()) == [other.name]
    left[0].write_bytes(b"half")
    assert storage.delete(str(target)) is False  # no file, but its leftovers go all the same
    assert sorted(p.name for p in target.parent.iterdir()) == [other.name]
    assert storage.delete(str(tmp_path / "nowhere" / "b.tif")) is False


def test_fsspec_helpers_on_s3(tmp_path: Path, s3_server) -> None:
    pytest.importorskip("s3fs", reason="s3:// writes need the s3fs fsspec backend")
    import fsspec.config

    bucket = f"up-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    local = tmp_path / "a.bin"
    local.write_bytes(b"x" * 10)
    fsspec.config.conf["s3"] = {"client_kwargs": {"endpoint_url": s3_server.endpoint_url}, "key": "k",
                                "secret": "s"}
    try:
        uri = f"s3://{bucket}/dir/a.bin"
        storage.upload(local, uri)
        assert storage.exists(uri)
        assert storage.delete(uri) and not storage.exists(uri)
    finally:
        fsspec.config.conf.pop("s3", None)


# --- the test servers themselves ---------------------------------------------------------------------


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_http_server_serves_byte_ranges(http_server) -> None:
    base_url, directory = http_server
    name = f"{uuid.uuid4().hex}.bin"
    payload = bytes(range(256)) * 40
    (Path(directory) / name).write_bytes(payload)
    status, headers, body = _get(f"{base_url}/{name}")
    assert status == 200 and body == payload and headers["Accept-Ranges"] == "bytes"
    status, headers, body = _get(f"{base_url}/{name}", {"Range": "bytes=10-19"})
    assert status == 206 and body == payload[10:20] and headers["Content-Range"] == f"bytes 10-19/{len(payload)}"
    assert _get(f"{base_url}/{name}", {"Range": "bytes=10000-"})[2] == payload[10000:]
    assert _get(f"{base_url}/{name}", {"Range": "bytes=-5"})[2] == payload[-5:]
    assert _get(f"{base_url}/{name}", {"Range": "bytes=9990-99999"})[2] == payload[9990:]
    assert _get(f"{base_url}/{name}", {"Range": f"bytes={len(payload)}-"})[0] == 416
    assert _get(f"{base_url}/missing-{name}")[0] == 404


def test_gdal_reads_through_both_servers(tmp_path: Path, http_server, s3_server, s3_env) -> None:
    path = write_scene(tmp_path / "a.tif", "utm31")
    with rasterio.open(path) as src:
        expected = src.read()
    url = http_server.put(path, f"{uuid.uuid4().hex}/a.tif")
    s3_uri = s3_server.upload(path, f"read-{uuid.uuid4().hex[:12]}", "x/a.tif")
    for uri in (url, s3_uri):
        with rasterio.open(storage.to_gdal_path(uri)) as src:
            assert (src.read() == expected).all()
    assert os.environ["AWS_S3_ENDPOINT"] == s3_server.endpoint
