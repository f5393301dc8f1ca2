"""Dataset rows ↔ Dataset entities, shared by every query that returns datasets.

JSON list columns (bands, transform, overviews) are read as text and parsed through a small cache: in a
catalogue they take few distinct values (the same tiling, the same overviews), and find_datasets may
return a thousand rows per cube request. Data formats are cached the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ...entities import Dataset, DatasetStatus, DFormat
from ...errors import InvalidArgument
from .coltypes import Geometry4326WKB, geometries_from_wkb
from .schema import datasets
from .sqlutil import chunks

# JSON columns are read as text and parsed by _json_tuple (cached: a few distinct values repeat a lot);
# the footprint as WKB, parsed for all rows in one call.
_JSON_COLUMNS = ("bands", "transform", "overviews")
DATASET_COLUMNS = tuple(
    sa.type_coerce(c, sa.Text).label(c.name) if c.name in _JSON_COLUMNS
    else sa.type_coerce(c, Geometry4326WKB()).label(c.name) if c.name == "footprint_4326"
    else c
    for c in datasets.c
)


@lru_cache(maxsize=256)
def _dformat(dtype: str, nodata_text: str | None, lo: float, hi: float) -> DFormat:
    return DFormat(dtype, None if nodata_text is None else float(nodata_text), lo, hi)


def cached_dformat(dtype: str, nodata: float | None, lo: float, hi: float) -> DFormat:
    """DFormats are immutable and few: build each once (NaN nodata keyed by its text)."""
    return _dformat(dtype, None if nodata is None else repr(nodata), lo, hi)


@lru_cache(maxsize=4096)
def _json_tuple(text: str) -> tuple[Any, ...]:
    """A JSON list as nested tuples (immutable, so the cached value can be shared)."""

    def freeze(value: Any) -> Any:
        return tuple(freeze(v) for v in value) if isinstance(value, list) else value

    return freeze(json.loads(text))


def dataset_from_row(row: Any, footprint_4326_wkt: str | None = None) -> Dataset:
    """A Dataset from a row selected with DATASET_COLUMNS (``footprint_4326_wkt`` if already computed)."""
    wkt = footprint_4326_wkt
    if wkt is None:
        wkt = _wkts([row.footprint_4326])[0]
    return Dataset(
        id=row.id,
        record_id=row.record_id,
        instance_id=row.instance_id,
        uri=row.container_uri,
        subdir=row.subdir,
        bands=_json_tuple(row.bands),
        dformat=cached_dformat(row.dtype, row.nodata, row.min, row.max),
        real_min=row.real_min,
        real_max=row.real_max,
        exponent=row.exponent,
        status=DatasetStatus(row.status),
        crs=row.crs,
        transform=_json_tuple(row.transform),
        width=row.width,
        height=row.height,
        overviews=_json_tuple(row.overviews),
        footprint_wkt=row.footprint_wkt,
        footprint_4326_wkt=wkt,
    )


def _wkts(wkbs: Sequence[bytes]) -> list[str]:
    """WKT of WKB footprints, each distinct one converted once (the files of an acquisition, and the
    revisits of a tile, share their footprint), in two vectorised calls."""
    distinct = dict.fromkeys(wkbs)
    texts = shapely.to_wkt(geometries_from_wkb(list(distinct)), rounding_precision=-1)
    for wkb, text in zip(distinct, texts.tolist(), strict=True):
        distinct[wkb] = text
    return [distinct[w] for w in wkbs]


def datasets_from_rows(rows: Sequence[Any]) -> list[Dataset]:
    """Datasets from rows, converting footprints to WKT in one vectorised call."""
    if not rows:
        return []
    wkts = _wkts([r.footprint_4326 for r in rows])
    return [dataset_from_row(r, w) for r, w in zip(rows, wkts, strict=True)]


def check_status(status: Any) -> DatasetStatus:
    """A DatasetStatus from its name, or InvalidArgument listing the valid ones."""
    try:
        return DatasetStatus(status)
    except ValueError:
        raise InvalidArgument(
            f"unknown dataset status {status!r}: use one of {', '.join(s.value for s in DatasetStatus)}"
        ) from None


def load_datasets(conn: Connection, ids: Sequence[int]) -> list[Dataset]:
    """The datasets with these ids (unknown ids are skipped), in no particular order."""
    rows = []
    for part in chunks(list(ids)):
        rows += conn.execute(sa.select(*DATASET_COLUMNS).where(datasets.c.id.in_(part))).all()
    return datasets_from_rows(rows)
