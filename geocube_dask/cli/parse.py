"""Parsing of the command line's values (``k=v`` lists, ranges, boxes, dates in file names, instance names).

Every parser raises :class:`~geocube_dask.errors.InvalidArgument` (or another ``GeocubeError``) whose
message names the option and shows the expected form, so the CLI reports it as one line.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import shapely
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from ..entities import Instance, Variable
from ..errors import InvalidArgument, InvalidGeometry, NotFound

# characters a record name may not contain (see entities.NAME_RE), replaced by "_"
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9\-:_]+")
# a date in a file name: 20240105, 2024-01-05, 20240105T103331, 2024-01-05T10:33:31, 20240105_103331
_NAME_DATE = re.compile(
    r"(?<!\d)(\d{4})(-?)(\d{2})\2(\d{2})(?:[T_]?(\d{2})(:?)(\d{2})\6(\d{2}))?(?!\d)"
)
RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt", ".img", ".nc")


def pairs(items: Sequence[str] | None, option: str) -> dict[str, str]:
    """``["k=v", …]`` → ``{k: v}`` (the value may be empty, the key may not)."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidArgument(f"{option} {item!r}: use KEY=VALUE")
        out[key.strip()] = value
    return out


def tag_filters(items: Sequence[str] | None, option: str = "--tag") -> dict[str, str | None]:
    """``["k=v", "k=pat*", "k"]`` → ``{k: "v", k: "pat*", k: None}`` (``k`` alone: the tag exists)."""
    out: dict[str, str | None] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not key.strip():
            raise InvalidArgument(f"{option} {item!r}: use KEY=VALUE, KEY=PATTERN (with * and ?) or KEY")
        out[key.strip()] = value if sep else None
    return out


def numbers(text: str, count: int, option: str, form: str) -> tuple[float, ...]:
    """``count`` finite comma-separated numbers."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise InvalidArgument(f"{option} {text!r}: give {form}") from None
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise InvalidArgument(f"{option} {text!r}: give {form}")
    return values


def bounds(text: str, option: str = "--bounds") -> tuple[float, float, float, float]:
    """``xmin,ymin,xmax,ymax`` with xmin < xmax and ymin < ymax."""
    xmin, ymin, xmax, ymax = numbers(text, 4, option, "xmin,ymin,xmax,ymax (four numbers)")
    if not (xmin < xmax and ymin < ymax):
        raise InvalidArgument(f"{option} {text!r}: xmin must be below xmax and ymin below ymax")
    return xmin, ymin, xmax, ymax


def point(text: str, option: str = "--point") -> tuple[float, float]:
    """``x,y`` (lon,lat by default)."""
    x, y = numbers(text, 2, option, "LON,LAT (two numbers, e.g. 5.6,45.0)")
    return x, y


def resolution(text: str) -> float | tuple[float, float]:
    """``20`` or ``20,30`` (x, y), positive."""
    parts = text.split(",")
    values = numbers(text, len(parts), "--resolution", "a positive number, or XRES,YRES")
    if len(values) > 2 or min(values) <= 0:
        raise InvalidArgument(f"--resolution {text!r}: give a positive number, or XRES,YRES")
    return values[0] if len(values) == 1 else (values[0], values[1])


def area(text: str, option: str = "--aoi") -> BaseGeometry:
    """A lon/lat search area: ``lon_min,lat_min,lon_max,lat_max`` or a WKT geometry."""
    if re.fullmatch(r"[\s\d.,+eE-]+", text):
        return box(*bounds(text, option))
    try:
        geom = shapely.from_wkt(text)
    except shapely.errors.ShapelyError as exc:
        raise InvalidGeometry(
            f"{option}: {text[:40]!r} is neither LON_MIN,LAT_MIN,LON_MAX,LAT_MAX nor WKT ({exc})"
        ) from None
    if geom is None or geom.is_empty:
        raise InvalidGeometry(f"{option}: the geometry is empty")
    return geom


def time_range(text: str | None) -> tuple[str | None, str | None] | None:
    """``START,END`` (start inclusive, end exclusive; either may be empty: open), or one day ``YYYY-MM-DD``."""
    if text is None:
        return None
    if "," not in text:
        try:
            day = datetime.strptime(text.strip(), "%Y-%m-%d")
        except ValueError:
            raise InvalidArgument(
                f"--time {text!r}: give START,END in ISO 8601 (either may be empty), or one day YYYY-MM-DD"
            ) from None
        return day.date().isoformat(), (day + timedelta(days=1)).date().isoformat()
    start, _, end = (p.strip() for p in text.partition(","))
    if "," in end:
        raise InvalidArgument(f"--time {text!r}: give START,END (two values)")
    return (start or None), (end or None)


def band_indexes(text: str | None) -> tuple[int, ...] | None:
    """``1,2,3`` → ``(1, 2, 3)`` (1-based band indexes in the file)."""
    if text is None:
        return None
    try:
        values = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise InvalidArgument(f"--bands {text!r}: give 1-based band indexes, e.g. 1,2,3") from None
    return values


def band_names(text: str) -> list[str]:
    """``B2,B3,B4`` → ``["B2", "B3", "B4"]``; an empty text is one unnamed band."""
    return [p.strip() for p in text.split(",")]


def dformat(text: str | None) -> tuple[str, str | None, str, str] | None:
    """``DTYPE,NODATA,MIN,MAX`` → a dformat tuple (NODATA may be ``nan``, or ``none``: no nodata)."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4 or not all(parts):
        raise InvalidArgument(f"--dformat {text!r}: give DTYPE,NODATA,MIN,MAX, e.g. uint16,0,0,10000")
    return parts[0], None if parts[1].lower() == "none" else parts[1], parts[2], parts[3]


def file_name(uri: str) -> str:
    """The last path component of a local path or URI, query and fragment left out."""
    path = unquote(urlsplit(uri).path) if "://" in uri else uri
    return Path(path).name


def record_name_for(uri: str) -> str:
    """The default record name of a file: its name without extension, unsafe characters as ``_``."""
    stem = file_name(uri)
    for suffix in RASTER_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    else:
        stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    name = _NAME_UNSAFE.sub("_", stem).strip("_")
    if not name:
        raise InvalidArgument(f"cannot make a record name from {uri!r}: give --record-name")
    return name


def datetime_in_name(uri: str) -> datetime | None:
    """The first valid date (and time) in the file name: ``YYYYMMDD[THHMMSS]`` or ``YYYY-MM-DD[THH:MM:SS]``."""
    for m in _NAME_DATE.finditer(file_name(uri)):
        year, _, month, day, hh, _, mm, ss = m.groups()
        try:
            found = datetime(int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=UTC)
        except ValueError:
            continue
        if 1900 <= found.year <= 2200:
            return found
    return None


def expand_paths(items: Sequence[str]) -> list[str]:
    """The files to index: URIs as given, local directories replaced by their raster files (sorted).

    A file named twice is indexed once.
    """
    out: list[str] = []
    for item in items:
        if "://" not in item and os.path.isdir(item):
            found = sorted(
                str(p) for p in Path(item).iterdir() if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES
            )
            if not found:
                raise InvalidArgument(f"directory {item!r} holds no raster file ({', '.join(RASTER_SUFFIXES)})")
            out.extend(found)
        else:
            out.append(item)
    return list(dict.fromkeys(out))


def get_variable(gc: Any, ref: str) -> Variable:
    """The variable named (or with id) ``ref``; NotFound says how to create it."""
    try:
        return gc.get_variable(ref)
    except NotFound:
        raise NotFound(
            f"unknown variable {ref!r}: create it with 'geocube variable create' (see 'geocube variable list')"
        ) from None


def _instance_of(gc: Any, var: Variable, name: str) -> Instance:
    try:
        return gc.get_instance(var, name)
    except NotFound:
        raise NotFound(
            f"variable {var.name!r} has no instance {name!r}: create it with "
            f"'geocube instance create {var.name} {name}' (see 'geocube instance list {var.name}')"
        ) from None


def resolve_instance(gc: Any, text: str, variable: str | None = None) -> tuple[Instance, Variable]:
    """The instance named ``VARIABLE/INSTANCE`` (or an instance id, or ``INSTANCE`` of ``variable``).

    Variable names may contain ``/``, instance names never do: the text is split at its last ``/``.
    """
    if variable is not None:
        if "/" in text:
            raise InvalidArgument(f"--instance {text!r}: with --variable, give the instance name alone")
        var = get_variable(gc, variable)
        return _instance_of(gc, var, text), var
    if "/" in text:
        var_name, _, inst_name = text.rpartition("/")
        var = get_variable(gc, var_name)
        return _instance_of(gc, var, inst_name), var
    try:
        inst = gc.get_instance(text)
    except NotFound:
        raise NotFound(
            f"unknown instance {text!r}: give VARIABLE/INSTANCE (see 'geocube instance list') or an instance id"
        ) from None
    return inst, gc.get_variable(inst.variable_id)
