"""Validation of PreparedDataset rows before add_datasets stores them as given.

``requests.prepare_dataset`` already checks requests against files and variables; this is the catalogue's
own guard for rows built elsewhere (benchmarks, consolidation). A cheap check of plain types covers the
normal case so that a million rows cost little; anything unusual goes through the detailed check, which
names the row and the field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...entities import DFormat
from ...errors import InvalidArgument
from .requests import PreparedDataset


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument(f"{what} must be a finite number, not {value!r}")
    return float(value)


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidArgument(f"{what} must be a positive integer, not {value!r}")
    return int(value)


def check_prepared(p: Any, where: str) -> None:
    """Validate the fields of a PreparedDataset that add_datasets stores as given."""
    if not isinstance(p, PreparedDataset):
        raise InvalidArgument(f"{where}: expected a PreparedDataset, not {type(p).__name__}")
    if not isinstance(p.uri, str) or not p.uri:
        raise InvalidArgument(f"{where}: the uri must be a non-empty string, not {p.uri!r}")
    if not isinstance(p.subdir, str):
        raise InvalidArgument(f"{where}: subdir must be a string ('' for none), not {p.subdir!r}")
    if not isinstance(p.bands, Sequence) or not p.bands:
        raise InvalidArgument(f"{where}: bands must be a non-empty list of 1-based band indexes, not {p.bands!r}")
    for b in p.bands:
        _positive_int(b, f"{where}: band index")
    if len(set(p.bands)) != len(p.bands):
        raise InvalidArgument(f"{where}: band indexes must be distinct, not {tuple(p.bands)}")
    if not isinstance(p.dformat, DFormat):
        raise InvalidArgument(f"{where}: dformat must be a DFormat, not {p.dformat!r}")
    lo, hi = _finite(p.real_min, f"{where}: real_min"), _finite(p.real_max, f"{where}: real_max")
    if lo == hi:  # real_min > real_max is a decreasing mapping, equal ones map nothing
        raise InvalidArgument(f"{where}: real_min and real_max are both {lo}: they must differ")
    exponent = _finite(p.exponent, f"{where}: exponent")
    if exponent <= 0:
        raise InvalidArgument(f"{where}: exponent must be > 0, not {exponent}")
    if not isinstance(p.crs, str) or not p.crs:
        raise InvalidArgument(f"{where}: crs must be a non-empty string, not {p.crs!r}")
    if not isinstance(p.transform, Sequence) or len(p.transform) != 6:
        raise InvalidArgument(f"{where}: transform must be 6 numbers (a, b, c, d, e, f), not {p.transform!r}")
    for v in p.transform:
        _finite(v, f"{where}: transform coefficient")
    _positive_int(p.width, f"{where}: width")
    _positive_int(p.height, f"{where}: height")
    for ov in p.overviews:
        if not isinstance(ov, Sequence) or len(ov) != 2:
            raise InvalidArgument(f"{where}: overviews must be (width, height) pairs, not {ov!r}")
        _positive_int(ov[0], f"{where}: overview width")
        _positive_int(ov[1], f"{where}: overview height")
    if not isinstance(p.footprint_wkt, str):
        raise InvalidArgument(f"{where}: footprint_wkt must be WKT text")


_NUMBER = frozenset((int, float))


def _plainly_valid(p: Any) -> bool:
    """True when every field has the plain type and a valid value (no detailed check needed)."""
    try:
        return (
            type(p) is PreparedDataset
            and type(p.uri) is str
            and p.uri != ""
            and type(p.subdir) is str
            and type(p.dformat) is DFormat
            and type(p.crs) is str
            and p.crs != ""
            and type(p.footprint_wkt) is str
            and type(p.width) is int
            and p.width > 0
            and type(p.height) is int
            and p.height > 0
            and type(p.real_min) is float
            and type(p.real_max) is float
            and type(p.exponent) is float
            and math.isfinite(p.real_min)
            and math.isfinite(p.real_max)
            and p.real_min != p.real_max
            and 0 < p.exponent < math.inf
            and len(p.transform) == 6
            and all(type(t) in _NUMBER for t in p.transform)
            and math.isfinite(sum(p.transform))
            and len(p.bands) > 0
            and all(type(b) is int and b > 0 for b in p.bands)
            and len(set(p.bands)) == len(p.bands)
            and all(len(o) == 2 and type(o[0]) is int and type(o[1]) is int and o[0] > 0 and o[1] > 0
                    for o in p.overviews)
        )
    except TypeError:
        return False


def check_all_prepared(rows: Sequence[Any]) -> None:
    """Raise InvalidArgument for the first row that is not a valid PreparedDataset."""
    for n, p in enumerate(rows):
        if not _plainly_valid(p):
            check_prepared(p, f"dataset #{n}")
