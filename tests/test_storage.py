"""storage: uri normalisation, GDAL names, fsspec writes — and the test servers."""

from __future__ import annotations

import os
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
