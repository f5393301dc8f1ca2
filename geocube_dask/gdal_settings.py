"""GDAL's settings: which travel with a dask graph, how a task applies them, and GDAL's block cache.

Access to object storage and GDAL's reading behaviour are configured the usual GDAL way, with
environment variables or a ``rasterio.Env`` (``AWS_S3_ENDPOINT``, ``AWS_HTTPS``, ``AWS_VIRTUAL_HOSTING``,
``AWS_ACCESS_KEY_ID``, ``GDAL_DISABLE_READDIR_ON_OPEN``…). :func:`gdal_env` captures the reading settings
among them (not credentials, profiles or local paths) so that a dask graph built here re-applies them
(:func:`gdal_env_context`) on workers elsewhere; credentials travel only when given explicitly, and a
plan's JSON leaves them out (:func:`public_env`). GDAL's block cache is one per process: its size is set
once per process (:func:`set_block_cache_once`).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
from collections.abc import Iterator, Mapping

from .errors import InvalidArgument

# Settings that describe this machine rather than how to read (install paths, certificate bundles):
# shipping them to a worker with another file system would break it.
_LOCAL_ONLY = frozenset({"GDAL_DATA", "GDAL_DRIVER_PATH", "GDAL_PYTHON_DRIVER_PATH", "CPL_TMPDIR"})


def _is_local_only(name: str) -> bool:
    return name in _LOCAL_ONLY or name.endswith("CA_BUNDLE")

# rasterio's own bookkeeping options (not GDAL settings)
_RASTERIO_INTERNAL = frozenset({"RASTERIO_ENV"})

# Substrings of setting names whose values are credentials.
SECRET_MARKERS = (
    "SECRET", "TOKEN", "PASSWORD", "PASSWD", "USERPWD", "SESSION", "CREDENTIAL", "ACCESS_KEY",
    "PRIVATE_KEY", "CONNECTION_STRING", "BEARER", "HTTP_HEADERS", "API_KEY",
)


def _option_text(value: object) -> str:
    """A config option value as GDAL reads it (booleans become YES/NO)."""
    if isinstance(value, bool):
        return "YES" if value else "NO"
    return str(value)


# What travels with a graph by default: the settings that change how GDAL reads (network behaviour,
# caching, endpoints, regions, anonymous access), never identities — no credentials, profiles or
# credential files, which would override a worker's own identity — and no client-local paths.
READ_SETTING_PREFIXES = (
    "GDAL_HTTP_", "CPL_VSIL_", "CPL_CURL_", "VSI_", "GTIFF_", "CPL_VSIS3_", "CPL_GS_", "CPL_AZURE_",
)
READ_SETTING_NAMES = frozenset({
    "GDAL_DISABLE_READDIR_ON_OPEN", "GDAL_INGESTED_BYTES_AT_OPEN", "GDAL_CACHEMAX", "GDAL_NUM_THREADS",
    "GDAL_READDIR_LIMIT_ON_OPEN", "CPL_TIMESTAMP", "CPL_DEBUG",
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_S3_ENDPOINT", "AWS_HTTPS", "AWS_VIRTUAL_HOSTING",
    "AWS_NO_SIGN_REQUEST", "AWS_REQUEST_PAYER", "AWS_STS_ENDPOINT", "AWS_STS_REGIONAL_ENDPOINTS",
    "GS_NO_SIGN_REQUEST", "GS_USER_PROJECT", "AZURE_NO_SIGN_REQUEST",
    "OSS_ENDPOINT", "OSS_HTTPS", "OSS_VIRTUAL_HOSTING",
})
# Never shipped unless passed explicitly: they name this machine's identity or files.
_IDENTITY = ("PROFILE", "CREDENTIALS_FILE", "CONFIG_FILE", "APPLICATION_CREDENTIALS", "CONTAINER_CREDENTIALS",
             "WEB_IDENTITY_TOKEN_FILE", "ROLE_ARN", "ROLE_SESSION_NAME", "CA_BUNDLE", "CAINFO", "CAPATH",
             "NETRC_FILE", "COOKIEFILE", "COOKIEJAR", "SSLCERT", "SSLKEY")


def is_read_setting(name: str) -> bool:
    """Whether a setting travels with a graph by default: it changes how GDAL reads, and is neither a
    credential, an identity (profile, credential file, role) nor a path on this machine."""
    upper = name.upper()
    if is_secret_key(upper) or _is_local_only(upper) or any(marker in upper for marker in _IDENTITY):
        return False
    return upper in READ_SETTING_NAMES or upper.startswith(READ_SETTING_PREFIXES)


def gdal_env(explicit: Mapping[str, object] | None = None) -> dict[str, str]:
    """The GDAL settings a graph built now carries to its tasks, as strings.

    The reading settings (:func:`is_read_setting`) in force: environment variables, overridden by the
    options of the active ``rasterio.Env`` (if any). Credentials, profiles, credential files and
    machine paths stay home — a worker reaches storage with its own identity — unless given in
    ``explicit`` (e.g. ``get_cube(..., gdal_env={"AWS_ACCESS_KEY_ID": …})``), which is shipped as given
    and wins over the captured values. A plan's JSON still leaves credentials out (:func:`public_env`).
    """
    import rasterio.env

    env = {k.upper(): v for k, v in os.environ.items() if is_read_setting(k)}
    if rasterio.env.hasenv():
        for key, value in rasterio.env.getenv().items():
            name = str(key).upper()
            if name in _RASTERIO_INTERNAL or value is None or not is_read_setting(name):
                continue
            env[name] = _option_text(value)
    for key, value in (explicit or {}).items():
        if not isinstance(key, str) or not key.strip():
            raise InvalidArgument(f"gdal_env keys must be GDAL setting names, not {key!r}")
        env[key.upper()] = _option_text(value)
    check_block_cache(env.get("GDAL_CACHEMAX"))
    return dict(sorted(env.items()))


def is_secret_key(key: str) -> bool:
    """Whether a setting's value is a credential (so that a serialised plan can leave it out)."""
    upper = key.upper()
    return any(marker in upper for marker in SECRET_MARKERS)


def public_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without its credentials (see :func:`is_secret_key`)."""
    return {k: v for k, v in env.items() if not is_secret_key(k)}


# Settings for processes that read MUCOG records from object storage *image by image*
# (``geocube.mucog-reads="never"``, or GDAL used directly). Each record is then a GDAL dataset of its
# own and GDAL fetches each of its tiles separately; downloaded in 1 MiB pieces, one range at a time,
# the process-wide /vsicurl/ cache serves the neighbouring records' tiles (which a MUCOG keeps side by
# side) from one request — fewer requests, but slower than GDAL's defaults in bench/consolidate.py (the
# reads of 100 datasets wait on one another). Cubes need none of this: they read remote MUCOGs in
# batches (geocube_dask.graph.batch: the tiles of all records in a few large ranges), where GDAL's
# defaults are as fast (and SERIAL fetches a batch's ranges one after the other instead of in
# parallel). GDAL reads the piece size once per process, at its first remote read, so these belong in
# the environment of worker processes, not in a task; they make reads of separate COGs fetch more
# bytes for the same number of requests.
MUCOG_READ_SETTINGS = {"GDAL_HTTP_MULTIRANGE": "SERIAL", "CPL_VSIL_CURL_CHUNK_SIZE": str(2**20)}


# Credentials that rasterio.Env refuses as keyword options (it wants them through a session object).
_RASTERIO_REFUSED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@contextlib.contextmanager
def gdal_env_context(env: Mapping[str, str]) -> Iterator[None]:
    """Apply GDAL settings captured by :func:`gdal_env` for the duration of the block (this thread).

    ``rasterio.Env(**env)`` refuses ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, so those are set as
    plain config options inside the environment; rasterio removes them again when the block ends.
    ``GDAL_CACHEMAX`` is left out: GDAL's block cache is one per process (rasterio sets it with
    ``GDALSetCacheMax64``, in bytes), so concurrent tasks setting and restoring it would race; it is set
    once per process by :func:`set_block_cache_once`.
    In a child thread rasterio sets thread-local options, so concurrent tasks do not see each other's.
    """
    if not env:
        yield
        return
    import rasterio
    import rasterio.env
    from rasterio.session import DummySession

    plain: dict[str, object] = {k: v for k, v in env.items() if k.upper() not in _RASTERIO_REFUSED}
    creds = {k.upper(): v for k, v in env.items() if k.upper() in _RASTERIO_REFUSED}
    plain.pop("GDAL_CACHEMAX", None)
    with rasterio.Env(session=DummySession(), **plain):
        if creds:
            rasterio.env.setenv(**creds)
        yield


# --- GDAL's block cache: one per process ---------------------------------------------------------------

_block_cache_lock = threading.Lock()
_block_cache_bytes: int | None = None


_SIZE_UNITS = {"B": 1, "K": 2**10, "KB": 2**10, "KIB": 2**10, "M": 2**20, "MB": 2**20, "MIB": 2**20,
               "G": 2**30, "GB": 2**30, "GIB": 2**30, "T": 2**40, "TB": 2**40, "TIB": 2**40}
_SIZE = re.compile(r"^([0-9]*\.?[0-9]+(?:E[+-]?[0-9]+)?)\s*([A-Z]*)$")


def block_cache_bytes(value: object) -> int | None:
    """``GDAL_CACHEMAX`` in bytes, read as GDAL reads it: a number below 100,000 is megabytes, a larger one
    bytes, ``"NN%"`` a share of the machine's memory; also a size with a unit (``"2GB"``, ``"512 MiB"``,
    powers of 1024, as GDAL's megabytes are), which GDAL 3.10 itself does not read. ``None`` for anything
    else (see :func:`check_block_cache`)."""
    if isinstance(value, bool):
        return None
    text = str(value).strip().upper()
    try:
        if text.endswith("%"):
            share = float(text[:-1])
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            return int(total * share / 100) if 0 < share <= 100 else None
    except (ValueError, OSError):
        return None
    match = _SIZE.match(text)
    if match is None or match.group(2) not in ("", *_SIZE_UNITS):
        return None
    number, unit = float(match.group(1)), match.group(2)
    if not math.isfinite(number) or number <= 0:
        return None
    if unit:
        return int(number * _SIZE_UNITS[unit])
    return int(number * 2**20) if number < 100_000 else int(number)


def check_block_cache(value: object, where: str = "GDAL_CACHEMAX") -> object:
    """``value`` if :func:`block_cache_bytes` reads it (or it is None), else InvalidArgument saying what
    would be read: a bad size must fail when the request is made, not be ignored by every worker."""
    if value is not None and block_cache_bytes(value) is None:
        raise InvalidArgument(
            f"{where}={value!r} is not a cache size: give megabytes (e.g. 512), bytes (a number >= 100000), "
            "a share of the memory ('5%') or a size with its unit ('2GB')"
        )
    return value


def set_block_cache_once(value: object) -> int | None:
    """Size GDAL's block cache for this whole process, once: the first call that gives a usable value
    (see :func:`block_cache_bytes`) sets it and later calls change nothing. Returns the bytes set in this
    process (None while unset). The cache is process-wide in GDAL, so a per-task setting could only race."""
    global _block_cache_bytes
    if _block_cache_bytes is not None:
        return _block_cache_bytes
    nbytes = block_cache_bytes(value)
    if nbytes is None:
        return None
    with _block_cache_lock:
        if _block_cache_bytes is None:
            from rasterio._env import set_gdal_config  # GDALSetCacheMax64: bytes, process-wide

            set_gdal_config("GDAL_CACHEMAX", nbytes)
            _block_cache_bytes = nbytes
    return _block_cache_bytes
