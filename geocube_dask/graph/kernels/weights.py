"""GDAL's kernel formulas and the per-axis geometry of taps (positions, weights, windows, margins)."""

from __future__ import annotations

import math

import numpy as np

from ...entities import RESAMPLINGS

_INTERP = ("bilinear", "cubic", "cubicspline", "lanczos")
_AREA = ("average", "mode", "max", "min", "med", "q1", "q3")
_FILTER_RADIUS = {"bilinear": 1, "cubic": 2, "cubicspline": 2, "lanczos": 3}
_QUANTILES = {"med": 0.5, "q1": 0.25, "q3": 0.75}
_NEAR_EPS = 1e-10  # GWKCheckAndComputeSrcOffsets
_AREA_EPS = 1e-10  # GWKAverageOrModeThread
_FOUR_SAMPLE_MIN_SCALE = 0.95  # bUse4SamplesFormula
_BILINEAR4_MIN_WEIGHT = 0.00001  # GWKBilinearResample4Sample
_GENERAL_MIN_WEIGHT = 0.000001  # GWKResample, GWKResampleOptimizedLanczos
_UNNORMALISED_BAND = 0.00001  # no division when |W - 1| <= this
_PI4 = math.pi ** 4
_TRANSLATION_TOLERANCE = 1e-6  # pixels
_BLOCK = 32768  # points per block: keeps per-tap temporaries in cache
_IMODE_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.int16), np.dtype(np.bool_))


# ---------------------------------------------------------------------------------------------------
# kernel functions (GDAL's exact formulas)
# ---------------------------------------------------------------------------------------------------


def _k_bilinear(t: np.ndarray) -> np.ndarray:
    a = np.abs(t)
    return np.where(a <= 1.0, 1.0 - a, 0.0)


def _k_cubic(t: np.ndarray) -> np.ndarray:
    a = np.abs(t)
    t2 = t * t
    inner = t2 * (1.5 * a - 2.5) + 1.0
    outer = t2 * (-0.5 * a + 2.5) - 4.0 * a + 2.0
    return np.where(a <= 1.0, inner, np.where(a <= 2.0, outer, 0.0))


def _k_bspline(x: np.ndarray) -> np.ndarray:
    """GDAL's GWKBSpline: 6 × the cubic B-spline for x < 2 and, as GDAL, -(x - 2)³ beyond (no cut-off).
    Its nested conditionals are the truncated powers (u)₊³ of x - 1, x, x + 1, x + 2, summed in the
    same order."""
    def cube(u: np.ndarray) -> np.ndarray:
        u = np.maximum(u, 0.0)
        return u * u * u

    return ((-4.0 * cube(x - 1.0) + 6.0 * cube(x)) + -4.0 * cube(x + 1.0)) + cube(x + 2.0)


_KERNELS = {"bilinear": _k_bilinear, "cubic": _k_cubic, "cubicspline": _k_bspline}


def _cubic4_weights(d: np.ndarray) -> np.ndarray:
    """GWKCubicComputeWeights: Catmull-Rom weights of taps -1, 0, 1, 2 for offset ``d`` in [0, 1)."""
    hx = 0.5 * d
    tx = 3.0 * d
    hx2 = hx * d
    w = np.empty((4, d.shape[0]))
    w[0] = hx * (-1 + d * (2 - d))
    w[1] = 1 + hx2 * (-5 + tx)
    w[2] = hx * (1 + d * (4 - tx))
    w[3] = hx2 * (-1 + d)
    return w


# ---------------------------------------------------------------------------------------------------
# per-axis geometry
# ---------------------------------------------------------------------------------------------------


def _gdal_scale(scale: float) -> float:
    """The warper's scale (output pixels per source pixel) for a scale in source pixels per output pixel."""
    return 1.0 / scale


def _radius(method: str, s: float) -> int:
    r = _FILTER_RADIUS[method]
    return int(math.ceil(r / s)) if s < 1.0 else r


def _filter_init(method: str, radius: int) -> int:
    return ((_FILTER_RADIUS[method] + 1) % 2) - radius


def _split(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer part and fraction of ``c``; exact, so every rule built on it is shift invariant."""
    i = np.floor(c)
    return i, c - i


def _half_split(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``floor(c - 0.5)`` and ``c - 0.5 - floor(c - 0.5)`` from the exact split, plus the split itself."""
    i, f = _split(c)
    hi = f >= 0.5
    i0 = np.where(hi, i, i - 1.0)
    d = np.where(hi, f - 0.5, f + 0.5)
    return i0, d, i, f


def _domain(c: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(inside, containing pixel) along one axis, as GWKCheckAndComputeSrcOffsets decides them."""
    i, f = _split(c)
    up = f + _NEAR_EPS >= 1.0
    inside = (c >= 0.0) & ((i < size - 1) | ((i == size - 1) & (f + _NEAR_EPS <= 1.0)))
    centre = np.minimum(i + up, size - 1)
    return inside, centre


class _Axis:
    """Taps along one axis for a set of points: first tap offset, weights (k, n), in-window mask (k, n)."""

    __slots__ = ("offset", "weights", "window")

    def __init__(self, offset: np.ndarray, weights: np.ndarray, window: np.ndarray | None) -> None:
        self.offset = offset
        self.weights = weights
        self.window = window

    def take(self, sel: np.ndarray) -> _Axis:
        return _Axis(self.offset[sel], self.weights[:, sel],
                     None if self.window is None else self.window[:, sel])


def _bilinear4_axis(c: np.ndarray) -> _Axis:
    i0, _, _, f = _half_split(c)
    ratio = np.where(f >= 0.5, 1.5 - f, 0.5 - f)
    edge = i0 == -1.0
    i0[edge] = 0.0
    ratio[edge] = 1.0
    w = np.empty((2, c.shape[0]))
    w[0] = ratio
    w[1] = 1.0 - ratio
    return _Axis(i0.astype(np.int64), w, None)


def _cubic4_axis(c: np.ndarray, size: int) -> tuple[_Axis, np.ndarray]:
    i0, d, _, _ = _half_split(c)
    interior = (i0 >= 1) & (i0 + 2 <= size - 1)
    return _Axis((i0 - 1).astype(np.int64), _cubic4_weights(d), None), interior


def _general_axis(method: str, c: np.ndarray, s: float, size: int) -> _Axis:
    radius = _radius(method, s)
    init = _filter_init(method, radius)
    i0, d, _, _ = _half_split(c)
    k_all = radius - init + 1
    weights = np.empty((k_all, c.shape[0]))
    lanczos = method == "lanczos"
    window = np.empty((k_all, c.shape[0]), dtype=bool) if lanczos else None
    kernel = _KERNELS.get(method)
    cst = _lanczos_constants(d) if lanczos and s >= 1.0 else None
    for r in range(k_all):
        k = init + r
        t = k - d
        arg = t * s if s < 1.0 else t
        if window is None:
            if not (kernel is not None):
                raise RuntimeError("internal error: expected kernel is not None")
            weights[r] = kernel(arg)
            continue
        pos = i0 + k
        window[r] = (arg >= -3.0) & (arg <= 3.0) & (pos >= 0) & (pos < size)
        if cst is not None:
            # GDAL's closed form for L(k - d) (GWKResampleOptimizedLanczos without downsampling)
            with np.errstate(divide="ignore", invalid="ignore"):
                wk = cst[(k + 3) % 3] / (t * t)
            wk[t == 0.0] = 1.0
            weights[r] = np.where(window[r], wk, 0.0)
    if window is not None and s < 1.0:
        ks = np.arange(init, radius + 1, dtype=np.float64)[:, None]
        weights = _lanczos_downsampling_weights(ks, d, s, window)
    offset = i0 + init
    if window is None and c.shape[0]:
        # taps weighing exactly 0 for every point change no sum (only Lanczos counts its taps): drop
        # the leading and trailing ones
        nonzero = np.flatnonzero((weights != 0.0).any(axis=1))
        lead, last = (int(nonzero[0]), int(nonzero[-1])) if nonzero.size else (0, 0)
        weights = weights[lead:last + 1]
        offset = offset + lead
    return _Axis(offset.astype(np.int64), weights, window)


def _lanczos_constants(d: np.ndarray) -> np.ndarray:
    """GDAL's three per-point constants: L(k - d) = cst[(k + 3) % 3] / (k - d)²."""
    s3 = np.sin((-math.pi / 3.0) * d)
    s3sq = s3 * s3
    c3 = np.sqrt(1.0 - s3sq)
    spd = (3.0 - 4 * s3sq) * s3
    a = (3.0 / (math.pi * math.pi)) * spd
    b = -0.5 * a * s3
    e = 0.8660254037844386 * a * c3
    out = np.empty((3, d.shape[0]))
    out[0] = a * s3
    out[1] = b - e
    out[2] = b + e
    return out


def _lanczos_downsampling_weights(ks: np.ndarray, d: np.ndarray, s: float, window: np.ndarray) -> np.ndarray:
    """GDAL 3.10's Lanczos weights when downsampling (GWKResampleOptimizedLanczos, scale < 1).

    GDAL walks the window's taps with a sine/cosine recurrence, the argument advancing by ``s`` from
    ``(first - d) * s``, and multiplies by ``3·π²`` where the sinc needs ``3/π²``: every weight is π⁴
    times the Lanczos value (a factor the normalisation cancels) except a tap whose accumulated
    argument is exactly 0, which weighs 1. Where the argument is tiny but not 0 (a point within
    rounding noise of a source pixel centre) the recurrence's rounding noise is divided by the
    squared argument and the weight is meaningless. This reproduces the recurrence operation by
    operation, so the results are GDAL's in every case (given the same libm sin/cos).
    """
    n = d.shape[0]
    if n > _BLOCK:
        out = np.empty((ks.shape[0], n))
        for a in range(0, n, _BLOCK):
            b = min(n, a + _BLOCK)
            out[:, a:b] = _lanczos_downsampling_weights(ks, d[a:b], s, window[:, a:b])
        return out
    c3s = math.cos(math.pi / 3 * s)
    s3s = math.sqrt(1 - c3s * c3s)
    cs_ = (4 * c3s * c3s - 3) * c3s
    ss_ = math.sqrt(1 - cs_ * cs_)
    three_pi_pi = 3 * math.pi * math.pi
    k_all = ks.shape[0]
    first = np.argmax(window, axis=0)
    out = np.zeros((k_all, n), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for f in np.unique(first):
            idx = np.flatnonzero(first == f)
            x = (ks[f, 0] - d[idx]) * s
            a = math.pi / 3 * x
            co = np.cos(a)
            so = np.sin(a)
            si = (3 - 4 * so * so) * so
            cs = (4 * co * co - 3) * co
            for k in range(f, k_all):
                if k > f:
                    x = x + s
                    si, so, cs, co = (si * cs_ + cs * ss_, so * c3s + co * s3s,
                                      cs * cs_ - si * ss_, co * c3s - so * s3s)
                w = three_pi_pi * si * so / (x * x)
                w[x == 0] = 1.0
                out[k, idx] = w
    return np.where(window, out, 0.0)


def _area_axis(base: np.ndarray, lo_r: np.ndarray, hi_r: np.ndarray, size: int, kmax: int
               ) -> tuple[np.ndarray, _Axis]:
    """(skip, taps) of the footprints ``[base + lo_r, base + hi_r]`` along one axis (source pixel
    coordinates, one per output pixel; ``base`` whole numbers, so that the arithmetic on ``lo_r``/``hi_r``
    gives the same bits whatever window the coordinates are relative to); weights are GDAL's average
    weights: the share of each source pixel inside the footprint, whole pixels in between."""
    lo = base + lo_r
    hi = base + hi_r
    ok = (hi > -_AREA_EPS) & (lo < size + _AREA_EPS)
    imin = np.maximum(base + np.floor(lo_r + _AREA_EPS), 0.0)
    imax = np.minimum(base + np.ceil(hi_r - _AREA_EPS), float(size))
    imax = np.where((imin == imax) & (imax < size), imax + 1.0, imax)
    count = imax - imin
    ks = np.arange(kmax, dtype=np.float64)[:, None]
    first = 1.0 - (lo_r - (imin - base))
    last = 1.0 - ((imax - base) - hi_r)
    single = count == 1.0
    w = np.where(ks == 0, np.where(single, 1.0, first)[None, :],
                 np.where(ks + 1 == count[None, :], last[None, :], 1.0))
    window = ks < count[None, :]
    w = np.where(window, w, 0.0)
    return ok, _Axis(imin.astype(np.int64), w, window)


def area_bounds(c: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base, lo_r, hi_r) of the box ``[c - scale/2, c + scale/2]`` around each centre ``c``."""
    ic, fc = _split(c)
    half = 0.5 * scale
    return ic, fc - half, fc + half


def footprint_bounds(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base, lo_r, hi_r) of the footprints ``[lo, hi]``: ``base = floor(lo)``; both differences are exact,
    so a footprint shifted by whole pixels (another window) gives the same ``lo_r``, ``hi_r``."""
    base = np.floor(lo)
    return base, lo - base, hi - base


def area_taps(lo_r: np.ndarray, hi_r: np.ndarray) -> int:
    """The most source pixels a footprint spans along one axis (taps needed per point), plus one."""
    if lo_r.size == 0:
        return 1
    span = np.ceil(hi_r - _AREA_EPS) - np.floor(lo_r + _AREA_EPS)
    return max(1, int(np.max(span, initial=1.0))) + 1


def corner_footprints(cx: np.ndarray, cy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per output pixel, the source footprint GDAL's area methods weigh (GWKAverageOrModeThread): the box,
    in source pixel coordinates, spanned by the pixel's top-left and bottom-right corners (ordered on
    each axis). The other two corners are not used: for a rotated mapping the box is not the bounding
    box of the pixel (measured against GDAL 3.10's impulse response). ``cx``, ``cy`` (H+1, W+1) are the
    source coordinates of the output pixel corners; returns xlo, xhi, ylo, yhi, each (H, W)."""
    x0, x1 = cx[:-1, :-1], cx[1:, 1:]
    y0, y1 = cy[:-1, :-1], cy[1:, 1:]
    return np.minimum(x0, x1), np.maximum(x0, x1), np.minimum(y0, y1), np.maximum(y0, y1)


def _is_pixel_translation(sx: np.ndarray, sy: np.ndarray, finite: np.ndarray, xscale: float,
                          yscale: float) -> bool:
    """Whether the points are the pixel centres of a grid translated from the source by whole pixels
    (within 1e-6 px), at scale 1: GDAL then takes the nearest pixel whatever the method
    (GDALTransformIsTranslationOnPixelBoundaries)."""
    if xscale != 1.0 or yscale != 1.0 or sx.size == 0 or not finite.all():
        return False
    ox = sx - np.arange(sx.shape[1], dtype=np.float64)[None, :] - 0.5
    oy = sy - np.arange(sy.shape[0], dtype=np.float64)[:, None] - 0.5
    tol = _TRANSLATION_TOLERANCE
    rx = np.round(ox[0, 0])
    ry = np.round(oy[0, 0])
    return bool(np.all(np.abs(ox - rx) <= tol) and np.all(np.abs(oy - ry) <= tol))


def kernel_margin(method: str, xscale: float, yscale: float) -> tuple[int, int]:
    """Source pixels needed beyond the pixel containing a sample point, in x and y, so that a window
    read with this margin contains every tap GDAL would use inside the image."""
    if method not in RESAMPLINGS:
        raise ValueError(f"unknown resampling {method!r}; expected one of {RESAMPLINGS}")
    return _margin(method, xscale), _margin(method, yscale)


def _margin(method: str, scale: float) -> int:
    if method == "near":
        return 1  # a point within 1e-10 of the next pixel belongs to it
    if method in _AREA:
        return int(math.ceil(0.5 * scale)) + 1
    s = _gdal_scale(scale)
    if method in ("bilinear", "cubic") and s >= _FOUR_SAMPLE_MIN_SCALE:
        return 2  # the 4-sample formulas; pixel i0 = floor(x - 0.5) is one left of floor(x) at most
    radius = _radius(method, s)
    init = _filter_init(method, radius)
    return max(radius, 1 - init)


