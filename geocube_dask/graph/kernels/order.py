"""Order statistics over area footprints: mode, min, max, median and quartiles."""

from __future__ import annotations

import numpy as np

from .taps import _Taps
from .weights import _BLOCK, _QUANTILES


def _order_stat(method: str, flat: np.ndarray, masked: bool, t: _Taps, wp: int,
                exact_mode: bool) -> tuple[np.ndarray, np.ndarray]:
    """mode, min, max or a quantile of the valid pixels of each footprint, in blocks of points."""
    if not (t.mx is not None and t.my is not None):
        raise RuntimeError("internal error: expected t.mx is not None and t.my is not None")
    kx, ky = t.mx.shape[0], t.my.shape[0]
    k_all = kx * ky
    n = t.base.shape[0]
    value = np.empty(n, dtype=np.float64)
    good = np.empty(n, dtype=bool)
    blk = max(1, min(_BLOCK // max(1, k_all // 4), n))
    for s in range(0, n, blk):
        e = min(n, s + blk)
        b = t.base[s:e]
        v = np.empty((k_all, e - s), dtype=np.float64)
        m = np.empty((k_all, e - s), dtype=bool)
        for j in range(ky):
            for i in range(kx):
                k = j * kx + i
                flat[j * wp + i:].take(b, out=v[k], mode="clip")
                np.logical_and(t.mx[i, s:e], t.my[j, s:e], out=m[k])
        if masked:
            m &= v == v
        good[s:e] = m.any(axis=0)
        if method == "max":
            value[s:e] = np.where(m, v, -np.inf).max(axis=0)
        elif method == "min":
            value[s:e] = np.where(m, v, np.inf).min(axis=0)
        elif method == "mode":
            value[s:e] = _mode(v, m, exact_mode)
        else:
            value[s:e] = _quantile(v, m, _QUANTILES[method])
    return value, good


def _mode(v: np.ndarray, m: np.ndarray, exact: bool) -> np.ndarray:
    """The value that first reaches the highest count, scanning the taps in order (GDAL's mode).

    GDAL compares uint8/uint16/int16 values exactly and every other type as float32, returning the
    float32 value."""
    vals = v if exact else v.astype(np.float32)
    k_all, n = vals.shape
    best_count = np.zeros(n, dtype=np.int32)
    best = np.zeros(n, dtype=vals.dtype)
    for k in range(k_all):
        count = ((vals[: k + 1] == vals[k]) & m[: k + 1]).sum(axis=0, dtype=np.int32)
        count[~m[k]] = 0
        better = count > best_count
        best_count[better] = count[better]
        best[better] = vals[k][better]
    return best.astype(np.float64)


def _quantile(v: np.ndarray, m: np.ndarray, q: float) -> np.ndarray:
    """GDAL's quantile: the sorted valid values at index ceil(q * n - 1)."""
    filled = np.where(m, v, np.inf)
    k_all = filled.shape[0]
    if k_all <= _NETWORK_MAX:
        tmp = np.empty(filled.shape[1])
        for i, j in _sorting_network(k_all):
            np.minimum(filled[i], filled[j], out=tmp)
            np.maximum(filled[i], filled[j], out=filled[j])
            filled[i] = tmp
    else:
        filled.sort(axis=0)
    count = m.sum(axis=0)
    idx = np.clip(np.ceil(q * count - 1.0), 0, k_all - 1).astype(np.intp)
    return np.take_along_axis(filled, idx[None, :], axis=0)[0]


_NETWORK_MAX = 64


def _sorting_network(k: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort comparators for ``k`` items (padded to a power of two with +inf
    items at the end, whose comparators are no-ops and dropped)."""
    size = 1
    while size < k:
        size *= 2
    pairs: list[tuple[int, int]] = []

    def merge(lo: int, hi: int, r: int) -> None:
        step = r * 2
        if step < hi - lo:
            merge(lo, hi, step)
            merge(lo + r, hi, step)
            pairs.extend((i, i + r) for i in range(lo + r, hi - r, step))
        else:
            pairs.append((lo, lo + r))

    def sort(lo: int, hi: int) -> None:
        if hi - lo >= 1:
            mid = lo + (hi - lo) // 2
            sort(lo, mid)
            sort(mid + 1, hi)
            merge(lo, hi, 1)

    sort(0, size - 1)
    return [(i, j) for i, j in pairs if j < k]
