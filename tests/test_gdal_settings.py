"""gdal_settings: the GDAL settings a graph carries (never credentials unless given), applied per thread in a
task, and GDAL's block cache size read as GDAL reads it."""

from __future__ import annotations

import os
import threading

import pytest
import rasterio
import rasterio.env

from geocube_dask import gdal_settings
from geocube_dask.errors import InvalidArgument


def test_gdal_env_captures_environment_and_rasterio_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_S3_ENDPOINT", "127.0.0.1:9")
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "3")
    monkeypatch.setenv("GDAL_DATA", "/somewhere/only/here")
    monkeypatch.setenv("NOT_A_GDAL_SETTING", "x")
    env = gdal_settings.gdal_env()
    assert env["AWS_S3_ENDPOINT"] == "127.0.0.1:9"
    assert env["GDAL_HTTP_MAX_RETRY"] == "3"
    assert "GDAL_DATA" not in env and "NOT_A_GDAL_SETTING" not in env
    with rasterio.Env(GDAL_HTTP_MAX_RETRY=5, CPL_VSIL_CURL_USE_HEAD=False, AWS_NO_SIGN_REQUEST=True):
        inside = gdal_settings.gdal_env()
    assert inside["GDAL_HTTP_MAX_RETRY"] == "5"  # rasterio.Env wins over the environment
    assert inside["CPL_VSIL_CURL_USE_HEAD"] == "NO" and inside["AWS_NO_SIGN_REQUEST"] == "YES"
    assert "GDAL_DATA" not in inside and "RASTERIO_ENV" not in inside
    assert gdal_settings.gdal_env()["GDAL_HTTP_MAX_RETRY"] == "3"  # the Env is gone


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
    env = gdal_settings.gdal_env()
    assert {k: env[k] for k in reading} == reading
    assert not set(IDENTITIES) & set(env)
    with rasterio.Env(GDAL_HTTP_USERPWD="me:pw", AWS_REQUEST_PAYER="requester"):
        inside = gdal_settings.gdal_env()
    assert "GDAL_HTTP_USERPWD" not in inside and inside["AWS_REQUEST_PAYER"] == "requester"
    explicit = gdal_settings.gdal_env({"aws_secret_access_key": "given", "GDAL_HTTP_TIMEOUT": 5})
    assert explicit["AWS_SECRET_ACCESS_KEY"] == "given" and explicit["GDAL_HTTP_TIMEOUT"] == "5"
    with pytest.raises(InvalidArgument):
        gdal_settings.gdal_env({"": "x"})


def test_secret_keys() -> None:
    secret = ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "GS_OAUTH2_REFRESH_TOKEN",
              "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCESS_KEY", "GDAL_HTTP_USERPWD",
              "GDAL_HTTP_HEADERS", "GS_SECRET_ACCESS_KEY", "AZURE_STORAGE_SAS_TOKEN"]
    public = ["AWS_S3_ENDPOINT", "AWS_REGION", "AWS_HTTPS", "GDAL_DISABLE_READDIR_ON_OPEN", "AWS_NO_SIGN_REQUEST"]
    assert all(gdal_settings.is_secret_key(k) for k in secret)
    assert not any(gdal_settings.is_secret_key(k) for k in public)
    env = {k: "x" for k in secret + public}
    assert set(gdal_settings.public_env(env)) == set(public)


def test_gdal_env_context_is_per_thread_and_restored() -> None:
    env = {"GDAL_HTTP_MAX_RETRY": "7", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
           "GDAL_CACHEMAX": "1024"}
    seen: dict[str, dict[str, str]] = {}

    def task() -> None:
        with gdal_settings.gdal_env_context(env):
            seen["inside"] = {str(k): str(v) for k, v in rasterio.env.getenv().items()}
        seen["after"] = gdal_settings.gdal_env()

    thread = threading.Thread(target=task)
    thread.start()
    thread.join()
    assert {k: seen["inside"][k] for k in env if k != "GDAL_CACHEMAX"} == {
        k: v for k, v in env.items() if k != "GDAL_CACHEMAX"}  # rasterio.Env alone refuses the AWS keys
    assert "GDAL_CACHEMAX" not in seen["inside"]  # one per process: see set_block_cache_once
    assert not set(env) & set(seen["after"])
    with gdal_settings.gdal_env_context({}), gdal_settings.gdal_env_context({"GDAL_CACHEMAX": "5%"}):
        assert "GDAL_CACHEMAX" not in gdal_settings.gdal_env()


@pytest.mark.parametrize(("value", "nbytes"), [(128, 128 * 2**20), ("64", 64 * 2**20), ("32MB", 32 * 2**20),
                                               ("200000", 200000), ("2GB", 2 * 2**30), ("1.5 GiB", 3 * 2**29),
                                               ("512k", 512 * 2**10), ("abc", None), (0, None), ("-5", None),
                                               ("2 GBX", None), ("150%", None), (True, None), ("nan", None)])
def test_block_cache_bytes_reads_values_as_gdal_does(value: object, nbytes: int | None) -> None:
    assert gdal_settings.block_cache_bytes(value) == nbytes


@pytest.mark.parametrize("value", ["2 gigs", "-1", "0%"])
def test_an_unreadable_cache_size_is_refused_where_it_is_given(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgument, match=f"GDAL_CACHEMAX={value!r} is not a cache size.*'2GB'"):
        gdal_settings.gdal_env({"GDAL_CACHEMAX": value})
    monkeypatch.setenv("GDAL_CACHEMAX", value)
    with pytest.raises(InvalidArgument, match="GDAL_CACHEMAX"):
        gdal_settings.gdal_env()
    monkeypatch.setenv("GDAL_CACHEMAX", "2GB")
    assert gdal_settings.gdal_env()["GDAL_CACHEMAX"] == "2GB"


def test_block_cache_bytes_reads_a_share_of_memory() -> None:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert gdal_settings.block_cache_bytes("10%") == int(total * 0.1)
