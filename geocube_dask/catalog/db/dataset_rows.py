"""Dataset rows ↔ Dataset entities, shared by every query that returns datasets.

JSON list columns (bands, transform, overviews) and the nodata text are read as text and parsed through
small caches: in a catalogue they take few distinct values (the same tiling, the same overviews, a few
data formats), and find_datasets may return a thousand rows per cube request. Rows are read by position,
the status through a dict: building a Dataset costs little more than its constructor.

The footprints are the widest columns by far (the lon/lat footprint is densified: about 1.3 kB of WKB
per row) and a cube plan needs neither: :func:`dataset_columns` selects them only when asked; the
Datasets then have empty ``footprint_wkt`` and ``footprint_4326_wkt``.
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

# The columns of a Dataset, in the order of its constructor (footprints apart); read as text where the
# value is parsed through a cache here.
_FIELDS = (
    "id", "record_id", "instance_id", "container_uri", "subdir", "bands", "dtype", "nodata", "min", "max",
    "real_min", "real_max", "exponent", "status", "crs", "transform", "width", "height", "overviews",
)
_AS_TEXT = ("bands", "transform", "overviews", "nodata")
_BASE_COLUMNS = tuple(
    sa.type_coerce(datasets.c[name], sa.Text).label(name) if name in _AS_TEXT else datasets.c[name]
    for name in _FIELDS
)
_FOOTPRINT_COLUMNS = (
    datasets.c.footprint_wkt,
    sa.type_coerce(datasets.c.footprint_4326, Geometry4326WKB()).label("footprint_4326"),  # WKB, parsed in bulk
)
DATASET_COLUMNS = _BASE_COLUMNS + _FOOTPRINT_COLUMNS
_STATUS = {s.value: s for s in DatasetStatus}


def dataset_columns(footprints: bool = True) -> tuple[sa.ColumnElement[Any], ...]:
    """The columns :func:`datasets_from_rows` reads, with or without the two footprints."""
    return DATASET_COLUMNS if footprints else _BASE_COLUMNS


@lru_cache(maxsize=256)
def cached_dformat(dtype: str, nodata_text: str | None, lo: float, hi: float) -> DFormat:
    """The DFormat of a row, its nodata as the stored text (``'nan'``, ``'-10000.0'``, None): data formats
    are immutable and few, so each is built once."""
    return DFormat(dtype, None if nodata_text is None else float(nodata_text), lo, hi)


@lru_cache(maxsize=4096)
def _json_tuple(text: str) -> tuple[Any, ...]:
    """A JSON list as nested tuples (immutable, so the cached value can be shared)."""

    def freeze(value: Any) -> Any:
        return tuple(freeze(v) for v in value) if isinstance(value, list) else value

    return freeze(json.loads(text))


def _wkts(wkbs: Sequence[bytes]) -> list[str]:
    """WKT of WKB footprints, each distinct one converted once (the files of an acquisition, and the
    revisits of a tile, share their footprint), in two vectorised calls."""
    distinct = dict.fromkeys(wkbs)
    texts = shapely.to_wkt(geometries_from_wkb(list(distinct)), rounding_precision=-1)
    for wkb, text in zip(distinct, texts.tolist(), strict=True):
        distinct[wkb] = text
    return [distinct[w] for w in wkbs]


def datasets_from_rows(rows: Sequence[Sequence[Any]], start: int = 0, footprints: bool = True) -> list[Dataset]:
    """Datasets from rows holding :func:`dataset_columns` (``footprints`` as selected) from position
    ``start`` on; footprints are converted to WKT in one vectorised call."""
    if not rows:
        return []
    stop = start + len(_FIELDS)
    if footprints:
        fps = list(zip([r[stop] for r in rows], _wkts([r[stop + 1] for r in rows]), strict=True))
    else:
        fps = [("", "")] * len(rows)
    out = []
    status, dformat, json_tuple = _STATUS.__getitem__, cached_dformat, _json_tuple
    for row, (fp, fp_4326) in zip(rows, fps, strict=True):
        (ds_id, record_id, instance_id, uri, subdir, bands, dtype, nodata, lo, hi, real_min, real_max, exponent,
         st, crs, transform, width, height, overviews) = row[start:stop]
        out.append(Dataset(
            ds_id, record_id, instance_id, uri, subdir, json_tuple(bands), dformat(dtype, nodata, lo, hi),
            real_min, real_max, exponent, status(st), crs, json_tuple(transform), width, height,
            json_tuple(overviews), fp, fp_4326,
        ))
    return out


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
