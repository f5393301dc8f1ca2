"""Plain, validated value types shared by the catalogue and the engine.

Nothing here touches a database or a file. The value types (DFormat, Palette) validate themselves on
construction and raise a :class:`~geocube_dask.errors.GeocubeError` subclass whose message says what to
fix; the entity rows (Variable, Record, Dataset, Layout…) are checked by the catalogue that creates them.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np
import shapely

from .errors import InvalidArgument, InvalidDFormat, InvalidName

NAME_RE = re.compile(r"^[a-zA-Z0-9\-:_]+(/[a-zA-Z0-9\-:_]+)*$")
INSTANCE_NAME_RE = re.compile(r"^[a-zA-Z0-9\-:_]+$")

DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")

RESAMPLINGS = (
    "near", "bilinear", "cubic", "cubicspline", "lanczos", "average",
    "mode", "max", "min", "med", "q1", "q3",
)


def check_name(name: Any, what: str = "name", *, allow_slash: bool = True) -> str:
    """Return ``name`` if it follows the URN-like naming rule, else raise :class:`InvalidName`."""
    regex = NAME_RE if allow_slash else INSTANCE_NAME_RE
    if not isinstance(name, str) or not regex.fullmatch(name):
        rule = "letters, digits, '-', ':', '_'" + (" and '/' between parts" if allow_slash else "")
        raise InvalidName(f"invalid {what} {name!r}: use only {rule}, with no spaces and nothing empty")
    return name


def check_resampling(name: Any) -> str:
    """Return a canonical resampling name (``nearest`` is accepted for ``near``)."""
    if name == "nearest":
        return "near"
    if name not in RESAMPLINGS:
        raise InvalidArgument(f"unknown resampling {name!r}: choose one of {', '.join(RESAMPLINGS)}")
    return str(name)


def utc_datetime(value: Any, what: str = "datetime") -> datetime:
    """Parse ``value`` (datetime, ISO string, numpy datetime64) into an aware UTC datetime."""
    if isinstance(value, np.datetime64):
        value = str(np.datetime_as_string(value, unit="us"))
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidArgument(
                f"invalid {what} {value!r}: use ISO 8601, e.g. '2024-01-05T10:30:00Z'"
            ) from None
    if not isinstance(value, datetime):
        raise InvalidArgument(f"invalid {what} {value!r}: give a datetime or an ISO 8601 string")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _number(value: Any, what: str) -> float:
    if isinstance(value, str) and value.strip().lower() == "nan":
        return math.nan
    if isinstance(value, bool):
        raise InvalidDFormat(f"{what} must be a number, not {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidDFormat(f"{what} must be a number (or 'nan'), not {value!r}") from None


def dtype_range(dtype: str) -> tuple[float, float]:
    """Smallest and largest finite value representable in ``dtype``."""
    np_dtype = np.dtype(dtype)
    info = np.iinfo(np_dtype) if np_dtype.kind in "iu" else np.finfo(np_dtype)
    return float(info.min), float(info.max)


@dataclass(frozen=True)
class DFormat:
    """How values are stored: numpy dtype name, nodata value, and the [min, max] range they mean.

    ``nodata`` is NaN for float formats without a finite nodata; ``None`` means "no nodata"
    (allowed for the internal format of a dataset, never for a variable).
    """

    dtype: str
    nodata: float | None
    min: float
    max: float

    def __post_init__(self) -> None:
        for name in ("nodata", "min", "max"):
            value = getattr(self, name)
            if isinstance(value, bool | np.bool_) or not (value is None or isinstance(value, int | float | np.number)):
                kind = "number (NaN allowed for floats)" if name == "nodata" else "finite number"
                raise InvalidDFormat(f"dformat {name} must be a {kind}, not {value!r}")
            if isinstance(value, int | np.integer | np.floating):
                object.__setattr__(self, name, float(value))
        if self.dtype not in DTYPES:
            raise InvalidDFormat(f"unknown dtype {self.dtype!r}: choose one of {', '.join(DTYPES)}")
        lo, hi = dtype_range(self.dtype)
        is_float = self.is_float
        for what, value in (("min", self.min), ("max", self.max)):
            if not isinstance(value, float) or math.isnan(value) or math.isinf(value):
                raise InvalidDFormat(f"dformat {what} must be a finite number, not {value!r}")
            if not lo <= value <= hi:
                raise InvalidDFormat(f"dformat {what}={value} is outside the range of {self.dtype} [{lo}, {hi}]")
        if self.min >= self.max:
            raise InvalidDFormat(f"dformat min ({self.min}) must be smaller than max ({self.max})")
        if self.nodata is not None:
            if math.isnan(self.nodata):
                if not is_float:
                    raise InvalidDFormat(f"nodata NaN is impossible in {self.dtype}: give an integer nodata")
            elif not lo <= self.nodata <= hi:
                raise InvalidDFormat(f"nodata {self.nodata} is outside the range of {self.dtype} [{lo}, {hi}]")
            elif not is_float and self.nodata != int(self.nodata):
                raise InvalidDFormat(f"nodata {self.nodata} is not an integer, as {self.dtype} requires")

    @classmethod
    def parse(cls, value: DFormat | Sequence[Any] | Mapping[str, Any], *, nodata_required: bool = True) -> DFormat:
        """Build from a ``DFormat``, a ``(dtype, nodata, min, max)`` tuple or a mapping of those keys."""
        if isinstance(value, DFormat):
            fmt = value
        else:
            if isinstance(value, Mapping):
                try:
                    items = [value["dtype"], value.get("nodata"), value["min"], value["max"]]
                except KeyError as exc:
                    raise InvalidDFormat(f"dformat mapping lacks {exc.args[0]!r}") from None
            elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 4:
                items = list(value)
            else:
                raise InvalidDFormat(f"dformat must be (dtype, nodata, min, max), not {value!r}")
            dtype = str(np.dtype(items[0]).name) if _is_dtype(items[0]) else str(items[0])
            nodata = None if items[1] is None else _number(items[1], "nodata")
            fmt = cls(dtype, nodata, _number(items[2], "min"), _number(items[3], "max"))
        if nodata_required and fmt.nodata is None:
            raise InvalidDFormat("a variable needs a nodata value (NaN is allowed for float dtypes)")
        return fmt

    @property
    def is_float(self) -> bool:
        return np.dtype(self.dtype).kind == "f"

    @property
    def nodata_is_nan(self) -> bool:
        return self.nodata is not None and math.isnan(self.nodata)

    def to_json(self) -> dict[str, Any]:
        nodata: Any = self.nodata
        if nodata is not None and math.isnan(nodata):
            nodata = "nan"
        return {"dtype": self.dtype, "nodata": nodata, "min": self.min, "max": self.max}

    # pydantic (the HTTP API): read with :meth:`parse` (no nodata required: a dataset's may have none),
    # written as :meth:`to_json`, so that a NaN nodata travels as "nan" in valid JSON
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            lambda value: cls.parse(value, nodata_required=False),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value: value.to_json() if isinstance(value, DFormat) else value, when_used="json"),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        number = {"type": "number"}
        return {
            "title": "DFormat", "type": "object", "required": ["dtype", "nodata", "min", "max"],
            "description": "dtype, nodata (a number, 'nan' or null), and the [min, max] range the values mean",
            "properties": {
                "dtype": {"type": "string", "enum": list(DTYPES)},
                "nodata": {"anyOf": [number, {"type": "string", "enum": ["nan"]}, {"type": "null"}]},
                "min": number, "max": number,
            },
        }


def _is_dtype(value: Any) -> bool:
    if value is None:  # np.dtype(None) is float64: a missing dtype is an error, not a default
        return False
    try:
        np.dtype(value)
    except TypeError:
        return False
    return not isinstance(value, str) or value in DTYPES or value in np.sctypeDict


def new_id() -> str:
    return str(uuid.uuid4())


class DatasetStatus(StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    TODELETE = "TODELETE"


@dataclass(frozen=True)
class PalettePoint:
    value: float
    r: int
    g: int
    b: int
    a: int = 255


@dataclass(frozen=True)
class Palette:
    """A colour ramp over [0, 1]: at least two points, first at 0, last at 1, strictly increasing."""

    name: str
    points: tuple[PalettePoint, ...]

    def __post_init__(self) -> None:
        check_name(self.name, "palette name")
        pts = self.points
        if len(pts) < 2:
            raise InvalidArgument(f"palette {self.name!r} needs at least 2 points, got {len(pts)}")
        if pts[0].value != 0 or pts[-1].value != 1:
            raise InvalidArgument(f"palette {self.name!r} must start at value 0 and end at value 1")
        for a, b in zip(pts, pts[1:], strict=False):
            if not a.value < b.value:
                raise InvalidArgument(f"palette {self.name!r}: point values must be strictly increasing")
        for p in pts:
            for c in (p.r, p.g, p.b, p.a):
                if not (isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255):
                    raise InvalidArgument(f"palette {self.name!r}: colour components must be integers 0..255")

    def colours(self, values: np.ndarray) -> np.ndarray:
        """RGBA uint8 colours for ``values`` in [0, 1] (clipped), interpolated linearly."""
        xs = np.array([p.value for p in self.points])
        v = np.clip(np.asarray(values, dtype="float64"), 0, 1)
        out = np.empty(v.shape + (4,), dtype="uint8")
        for i, comp in enumerate("rgba"):
            ys = np.array([getattr(p, comp) for p in self.points], dtype="float64")
            out[..., i] = np.rint(np.interp(v, xs, ys)).astype("uint8")
        return out


@dataclass(frozen=True)
class Variable:
    id: str
    name: str
    dformat: DFormat
    bands: tuple[str, ...]
    unit: str = ""
    description: str = ""
    palette: str | None = None
    resampling: str = "near"


@dataclass(frozen=True)
class Instance:
    id: str
    variable_id: str
    name: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    id: str
    name: str
    datetime: datetime
    tags: Mapping[str, str] = field(default_factory=dict)
    aoi_id: int | None = None


@dataclass(frozen=True)
class Aoi:
    """An area of interest: a MultiPolygon in EPSG:4326, stored once and shared by the records that use it."""

    id: int
    geometry: Any


@dataclass(frozen=True)
class Container:
    uri: str
    managed: bool = False


@dataclass(frozen=True)
class Dataset:
    """One indexed raster (a file, a subdir of a file, a subset of its bands) for a record and an instance."""

    id: int
    record_id: str
    instance_id: str
    uri: str
    subdir: str
    bands: tuple[int, ...]
    dformat: DFormat
    real_min: float
    real_max: float
    exponent: float
    status: DatasetStatus
    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int
    overviews: tuple[tuple[int, int], ...] = ()
    footprint_wkt: str = ""
    footprint_4326_wkt: str = ""

    @property
    def has_overviews(self) -> bool:
        return bool(self.overviews)

    @property
    def footprint(self) -> Any:
        """The file bounds as a shapely polygon in the file's CRS (``crs``)."""
        return shapely.from_wkt(self.footprint_wkt)

    @property
    def footprint_4326(self) -> Any:
        """The footprint as a shapely geometry in lon/lat (EPSG:4326)."""
        return shapely.from_wkt(self.footprint_4326_wkt)


@dataclass(frozen=True)
class Layout:
    """How consolidated files are cut: grid + parameters, block size, records per file, overviews, and the
    codec of the files of variables consolidated losslessly (``compression``)."""

    name: str
    grid: str = "regular"  # "regular" | "single" | name of a stored Grid
    crs: str | None = None
    resolution: float | None = None
    cell_size: int = 4096
    origin: tuple[float, float] = (0.0, 0.0)
    block_size: int = 256
    max_records: int = 1000
    overview_min_size: int = -1
    pattern: str = "Z=0>T>R>B;Z=1:>R>T>B"
    compression: str = "zstd"


@dataclass(frozen=True)
class Cell:
    id: str
    crs: str
    wkt: str  # polygon in ``crs``


@dataclass(frozen=True)
class Grid:
    name: str
    description: str = ""
    cells: tuple[Cell, ...] = ()


# --- jobs ----------------------------------------------------------------------------------------------


class JobState(StrEnum):
    """The states of GEOCUBE.md "Job states" (consolidation and deletion jobs share the names), and the two
    of export jobs (EXPORTINPROGRESS, EXPORTFAILED), which GEOCUBE.md does not have."""

    NEW = "NEW"
    CREATED = "CREATED"
    INITIALISATIONFAILED = "INITIALISATIONFAILED"
    CONSOLIDATIONINPROGRESS = "CONSOLIDATIONINPROGRESS"
    CONSOLIDATIONFAILED = "CONSOLIDATIONFAILED"
    CONSOLIDATIONDONE = "CONSOLIDATIONDONE"
    CONSOLIDATIONINDEXED = "CONSOLIDATIONINDEXED"
    CONSOLIDATIONEFFECTIVE = "CONSOLIDATIONEFFECTIVE"
    CONSOLIDATIONCANCELLING = "CONSOLIDATIONCANCELLING"
    ABORTED = "ABORTED"
    ROLLBACKFAILED = "ROLLBACKFAILED"
    DELETIONINPROGRESS = "DELETIONINPROGRESS"
    DELETIONEFFECTIVE = "DELETIONEFFECTIVE"
    EXPORTINPROGRESS = "EXPORTINPROGRESS"
    EXPORTFAILED = "EXPORTFAILED"
    DONEBUTUNTIDY = "DONEBUTUNTIDY"
    DONE = "DONE"
    FAILED = "FAILED"


class JobType(StrEnum):
    CONSOLIDATION = "consolidation"
    DELETION = "deletion"
    EXPORT = "export"  # a cube written to a file (see geocube_dask.exporting)


class ExecutionLevel(StrEnum):
    """How often a job stops and waits for ``job.next()`` (see :mod:`geocube_dask.jobs`)."""

    ASYNC = "async"
    CRITICAL = "step-by-step-critical"
    MAJOR = "step-by-step-major"
    ALL = "step-by-step-all"


class TaskState(StrEnum):
    NEW = "NEW"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class JobInfo:
    """A job row: what the catalogue stores of a job (the running logic is :class:`geocube_dask.jobs.Job`).

    ``version`` grows by one with every change: a change is written only if the row still has the
    version it was read with (optimistic concurrency). ``owner`` is ``host:pid`` of the process that
    last ran a step, so that a job left "in progress" by a dead process can be recognised.
    """

    id: str
    name: str
    type: JobType
    state: JobState
    execution_level: ExecutionLevel
    waiting: bool
    payload: Mapping[str, Any]
    created: datetime
    updated: datetime
    version: int = 0
    owner: str | None = None


@dataclass(frozen=True)
class Task:
    """One unit of a job's work that can fail and be re-run alone (a consolidation task writes one file).

    ``plan`` is what to do (JSON), ``result`` what the job indexes once it is done, ``error`` why it
    failed (naming the file it could not read or write).
    """

    job_id: str
    key: str
    kind: str
    state: TaskState
    plan: Mapping[str, Any]
    result: Any = None
    error: str | None = None


@dataclass(frozen=True)
class LogEntry:
    time: datetime
    level: str
    message: str


@dataclass(frozen=True)
class ConsolidationParams:
    """How a variable's consolidated files store it: data format, exponent, compression, resampling.

    ``compression`` is ``lossless`` (default), ``lossy`` (``max_error`` in stored units), ``none`` or
    ``custom`` (``creation_options`` for GDAL's COG driver, checked against an allow-list).
    ``resampling`` is the overview resampling (None: derived from the variable's).
    """

    variable_id: str
    dformat: DFormat
    exponent: float = 1.0
    compression: str = "lossless"
    max_error: float | None = None
    creation_options: Mapping[str, str] = field(default_factory=dict)
    resampling: str | None = None


# --- API tokens ----------------------------------------------------------------------------------------

SCOPES = ("read", "write", "admin")  # each scope allows what the ones before it allow


def scope_allows(held: str, needed: str) -> bool:
    """Whether a token of scope ``held`` may do what needs ``needed`` (admin ⊃ write ⊃ read)."""
    return SCOPES.index(held) >= SCOPES.index(needed)


@dataclass(frozen=True)
class ApiToken:
    """A bearer token of the HTTP API, as listed: never its secret (only its hash is stored)."""

    id: str
    name: str
    scope: str
    created: datetime
    revoked: datetime | None = None
