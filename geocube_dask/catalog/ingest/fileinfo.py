"""Reading a raster file's header: what the catalogue stores about a file (no database here).

``read_file_info`` opens the file with rasterio (local path, file://, http(s)://, s3:// through GDAL's
/vsicurl/ and /vsis3/) and returns a ``FileInfo``: CRS, geotransform, size, dtypes, nodata, overview
sizes and footprints. Unreadable, truncated or non-georeferenced files raise ``UnreadableFile`` with a
message that says what to fix.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from ... import gdal_settings, storage
from ...errors import InvalidArgument, UnreadableFile
from ...projection import crs_string
from .footprints import footprint_4326, footprint_native


@dataclass(frozen=True)
class FileInfo:
    """What the header of one raster (one subdir of a file) says."""

    uri: str  # as given by the user (normalised: local paths made absolute, file:// kept as path)
    subdir: str  # "" or e.g. "GTIFF_DIR:3"
    crs: str  # "EPSG:xxxx" when it has an authority code, else WKT
    transform: tuple[float, float, float, float, float, float]  # affine a, b, c, d, e, f
    width: int
    height: int
    count: int
    dtypes: tuple[str, ...]  # per band, numpy names
    nodatas: tuple[float | None, ...]  # per band
    overviews: tuple[tuple[int, int], ...]  # (width, height) of each overview level, finest first
    footprint_wkt: str  # file bounds polygon in the file CRS
    footprint_4326_wkt: str  # the same, densified and transformed to EPSG:4326 (lon, lat)



def _gdal_messages(exc: BaseException) -> str:
    """The message of ``exc`` and of the exceptions it was raised from (GDAL's details are there)."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).strip()
        if text and text not in parts:
            parts.append(text)
        current = current.__cause__ or current.__context__
    return "; ".join(parts) or type(exc).__name__


def file_label(uri: str, subdir: str) -> str:
    """How messages name a file (and its sub-image)."""
    return f"{uri!r}" + (f" (subdir {subdir!r})" if subdir else "")


def _open_error(uri: str, subdir: str, exc: BaseException) -> UnreadableFile:
    """Turn a failure to open into an UnreadableFile that says which of the usual causes it is."""
    detail = _gdal_messages(exc)
    lower = detail.lower()
    where = file_label(uri, subdir)
    if not storage.is_remote(uri) and not uri.startswith("/vsi") and not os.path.exists(uri):
        return UnreadableFile(f"cannot index {where}: the file does not exist. Check the path")
    if "404" in lower or "does not exist" in lower or "no such file" in lower:
        return UnreadableFile(
            f"cannot index {where}: it does not exist or could not be reached ({detail}). Check the uri and, "
            "for object storage, the endpoint and credential settings (AWS_S3_ENDPOINT, AWS_ACCESS_KEY_ID…)"
        )
    if "403" in lower or "access denied" in lower or "permission denied" in lower:
        return UnreadableFile(f"cannot index {where}: access is denied ({detail}). Check the credentials")
    if "credential" in lower or "configuration option" in lower:
        return UnreadableFile(
            f"cannot index {where}: no usable storage credentials ({detail}). Set them the GDAL way "
            "(e.g. AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or AWS_NO_SIGN_REQUEST=YES for public data)"
        )
    if "connect" in lower or "timed out" in lower or "resolve host" in lower:
        return UnreadableFile(
            f"cannot index {where}: its storage could not be reached ({detail}). Check the uri, the "
            "network and the endpoint settings (AWS_S3_ENDPOINT…)"
        )
    if "not recognized as being in a supported file format" in lower or "not recognised" in lower:
        return UnreadableFile(
            f"cannot index {where}: it is not a raster file GDAL can read ({detail}). Give a GeoTIFF/COG or "
            "another raster format GDAL supports"
        )
    return UnreadableFile(
        f"cannot index {where}: GDAL could not open it ({detail}). Check that it is a complete raster file "
        "(it may be truncated or corrupt) and that its storage is reachable"
    )


def _open(path: str, uri: str, subdir: str, **kwargs: Any) -> rasterio.io.DatasetReader:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path, **kwargs)
    except (RasterioError, OSError) as exc:
        raise _open_error(uri, subdir, exc) from exc


def _probe(src: rasterio.io.DatasetReader, uri: str, subdir: str, what: str) -> None:
    """Decode the last block (all bands, and the mask if any) of ``src``: a truncated file fails here.

    A COG keeps its full-resolution blocks at the end of the file and a GeoTIFF with appended overviews
    keeps its smallest overview there, so reading the last block of both levels finds a truncated file
    for one or two block reads. Corruption elsewhere only shows when the pixels are read.
    """
    window = Window(src.width - 1, src.height - 1, 1, 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            groups: dict[str, list[int]] = {}
            for index, dtype in zip(src.indexes, src.dtypes, strict=True):
                groups.setdefault(dtype, []).append(index)
            for indexes in groups.values():  # rasterio reads bands of one dtype at a time
                src.read(indexes=indexes, window=window)
            if any(MaskFlags.per_dataset in flags for flags in src.mask_flag_enums):
                src.read_masks(1, window=window)
    except (RasterioError, OSError) as exc:
        raise UnreadableFile(
            f"cannot index {file_label(uri, subdir)}: reading the last block of its {what} failed "
            f"({_gdal_messages(exc)}). The file is truncated or corrupt: copy or write it again"
        ) from exc


def _check_georeferenced(src: rasterio.io.DatasetReader, uri: str, subdir: str) -> None:
    where = file_label(uri, subdir)
    gcps, _ = src.gcps
    has_transform = src.transform != Affine.identity()
    if not has_transform and (gcps or src.rpcs):
        raise UnreadableFile(
            f"cannot index {where}: it is georeferenced by {'GCPs' if gcps else 'RPCs'} only, not by a "
            "geotransform. Orthorectify or warp it first (e.g. gdalwarp) and index the result"
        )
    has_crs = src.crs is not None and bool(src.crs.to_wkt())
    if not has_crs and not has_transform:
        raise UnreadableFile(
            f"cannot index {where}: it is not georeferenced (no coordinate reference system, no geotransform), "
            "so where it lies is unknown. Georeference it first (e.g. gdal_translate -a_srs … -a_ullr …)"
        )
    if not has_crs:
        raise UnreadableFile(
            f"cannot index {where}: it has no coordinate reference system, so its footprint is unknown. "
            "Assign one first (e.g. gdal_edit.py -a_srs EPSG:xxxx)"
        )
    if not has_transform:
        raise UnreadableFile(
            f"cannot index {where}: it has no geotransform (pixel grid position), so its footprint is "
            "unknown. Assign one first (e.g. gdal_edit.py -a_ullr or -a_gt)"
        )
    t = src.transform
    if not all(math.isfinite(v) for v in t[:6]) or t.determinant == 0:
        raise UnreadableFile(f"cannot index {where}: its geotransform {tuple(t[:6])} is degenerate")


def read_file_info(uri: str, subdir: str = "", *, check_data: bool = True) -> FileInfo:
    """Open ``uri`` (and ``subdir``) with rasterio and describe it. Raises ``UnreadableFile``.

    ``uri`` is a local path, a ``file://``, ``http(s)://``, ``s3://``, ``gs://`` or ``az://`` URI (read
    with the GDAL settings in force: environment or ``rasterio.Env``). Overview sizes come from opening
    each overview level, so they are exactly what GDAL will read. With ``check_data`` (default) the last
    block of the full resolution and of the smallest overview are decoded, which finds truncated files.
    Files without georeferencing (no CRS, no geotransform, or only GCPs/RPCs) are refused.
    """
    try:
        norm = storage.normalize_uri(uri)
        path = storage.to_gdal_path(norm, subdir)
    except InvalidArgument as exc:
        raise UnreadableFile(f"cannot index {uri!r}: {exc}") from None
    where = file_label(norm, subdir)
    env = {} if "GDAL_DISABLE_READDIR_ON_OPEN" in gdal_settings.gdal_env() else {
        # a remote "directory" listing on every open costs a request (and on S3 a LIST): skip it
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"
    }
    with gdal_settings.gdal_env_context(env):
        with _open(path, norm, subdir) as src:
            if src.count == 0:
                subs = ", ".join(sd.split(":", 2)[0] + ":" + sd.split(":", 2)[1] for sd in src.subdatasets[:5]
                                 if sd.count(":") >= 2)
                hint = f" It has sub-images ({subs}…): index one of them with subdir=" if subs else ""
                raise UnreadableFile(f"cannot index {where}: it has no raster band.{hint}")
            _check_georeferenced(src, norm, subdir)
            crs = crs_string(src.crs)
            transform = src.transform
            width, height, count = src.width, src.height, src.count
            dtypes = tuple(str(np.dtype(d).name) for d in src.dtypes)
            nodatas = tuple(None if v is None else float(v) for v in src.nodatavals)
            levels = min(len(src.overviews(b)) for b in range(1, count + 1))
            if check_data:
                _probe(src, norm, subdir, "full resolution")
        overviews: list[tuple[int, int]] = []
        for level in range(levels):
            with _open(path, norm, subdir, overview_level=level) as ovr:
                overviews.append((ovr.width, ovr.height))
                if check_data and level == levels - 1:
                    _probe(ovr, norm, subdir, f"smallest overview (level {level})")
    try:
        fp4326 = footprint_4326(crs, transform, width, height)
    except ValueError as exc:
        raise UnreadableFile(f"cannot index {where}: {exc}. Check its CRS and geotransform") from None
    return FileInfo(
        uri=norm,
        subdir=subdir,
        crs=crs,
        transform=tuple(float(v) for v in transform[:6]),  # type: ignore[arg-type]
        width=width,
        height=height,
        count=count,
        dtypes=dtypes,
        nodatas=nodatas,
        overviews=tuple(overviews),
        footprint_wkt=footprint_native(transform, width, height).wkt,
        footprint_4326_wkt=fp4326.wkt,
    )
