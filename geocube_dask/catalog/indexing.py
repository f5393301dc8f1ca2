"""Read a raster file's header and turn it into the fields of a Dataset row (no database here).

``read_file_info`` opens the file with rasterio (local path, file://, http(s)://, s3:// through
GDAL's /vsicurl/ and /vsis3/) and returns what the catalogue stores about it. ``prepare_dataset``
checks an indexing request against the file and the variable and returns a ``PreparedDataset``
ready to insert. Both raise ``GeocubeError`` subclasses whose messages say what to fix.

Default internal dformat (when the request gives none): the file's dtype and nodata (``None`` when the
file declares no nodata), and as ``[min, max]`` the variable's ``[min, max]`` when that range fits in the
file's dtype — the file then stores the variable's values as they are (identity mapping; always the case
for a float file, or a file of the variable's own dtype) — otherwise the full range of the file's dtype
(e.g. a uint8 file for a 0..10000 uint16 variable: 0..255 is stretched onto 0..10000).

A given dformat whose dtype differs from the file's: the file's dtype wins (GEOCUBE.md). Its nodata,
min and max are kept when they are valid in the file's dtype, else the request is refused.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from .. import storage
from ..entities import DTYPES, DFormat, Instance, Record, Variable, dtype_range
from ..errors import IncompatibleDataset, InvalidArgument, InvalidDFormat, UnreadableFile
from ..projection import crs_string
from .footprints import footprint_4326, footprint_native


@dataclass(frozen=True)
class NewRecord:
    """Fields of a record to create (or reuse, if identical) while indexing a file.

    With ``aoi=None`` the record's AOI is the file's footprint in EPSG:4326.
    """

    name: str
    datetime: datetime | str
    tags: dict[str, str] | None = None
    aoi: Any = None  # shapely geometry in EPSG:4326, or None


@dataclass(frozen=True)
class IndexRequest:
    """One file (or subdir) to index as a dataset of ``record`` for ``instance``."""

    uri: str
    record: Record | str | NewRecord  # a Record, a record id, or a record to create from the file
    instance: Instance | str  # an Instance or an instance id
    bands: tuple[int, ...] | None = None  # 1-based; default: 1..number of variable bands
    dformat: DFormat | tuple[Any, ...] | None = None  # internal dformat; default from the file
    real_min: float | None = None
    real_max: float | None = None
    exponent: float = 1.0
    subdir: str = ""


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


@dataclass(frozen=True)
class PreparedDataset:
    """Every field of a Dataset row except its id, record, instance and status."""

    uri: str
    subdir: str
    bands: tuple[int, ...]
    dformat: DFormat
    real_min: float
    real_max: float
    exponent: float
    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int
    overviews: tuple[tuple[int, int], ...]
    footprint_wkt: str
    footprint_4326_wkt: str


# --- read_file_info ---------------------------------------------------------------------------------


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


def _where(uri: str, subdir: str) -> str:
    return f"{uri!r}" + (f" (subdir {subdir!r})" if subdir else "")


def _open_error(uri: str, subdir: str, exc: BaseException) -> UnreadableFile:
    """Turn a failure to open into an UnreadableFile that says which of the usual causes it is."""
    detail = _gdal_messages(exc)
    lower = detail.lower()
    where = _where(uri, subdir)
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
            f"cannot index {_where(uri, subdir)}: reading the last block of its {what} failed "
            f"({_gdal_messages(exc)}). The file is truncated or corrupt: copy or write it again"
        ) from exc


def _check_georeferenced(src: rasterio.io.DatasetReader, uri: str, subdir: str) -> None:
    where = _where(uri, subdir)
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
    where = _where(norm, subdir)
    env = {} if "GDAL_DISABLE_READDIR_ON_OPEN" in storage.gdal_env() else {
        # a remote "directory" listing on every open costs a request (and on S3 a LIST): skip it
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"
    }
    with storage.gdal_env_context(env):
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


# --- prepare_dataset ---------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(value: Any, what: str) -> float:
    if not _is_number(value) or not math.isfinite(float(value)):
        raise InvalidArgument(f"{what} must be a finite number, not {value!r}")
    return float(value)


def _check_bands(bands: Sequence[int] | None, info: FileInfo, variable: Variable) -> tuple[int, ...]:
    nvar = len(variable.bands)
    if bands is None:
        chosen = tuple(range(1, nvar + 1))
    else:
        if isinstance(bands, str | bytes) or not isinstance(bands, Sequence | np.ndarray):
            raise InvalidArgument(f"bands must be a sequence of 1-based band indexes, not {bands!r}")
        if not all(isinstance(b, numbers.Integral) and not isinstance(b, bool) for b in bands):
            raise InvalidArgument(f"bands must be integers (1-based band indexes), not {list(bands)!r}")
        chosen = tuple(int(b) for b in bands)
        if len(chosen) != nvar:
            raise IncompatibleDataset(
                f"{len(chosen)} band(s) {list(chosen)} given for variable {variable.name!r}, which has {nvar} "
                f"({', '.join(variable.bands)}): give exactly {nvar} band index(es), one per variable band"
            )
    for b in chosen:
        if not 1 <= b <= info.count:
            raise IncompatibleDataset(
                f"band {b} does not exist in {_where(info.uri, info.subdir)}: it has {info.count} band(s), "
                f"numbered 1 to {info.count}. Choose bands=… among them"
                + ("" if bands is not None else f" (by default the first {nvar}, one per variable band)")
            )
    return chosen


def _same(values: Sequence[float | None]) -> bool:
    """Whether all nodata values are equal (NaN equals NaN, None equals None)."""
    first = values[0]
    for v in values[1:]:
        if first is None or v is None:
            if first is not v:
                return False
        elif not (v == first or (math.isnan(v) and math.isnan(first))):
            return False
    return True


def default_dformat(dtype: str, nodata: float | None, variable: Variable) -> DFormat:
    """The internal dformat assumed for a file of ``dtype`` and ``nodata`` (see the module docstring)."""
    lo, hi = dtype_range(dtype)
    vmin, vmax = variable.dformat.min, variable.dformat.max
    if lo <= vmin and vmax <= hi:
        return DFormat(dtype, nodata, vmin, vmax)
    return DFormat(dtype, nodata, lo, hi)


def prepare_dataset(
    info: FileInfo,
    variable: Variable,
    bands: Sequence[int] | None = None,
    dformat: DFormat | Sequence[object] | None = None,
    real_min: float | None = None,
    real_max: float | None = None,
    exponent: float = 1.0,
) -> PreparedDataset:
    """Validate an indexing request against the file and the variable. Raises ``GeocubeError``s.

    ``bands`` default to 1..(number of variable bands); ``dformat`` is the internal format of the stored
    values (default: see the module docstring); ``real_min``/``real_max`` are the variable values that
    the internal min/max stand for (default: the variable's min/max; real_min > real_max is a decreasing
    mapping); ``exponent`` > 0 shapes the mapping.
    """
    where = _where(info.uri, info.subdir)
    chosen = _check_bands(bands, info, variable)
    dtypes = sorted({info.dtypes[b - 1] for b in chosen})
    if len(dtypes) > 1:
        detail = ", ".join(f"band {b}: {info.dtypes[b - 1]}" for b in chosen)
        raise IncompatibleDataset(
            f"the selected bands of {where} have different dtypes ({detail}): a dataset's bands must share one "
            "dtype. Index bands of each dtype as separate datasets, or convert the file"
        )
    file_dtype = dtypes[0]
    if file_dtype not in DTYPES:
        raise IncompatibleDataset(
            f"{where} stores {file_dtype} values, which geocube_dask cannot map: convert it to one of "
            f"{', '.join(DTYPES)}"
        )
    if dformat is None:
        nodatas = [info.nodatas[b - 1] for b in chosen]
        if not _same(nodatas):
            raise IncompatibleDataset(
                f"the selected bands of {where} have different nodata values {nodatas}: give "
                "dformat=(dtype, nodata, min, max) to say which value means no data"
            )
        try:
            fmt = default_dformat(file_dtype, nodatas[0], variable)
        except InvalidDFormat as exc:
            raise IncompatibleDataset(
                f"cannot derive the internal dformat of {where} from its header ({exc}): give "
                "dformat=(dtype, nodata, min, max) explicitly"
            ) from None
    else:
        given = DFormat.parse(dformat, nodata_required=False)
        if given.dtype == file_dtype:
            fmt = given
        else:
            try:
                fmt = DFormat(file_dtype, given.nodata, given.min, given.max)
            except InvalidDFormat as exc:
                raise IncompatibleDataset(
                    f"the dformat says {given.dtype} but {where} stores {file_dtype}, and the file's dtype wins; "
                    f"in {file_dtype} that dformat is invalid ({exc}). Give a dformat valid for {file_dtype}"
                ) from None
    vmin, vmax = variable.dformat.min, variable.dformat.max
    rmin = vmin if real_min is None else _finite(real_min, "real_min")
    rmax = vmax if real_max is None else _finite(real_max, "real_max")
    if rmin == rmax:
        raise InvalidArgument(
            f"real_min and real_max are both {rmin}: they are the variable values that the internal min and "
            "max stand for, so they must differ"
        )
    lo, hi = min(rmin, rmax), max(rmin, rmax)
    if hi < vmin or lo > vmax:
        raise IncompatibleDataset(
            f"[real_min, real_max] = [{rmin}, {rmax}] does not intersect the range [{vmin}, {vmax}] of variable "
            f"{variable.name!r}: every value of {where} would fall outside it. Check real_min/real_max (the "
            "variable values that the internal dformat's min and max stand for)"
        )
    exp = _finite(exponent, "exponent")
    if exp <= 0:
        raise InvalidArgument(f"exponent must be > 0, not {exponent!r} (1 is a linear mapping)")
    return PreparedDataset(
        uri=info.uri,
        subdir=info.subdir,
        bands=chosen,
        dformat=fmt,
        real_min=rmin,
        real_max=rmax,
        exponent=exp,
        crs=info.crs,
        transform=info.transform,
        width=info.width,
        height=info.height,
        overviews=info.overviews,
        footprint_wkt=info.footprint_wkt,
        footprint_4326_wkt=info.footprint_4326_wkt,
    )
