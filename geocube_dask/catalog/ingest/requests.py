"""Indexing requests checked against a file's header and the variable (no database here).

``prepare_dataset`` checks a request against the ``FileInfo`` that ``fileinfo.read_file_info`` read
and against the variable, and returns a ``PreparedDataset`` ready to insert. It raises
``GeocubeError`` subclasses whose messages say what to fix.

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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from ...entities import DTYPES, DFormat, Instance, Record, Variable, dtype_range
from ...errors import IncompatibleDataset, InvalidArgument, InvalidDFormat
from .fileinfo import FileInfo, file_label


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


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def finite_number(value: Any, what: str) -> float:
    """``value`` as a float, or InvalidArgument if it is not a finite number."""
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
                f"band {b} does not exist in {file_label(info.uri, info.subdir)}: it has {info.count} band(s), "
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


def internal_dformat(dformat: DFormat | Sequence[object], file_dtype: str, where: str) -> DFormat:
    """The internal dformat of stored values of ``file_dtype`` given as ``dformat``: the file's dtype wins,
    the given nodata, min and max are kept when they are valid in it, else IncompatibleDataset."""
    given = DFormat.parse(dformat, nodata_required=False)
    if given.dtype == file_dtype:
        return given
    try:
        return DFormat(file_dtype, given.nodata, given.min, given.max)
    except InvalidDFormat as exc:
        raise IncompatibleDataset(
            f"the dformat says {given.dtype} but {where} stores {file_dtype}, and the file's dtype wins; "
            f"in {file_dtype} that dformat is invalid ({exc}). Give a dformat valid for {file_dtype}"
        ) from None


def check_real_range(rmin: float, rmax: float, variable: Variable, where: str) -> None:
    """``[rmin, rmax]`` (the variable values the internal min and max stand for; rmin > rmax is a decreasing
    mapping) must not be empty and must intersect the variable's range."""
    if rmin == rmax:
        raise InvalidArgument(
            f"real_min and real_max are both {rmin}: they are the variable values that the internal min and "
            "max stand for, so they must differ"
        )
    vmin, vmax = variable.dformat.min, variable.dformat.max
    lo, hi = min(rmin, rmax), max(rmin, rmax)
    if hi < vmin or lo > vmax:
        raise IncompatibleDataset(
            f"[real_min, real_max] = [{rmin}, {rmax}] does not intersect the range [{vmin}, {vmax}] of variable "
            f"{variable.name!r}: every value of {where} would fall outside it. Check real_min/real_max (the "
            "variable values that the internal dformat's min and max stand for)"
        )


def check_exponent(exponent: Any) -> float:
    """A mapping exponent: a finite number > 0."""
    exp = finite_number(exponent, "exponent")
    if exp <= 0:
        raise InvalidArgument(f"exponent must be > 0, not {exponent!r} (1 is a linear mapping)")
    return exp


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
    where = file_label(info.uri, info.subdir)
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
        fmt = internal_dformat(dformat, file_dtype, where)
    vmin, vmax = variable.dformat.min, variable.dformat.max
    rmin = vmin if real_min is None else finite_number(real_min, "real_min")
    rmax = vmax if real_max is None else finite_number(real_max, "real_max")
    check_real_range(rmin, rmax, variable, where)
    exp = check_exponent(exponent)
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
