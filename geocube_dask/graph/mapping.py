"""Value mapping from a dataset's stored values to the variable's values, and the final cast.

    ve = MinOut + (MaxOut - MinOut) * ((vi - Min) / (Max - Min)) ** exponent

``Min``/``Max`` come from the dataset's internal dformat, ``MinOut``/``MaxOut`` are its real range.
No clipping to the variable range: values only saturate at the bounds of the output dtype. Integer
outputs are rounded half away from zero. Stored nodata becomes the variable's nodata (callers keep a
validity mask; nodata values are never mapped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..entities import DFormat, dtype_range


@dataclass(frozen=True)
class Mapping:
    """The affine-then-power mapping of one source onto the variable's values."""

    min_in: float
    max_in: float
    min_out: float
    max_out: float
    exponent: float = 1.0

    @property
    def is_identity(self) -> bool:
        """True when ``ve == vi`` for every value (no arithmetic needed)."""
        return (
            self.exponent == 1.0 and self.min_in == self.min_out and self.max_in == self.max_out
        )

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Map ``values`` (any numeric dtype) to float64 variable values."""
        v = np.asarray(values, dtype="float64")
        if self.is_identity:
            return v
        t = (v - self.min_in) / (self.max_in - self.min_in)
        if self.exponent != 1.0:
            # a negative base with a fractional exponent has no real value: such stored values lie below
            # the internal min; follow the sign so the mapping stays monotonic instead of producing NaN
            t = np.sign(t) * np.abs(t) ** self.exponent
        return self.min_out + (self.max_out - self.min_out) * t


def mapping_for(dformat: DFormat, real_min: float, real_max: float, exponent: float) -> Mapping:
    return Mapping(dformat.min, dformat.max, real_min, real_max, exponent)


def cast(values: np.ndarray, dtype: str) -> np.ndarray:
    """Cast float values to ``dtype``: integers round half away from zero then saturate; floats cast.

    Saturating first and rounding after gives the same integers (the bounds are integers) in fewer
    passes over the data. Halves are rounded as ``floor(v + 0.5)`` (``-floor(-v + 0.5)`` below zero).
    NaN (never a valid value here) gives an unspecified integer.
    """
    np_dtype = np.dtype(dtype)
    v = np.asarray(values)
    if np_dtype.kind == "f":
        return v.astype(np_dtype, copy=False)
    lo, hi = dtype_range(dtype)
    if v.dtype.kind in "iu":
        if np.can_cast(v.dtype, np_dtype, casting="safe"):
            return v.astype(np_dtype, copy=False)
        return np.clip(v, lo, hi).astype(np_dtype)
    with np.errstate(invalid="ignore"):
        work = np.clip(v, lo, hi)
        if lo >= 0:
            work += 0.5
            np.floor(work, out=work)
        else:
            half = np.copysign(0.5, work)
            work += half
            np.trunc(work, out=work)
        return work.astype(np_dtype)


def valid_mask(values: np.ndarray, nodata: float | None) -> np.ndarray | None:
    """Where ``values`` hold data: not equal to ``nodata`` and not NaN. ``None`` means all valid."""
    is_float = values.dtype.kind == "f"
    if nodata is None or (isinstance(nodata, float) and math.isnan(nodata)):
        if is_float:
            return ~np.isnan(values)
        return None
    if is_float:
        return (values != nodata) & ~np.isnan(values)
    return values != nodata
