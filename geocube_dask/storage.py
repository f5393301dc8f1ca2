"""Where files live: URIs as the catalogue stores them, their GDAL names, uploads and deletions.

Every pixel and header is read through GDAL (rasterio), so a dataset's uri must turn into a name GDAL
opens: local paths stay paths, ``http(s)://`` goes through ``/vsicurl/``, ``s3://`` through
``/vsis3/``, ``gs://`` through ``/vsigs/`` and ``az://`` through ``/vsiaz/``. How GDAL reaches them
(endpoints, credentials…) is configured the usual GDAL way; :mod:`.gdal_settings` carries those
settings to the workers.

Writing (consolidated files, their deletion) goes through fsspec, which knows the same schemes once its
backend is installed (``s3fs`` for ``s3://``, ``gcsfs`` for ``gs://``, ``adlfs`` for ``az://``).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import InvalidArgument

# uri scheme -> GDAL virtual file system prefix
_VSI_PREFIXES = {
    "http": "/vsicurl/",
    "https": "/vsicurl/",
    "s3": "/vsis3/",
    "gs": "/vsigs/",
    "gcs": "/vsigs/",
    "az": "/vsiaz/",
    "azure": "/vsiaz/",
}


def _scheme(uri: str) -> str:
    """The lower-case scheme of ``uri``: "" for a local path (``a:b.tif`` and ``C:\\x`` are paths)."""
    if uri.startswith("/") or not ("://" in uri or uri.lower().startswith("file:")):
        return ""
    scheme = urlsplit(uri).scheme.lower()
    return "" if len(scheme) <= 1 else scheme


def _file_uri_path(uri: str) -> str:
    """The local path of a ``file:`` URI (``file:///a/b``, ``file://localhost/a/b``, ``file:/a/b``)."""
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise InvalidArgument(
            f"cannot read {uri!r}: file:// URIs must name a local file (file:///absolute/path)"
        )
    return unquote(parts.path)


_REMOTE_VSI = ("/vsicurl", "/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss", "/vsiswift", "/vsiwebhdfs")


def is_remote(uri: str) -> bool:
    """Whether ``uri`` names an object reached over the network (http, s3, gs, az or a /vsi path to them)."""
    if uri.startswith("/vsi"):
        return any(prefix in uri for prefix in _REMOTE_VSI)
    return _scheme(uri) in _VSI_PREFIXES


def normalize_uri(uri: str | os.PathLike[str]) -> str:
    """The uri as the catalogue stores it: local paths (and ``file:`` URIs) absolute, other URIs unchanged.

    Storing absolute paths makes a dataset readable whatever the working directory of the reader.
    """
    text = os.fspath(uri)
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument(f"invalid uri {uri!r}: give a file path or a URI (s3://, https://, …)")
    if text.startswith("/vsi"):
        return text
    scheme = _scheme(text)
    if scheme == "file":
        return os.path.abspath(_file_uri_path(text))
    if scheme:
        return text
    return os.path.abspath(os.path.expanduser(text))


def to_gdal_path(uri: str | os.PathLike[str], subdir: str = "") -> str:
    """The name GDAL opens for ``uri`` (and ``subdir``, e.g. ``GTIFF_DIR:3``).

    ``/path`` and ``file:///path`` → ``/path``; ``https://h/p`` → ``/vsicurl/https://h/p``;
    ``s3://b/k`` → ``/vsis3/b/k``; ``gs://b/k`` → ``/vsigs/b/k``; ``az://c/k`` → ``/vsiaz/c/k``;
    ``/vsi…`` names unchanged. With a subdir, GDAL's sub-image syntax ``GTIFF_DIR:3:<path>``.
    """
    text = normalize_uri(uri)
    scheme = _scheme(text) if not text.startswith("/vsi") else ""
    if scheme in ("http", "https"):
        path = _VSI_PREFIXES[scheme] + text
    elif scheme:
        prefix = _VSI_PREFIXES.get(scheme)
        if prefix is None:
            known = ", ".join(sorted({f"{s}://" for s in _VSI_PREFIXES} | {"file://"}))
            raise InvalidArgument(f"unsupported uri scheme in {text!r}: use a local path or one of {known}")
        path = prefix + text.split("://", 1)[1]
    else:
        path = text
    if subdir:
        return f"{check_subdir(subdir)}:{path}"
    return path


def check_subdir(subdir: str) -> str:
    """Return ``subdir`` if it looks like a GDAL sub-image prefix (``DRIVER_KEY:value``), else raise."""
    parts = subdir.split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts) or " " in subdir:
        raise InvalidArgument(
            f"invalid subdir {subdir!r}: give GDAL's sub-image prefix without the file name, "
            "e.g. 'GTIFF_DIR:3' for the third image of a multi-image TIFF"
        )
    return subdir


# --- writing through fsspec ------------------------------------------------------------------------


def _filesystem(uri: str):  # -> tuple[fsspec.AbstractFileSystem, str]
    """The fsspec filesystem and path for ``uri`` (local paths and ``file:`` URIs included)."""
    import fsspec.core

    text = normalize_uri(uri)
    if text.startswith("/vsi"):
        raise InvalidArgument(f"cannot write to GDAL virtual path {text!r}: give a plain path or URI")
    scheme = _scheme(text)
    if scheme in ("az", "azure"):
        text = "abfs://" + text.split("://", 1)[1]
    try:
        return fsspec.core.url_to_fs(text)
    except ImportError as exc:
        raise InvalidArgument(
            f"cannot reach {text!r} for writing: {exc}. Install the fsspec backend for that scheme"
        ) from None
    except ValueError as exc:
        raise InvalidArgument(f"cannot reach {text!r} for writing: {exc}") from None


def exists(uri: str) -> bool:
    """Whether a file exists at ``uri`` (local path or any URI fsspec knows)."""
    fs, path = _filesystem(uri)
    return bool(fs.exists(path))


def upload(local_path: str | os.PathLike[str], uri: str) -> str:
    """Copy the local file ``local_path`` to ``uri`` (creating local parent directories); return the uri.

    A local destination is written through a temporary name then renamed, so a reader never sees a
    half-written file; the temporary files an earlier writer of ``uri`` left (a process killed while it
    copied) go first. One writer per destination at a time.
    """
    source = Path(local_path)
    if not source.is_file():
        raise InvalidArgument(f"cannot upload {str(source)!r}: it is not a file")
    target = normalize_uri(uri)
    fs, path = _filesystem(target)
    if _is_local(target):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _remove_partials(path)
        partial = f"{path}.partial-{os.getpid()}"
        fs.put_file(str(source), partial)
        os.replace(partial, path)
    else:
        fs.put_file(str(source), path)
    return target


def _is_local(uri: str) -> bool:
    return _scheme(normalize_uri(uri)) in ("", "file")


def _remove_partials(path: str) -> None:
    """Remove the temporary files :func:`upload` writes a local ``path`` through (``path.partial-PID``)."""
    target = Path(path)
    for partial in target.parent.glob(f"{glob.escape(target.name)}.partial-*"):
        partial.unlink(missing_ok=True)


def delete(uri: str) -> bool:
    """Delete the file at ``uri`` (for a local file, with the temporary copies an interrupted
    :func:`upload` left); return False if there was nothing to delete (deleting is idempotent)."""
    fs, path = _filesystem(uri)
    if _is_local(uri):
        _remove_partials(path)
    if not fs.exists(path):
        return False
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        return False
    return True


