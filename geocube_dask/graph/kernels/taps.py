"""Tap layouts and weighted sums over valid taps, with GDAL's validity and normalisation rules."""

from __future__ import annotations

import numpy as np

from .weights import _BILINEAR4_MIN_WEIGHT, _BLOCK, _GENERAL_MIN_WEIGHT, _UNNORMALISED_BAND

# ---------------------------------------------------------------------------------------------------
# the resampler
# ---------------------------------------------------------------------------------------------------


class _Taps:
    """One tap layout for a set of points.

    ``base`` is the flat index, in the padded source, of each point's first tap; tap (j, i) is at
    ``base + j * padded_width + i``. ``wx`` (kx, n) and ``wy`` (ky, n) are the separable weights,
    ``mx``/``my`` the taps' membership of the kernel window (Lanczos, area methods).
    """

    __slots__ = ("kind", "sel", "base", "wx", "wy", "mx", "my", "x", "y", "den", "good", "divide", "half",
                 "border")

    def __init__(self, kind: str, sel: np.ndarray | None, base: np.ndarray, wx: np.ndarray, wy: np.ndarray,
                 mx: np.ndarray | None = None, my: np.ndarray | None = None) -> None:
        self.kind = kind
        self.sel = sel
        self.base = base
        self.wx = wx
        self.wy = wy
        self.mx = mx
        self.my = my
        self.x: np.ndarray | None = None  # interpolation: the points' positions (centre pixel, fallback)
        self.y: np.ndarray | None = None
        self.den: np.ndarray | None = None  # weight sum when every in-array tap is valid
        self.good: np.ndarray | None = None  # validity then
        self.divide: np.ndarray | None = None  # general kernels: whether the value is divided by den
        self.half: np.ndarray | None = None  # Lanczos: half the window's tap count (integer division)
        self.border: np.ndarray | None = None  # cubic: points within a pixel of the edge (bilinear)

    @property
    def nbytes(self) -> int:
        arrays = (self.sel, self.base, self.wx, self.wy, self.mx, self.my, self.x, self.y, self.den, self.good,
                  self.divide, self.half, self.border)
        return sum(a.nbytes for a in arrays if a is not None)


def _static_den(wx: np.ndarray, ox: np.ndarray, w: int, wy: np.ndarray, oy: np.ndarray, h: int,
                mx: np.ndarray | None = None, my: np.ndarray | None = None) -> np.ndarray:
    """The weight sum over the taps inside the array (or inside the windows ``mx``/``my``), computed
    with exactly the operations (and so the rounding) of :func:`_wsum` over an all-valid mask."""
    sx = zx = None
    for i in range(wx.shape[0]):
        inx = mx[i] if mx is not None else (ox + i >= 0) & (ox + i < w)
        tx = wx[i] * inx
        tz = wx[i] * 0.0
        sx, zx = (tx, tz) if sx is None or zx is None else (sx + tx, zx + tz)
    if not (sx is not None and zx is not None):
        raise RuntimeError("internal error: expected sx is not None and zx is not None")
    acc = None
    for j in range(wy.shape[0]):
        iny = my[j] if my is not None else (oy + j >= 0) & (oy + j < h)
        t = np.where(iny, sx, zx) * wy[j]
        acc = t if acc is None else acc + t
    if not (acc is not None):
        raise RuntimeError("internal error: expected acc is not None")
    return acc


def _put(out: np.ndarray, ok: np.ndarray, sel: np.ndarray | None, value: np.ndarray, good: np.ndarray) -> None:
    if sel is None:
        out[...] = value
        ok[...] = good
    else:
        out[sel] = value
        ok[sel] = good


def _finish(t: _Taps, num: np.ndarray) -> None:
    """Turn weighted sums (bands, n) into values in place, for points whose taps are all valid."""
    if not (t.den is not None):
        raise RuntimeError("internal error: expected t.den is not None")
    with np.errstate(invalid="ignore", divide="ignore"):
        if t.kind in ("bilinear4", "average"):
            np.divide(num, t.den, out=num)
        elif t.kind != "cubic4":
            np.divide(num, t.den, out=num, where=t.divide)


def _wsum(flats: np.ndarray, base: np.ndarray, wx: np.ndarray, wy: np.ndarray, wp: int, out: np.ndarray) -> None:
    """out[b] = Σ_j wy[j] · (Σ_i wx[i] · flats[b, base + j·wp + i]) for every band b; taps in
    ascending order, points in blocks so that the temporaries and the block's weights stay in cache."""
    nb = flats.shape[0]
    n = base.shape[0]
    kx, ky = wx.shape[0], wy.shape[0]
    blk = max(1, min(_BLOCK, n))
    g = np.empty(blk, dtype=np.float64)
    row = np.empty(blk, dtype=np.float64)
    tmp = np.empty(blk, dtype=np.float64)
    for s in range(0, n, blk):
        e = min(n, s + blk)
        m = e - s
        bi = base[s:e]
        gg, r, tt = g[:m], row[:m], tmp[:m]
        wxs = [wx[i, s:e] for i in range(kx)]
        wys = [wy[j, s:e] for j in range(ky)]
        for b in range(nb):
            fb = flats[b]
            acc = out[b, s:e]
            for j in range(ky):
                off = j * wp
                fb[off:].take(bi, out=gg, mode="clip")
                np.multiply(gg, wxs[0], out=r)
                for i in range(1, kx):
                    fb[off + i:].take(bi, out=gg, mode="clip")
                    np.multiply(gg, wxs[i], out=tt)
                    r += tt
                if j == 0:
                    np.multiply(r, wys[0], out=acc)
                else:
                    r *= wys[j]
                    acc += r


def _wsum_masked(flat: np.ndarray, base: np.ndarray, wx: np.ndarray, wy: np.ndarray, wp: int,
                 mx: np.ndarray | None = None, my: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`_wsum` over the valid (non-NaN) taps of one band, with the weight sum of those taps and,
    given window masks, the number of valid taps in the window; same operation order as :func:`_wsum`."""
    kx, ky = wx.shape[0], wy.shape[0]
    n = base.shape[0]
    num = np.empty(n, dtype=np.float64)
    den = np.empty(n, dtype=np.float64)
    cnt = None if mx is None else np.zeros(n, dtype=np.int64)
    blk = max(1, min(_BLOCK, n))
    for s in range(0, n, blk):
        e = min(n, s + blk)
        bi = base[s:e]
        for j in range(ky):
            rnum = rden = None
            for i in range(kx):
                g = flat[j * wp + i:].take(bi, mode="clip")
                v = g == g
                g[~v] = 0.0
                w = wx[i, s:e]
                if rnum is None or rden is None:
                    rnum, rden = g * w, v * w
                else:
                    rnum += g * w
                    rden += v * w
                if cnt is not None and mx is not None and my is not None:
                    cnt[s:e] += v & mx[i, s:e] & my[j, s:e]
            if not (rnum is not None and rden is not None):
                raise RuntimeError("internal error: expected rnum is not None and rden is not None")
            if j == 0:
                np.multiply(rnum, wy[0, s:e], out=num[s:e])
                np.multiply(rden, wy[0, s:e], out=den[s:e])
            else:
                num[s:e] += rnum * wy[j, s:e]
                den[s:e] += rden * wy[j, s:e]
    return num, den, cnt


def _rule(kind: str, num: np.ndarray, den: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(value, valid) from the weighted sum of values and the weight sum, by each kernel's GDAL rule."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "bilinear4":
            return num / den, den >= _BILINEAR4_MIN_WEIGHT
        if kind == "cubic4":
            return num.copy(), np.ones(num.shape, dtype=bool)
        if kind == "average":
            return num / den, den > 0.0
        good = den >= _GENERAL_MIN_WEIGHT
        return np.where(np.abs(den - 1.0) <= _UNNORMALISED_BAND, num, num / den), good


