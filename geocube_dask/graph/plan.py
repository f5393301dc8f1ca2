"""CubePlan: everything needed to compute a cube, as plain serialisable metadata.

A plan is the output grid, the variable's format and bands, the resampling, and per image (one
record, or a group of records) the ordered list of sources to paint. It needs no database: anyone
with read access to the files can turn it into pixels (``geocube_dask.cube_from_plan``). This is
the Geocube "downloader" protocol. ``to_json``/``from_json`` round-trip exactly.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shapely.geometry import Polygon

from ..entities import DFormat, check_resampling, utc_datetime
from ..errors import InvalidArgument
from ..gdal_settings import is_secret_key
from ..projection import is_geographic, normalize_lonlat, transform_polygon
from .grid import GridSpec

PLAN_VERSION = 1


@dataclass(frozen=True)
class Source:
    """One dataset to read: file, bands, stored format and how it maps to the variable."""

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
    overviews: tuple[tuple[int, int], ...] = ()
    dataset_id: int | None = None
    record_id: str = ""

    def __post_init__(self) -> None:
        # one spelling per value (600100 and 600100.0 are one source), so equal plans have equal tokens
        set_ = object.__setattr__
        set_(self, "bands", tuple(map(int, self.bands)))
        set_(self, "transform", tuple(map(float, self.transform)))
        set_(self, "overviews", tuple(tuple(map(int, o)) for o in self.overviews))
        set_(self, "real_min", float(self.real_min))
        set_(self, "real_max", float(self.real_max))
        set_(self, "exponent", float(self.exponent))
        set_(self, "width", int(self.width))
        set_(self, "height", int(self.height))

    @property
    def footprint(self) -> Polygon:
        """The file's bounds in its own CRS: its four corners (a rotated file is not its bounding box)."""
        a, b, c, d, e, f = self.transform
        corners = [(0, 0), (self.width, 0), (self.width, self.height), (0, self.height)]
        return Polygon([(a * col + b * row + c, d * col + e * row + f) for col, row in corners])

    @property
    def grid_key(self) -> tuple[Any, ...]:
        """Sources with equal keys share one pixel grid (the same tile on several dates)."""
        return (self.crs, self.transform, self.width, self.height, self.overviews)

    def to_json(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "subdir": self.subdir,
            "bands": list(self.bands),
            "dformat": self.dformat.to_json(),
            "real_min": self.real_min,
            "real_max": self.real_max,
            "exponent": self.exponent,
            "crs": self.crs,
            "transform": list(self.transform),
            "width": self.width,
            "height": self.height,
            "overviews": [list(o) for o in self.overviews],
            "dataset_id": self.dataset_id,
            "record_id": self.record_id,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Source:
        return cls(
            uri=d["uri"],
            subdir=d.get("subdir", ""),
            bands=tuple(int(b) for b in d["bands"]),
            dformat=DFormat.parse(d["dformat"], nodata_required=False),
            real_min=float(d["real_min"]),
            real_max=float(d["real_max"]),
            exponent=float(d.get("exponent", 1.0)),
            crs=d["crs"],
            transform=tuple(float(v) for v in d["transform"]),
            width=int(d["width"]),
            height=int(d["height"]),
            overviews=tuple((int(o[0]), int(o[1])) for o in d.get("overviews", ())),
            dataset_id=d.get("dataset_id"),
            record_id=d.get("record_id", ""),
        )


@dataclass(frozen=True)
class Image:
    """One image of the cube: its time, the record(s) it is made of, and its sources in paint order."""

    time: datetime
    record_ids: tuple[str, ...]
    record_names: tuple[str, ...]
    sources: tuple[Source, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(),
            "record_ids": list(self.record_ids),
            "record_names": list(self.record_names),
            "sources": [s.to_json() for s in self.sources],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Image:
        return cls(
            time=utc_datetime(d["time"]),
            record_ids=tuple(d["record_ids"]),
            record_names=tuple(d["record_names"]),
            sources=tuple(Source.from_json(s) for s in d["sources"]),
        )


@dataclass(frozen=True)
class CubePlan:
    """A cube request resolved to files: grid, format, resampling, images and their sources."""

    grid: GridSpec
    variable: str
    instances: tuple[str, ...]
    bands: tuple[str, ...]
    dformat: DFormat
    resampling: str
    images: tuple[Image, ...]
    chunks: tuple[int, int] = (1024, 1024)
    gdal_env: Mapping[str, str] = field(default_factory=dict)
    on_error: str = "raise"

    def __post_init__(self) -> None:
        check_resampling(self.resampling)
        if self.on_error not in ("raise", "nodata"):
            raise InvalidArgument(f"on_error must be 'raise' or 'nodata', not {self.on_error!r}")
        if len(self.chunks) != 2 or min(self.chunks) < 1:
            raise InvalidArgument(f"chunks must be positive (rows, cols), not {self.chunks!r}")

    @property
    def token(self) -> str:
        """Deterministic identity of the plan: same request → same dask keys.

        A hash of the plan's field values as written by the dataclasses' ``repr`` (plain strings,
        numbers, tuples and datetimes: the same in every process), a few times cheaper than the JSON
        for a plan of many thousands of images.
        """
        env = tuple(sorted((str(k), str(v)) for k, v in self.gdal_env.items()))
        fields = (PLAN_VERSION, self.grid, self.variable, self.instances, self.bands, self.dformat,
                  self.resampling, self.chunks, env, self.on_error, self.images)
        return hashlib.sha1(repr(fields).encode(), usedforsecurity=False).hexdigest()

    def with_chunks(self, chunks: int | Sequence[int]) -> CubePlan:
        return replace(self, chunks=normalize_chunks(chunks))

    def to_json(self, *, include_secrets: bool = False, indent: int | None = None) -> str:
        """Serialise the plan. GDAL settings that look like credentials are left out unless asked."""
        env = dict(self.gdal_env)
        if not include_secrets:
            env = {k: v for k, v in env.items() if not is_secret_key(k)}
        doc = {
            "version": PLAN_VERSION,
            "grid": self.grid.to_json(),
            "variable": self.variable,
            "instances": list(self.instances),
            "bands": list(self.bands),
            "dformat": self.dformat.to_json(),
            "resampling": self.resampling,
            "chunks": list(self.chunks),
            "gdal_env": env,
            "on_error": self.on_error,
            "images": [im.to_json() for im in self.images],
        }
        return json.dumps(doc, indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes | Mapping[str, Any]) -> CubePlan:
        """Rebuild a plan written by :meth:`to_json`."""
        try:
            d = text if isinstance(text, Mapping) else json.loads(text)
            version = d.get("version")
            if version != PLAN_VERSION:
                raise InvalidArgument(
                    f"plan version {version!r} is not supported by this geocube_dask (expects {PLAN_VERSION})"
                )
            return cls(
                grid=GridSpec.from_json(d["grid"]),
                variable=d["variable"],
                instances=tuple(d["instances"]),
                bands=tuple(d["bands"]),
                dformat=DFormat.parse(d["dformat"]),
                resampling=d["resampling"],
                images=tuple(Image.from_json(i) for i in d["images"]),
                chunks=tuple(int(c) for c in d["chunks"]),
                gdal_env=dict(d.get("gdal_env", {})),
                on_error=d.get("on_error", "raise"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidArgument):
                raise
            raise InvalidArgument(f"not a valid cube plan ({exc!r}): pass the text of CubePlan.to_json()") from None


def normalize_chunks(chunks: int | Sequence[int] | Mapping[str, int] | None) -> tuple[int, int]:
    """Spatial chunk size (rows, cols) from an int, a pair or a ``{"y": .., "x": ..}`` mapping."""
    if chunks is None:
        return (1024, 1024)
    if isinstance(chunks, Mapping):
        try:
            chunks = (int(chunks["y"]), int(chunks["x"]))
        except KeyError:
            raise InvalidArgument(f"chunks mapping needs 'y' and 'x', got {dict(chunks)!r}") from None
    if isinstance(chunks, int | float):
        chunks = (int(chunks), int(chunks))
    try:
        cy, cx = (int(c) for c in chunks)
    except (TypeError, ValueError):
        raise InvalidArgument(f"chunks must be an int or (rows, cols), not {chunks!r}") from None
    if cy < 1 or cx < 1:
        raise InvalidArgument(f"chunks must be positive, not {chunks!r}")
    return cy, cx


@dataclass(frozen=True)
class PlanRecord:
    """What the planner needs to know of a record (decoupled from the catalogue's types)."""

    id: str
    name: str
    datetime: datetime


def source_touches_grid(source: Source, grid: GridSpec) -> bool:
    """Whether the source's footprint and the grid overlap (with an area), tested in the grid's CRS.

    The footprint is reprojected by ``projection.transform_polygon`` (edges followed, split at the
    antimeridian, closed through a pole it surrounds); in a lon/lat grid both sides are wrapped into
    [-180, 180], so a grid running past ±180° meets the data beyond. A source that cannot be expressed
    in the grid's CRS (part of it outside that projection's domain) is tested the other way round: the
    grid's outline in the source's CRS.
    """
    try:
        fp = transform_polygon(source.footprint, source.crs, grid.crs)
    except ValueError:
        try:
            back = transform_polygon(grid.polygon(), grid.crs, source.crs)
        except ValueError:  # neither can be expressed in the other's CRS
            return False
        return _overlap(back, _wrapped(source.footprint, source.crs))
    return _overlap(fp, _wrapped(grid.polygon(), grid.crs))


def _wrapped(poly: Polygon, crs: str) -> Any:
    """``poly`` wrapped into [-180, 180] in a lon/lat ``crs`` (as transform_polygon gives), else itself."""
    return normalize_lonlat(poly) if is_geographic(crs) else poly


def _overlap(a: Any, b: Any) -> bool:
    if a.is_empty or not all(math.isfinite(v) for v in a.bounds):
        return False
    inter = a.intersection(b)
    return not inter.is_empty and inter.area > 0


def build_plan(
    grid: GridSpec,
    *,
    variable: str,
    instances: Sequence[str],
    bands: Sequence[str],
    dformat: DFormat,
    resampling: str,
    rows: Iterable[tuple[PlanRecord, Source]],
    group_by: None | str | Callable[[PlanRecord], Hashable] = None,
    groups: Sequence[Sequence[str]] | None = None,
    chunks: int | Sequence[int] | None = 1024,
    gdal_env: Mapping[str, str] | None = None,
    on_error: str = "raise",
) -> CubePlan:
    """Group (record, source) rows into images and drop what cannot touch the grid.

    ``rows`` come in paint order (record datetime, record id, dataset id). One image per record by
    default; ``group_by="day"`` (UTC day) or a callable (record → key) mosaics records into one image;
    ``groups`` (lists of record ids) gives explicit images. An image's time is the
    datetime of its earliest record. Sources whose footprint does not touch the grid are dropped;
    images left without sources are dropped. Images are ordered by time, then first record id.
    """
    if groups is not None and group_by is not None:
        raise InvalidArgument("give group_by= or groups=, not both")
    key_fn = _group_key(group_by)
    touch_cache: dict[tuple[Any, ...], bool] = {}
    by_record: dict[str, tuple[PlanRecord, list[Source]]] = {}
    for rec, src in rows:
        entry = by_record.setdefault(rec.id, (rec, []))
        ck = src.grid_key
        touches = touch_cache.get(ck)
        if touches is None:
            touches = touch_cache[ck] = source_touches_grid(src, grid)
        if touches:
            entry[1].append(src)

    members: list[list[str]]
    if groups is not None:
        members = [list(dict.fromkeys(g)) for g in groups]
    else:
        keyed: dict[Hashable, list[str]] = {}
        for rid, (rec, _) in by_record.items():
            keyed.setdefault(key_fn(rec) if key_fn else rid, []).append(rid)
        members = list(keyed.values())

    images: list[Image] = []
    for ids in members:
        recs = [by_record[r][0] for r in ids if r in by_record]
        recs.sort(key=lambda r: (r.datetime, r.id))
        sources = tuple(s for r in recs for s in by_record[r.id][1])
        if not sources:
            continue
        images.append(
            Image(
                time=recs[0].datetime,
                record_ids=tuple(r.id for r in recs),
                record_names=tuple(r.name for r in recs),
                sources=sources,
            )
        )
    images.sort(key=lambda im: (im.time, im.record_ids[0]))
    return CubePlan(
        grid=grid,
        variable=variable,
        instances=tuple(instances),
        bands=tuple(bands),
        dformat=dformat,
        resampling=check_resampling(resampling),
        images=tuple(images),
        chunks=normalize_chunks(chunks),
        gdal_env=dict(gdal_env or {}),
        on_error=on_error,
    )


def _group_key(group_by: None | str | Callable[[PlanRecord], Hashable]) -> Callable[[PlanRecord], Hashable] | None:
    if group_by is None:
        return None
    if group_by == "day":
        return lambda r: r.datetime.date()
    if callable(group_by):
        return group_by
    raise InvalidArgument(f"group_by must be None, 'day' or a callable(record) -> key, not {group_by!r}")

