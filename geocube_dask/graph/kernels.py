"""Resampling kernels: a source raster window onto output pixels whose source positions are known.

The engine computes, for every output pixel centre, its exact continuous position in the source array
(``sx``, ``sy``; pixel (row i, col j) covers [j, j+1) × [i, i+1)). This module turns those positions
into values with the semantics of GDAL 3.10's warper (``alg/gdalwarpkernel.cpp``, general masked
path), so that results agree with ``rasterio.warp.reproject`` given the same positions and the same
fixed kernel scale (warp options ``XSCALE``/``YSCALE``), and never depend on how the output is
chunked: every rule is a function of one output pixel's position, the request's scale and the source
pixels around it, and is invariant under integer shifts of the source window (positions are split
exactly into an integer and a fraction before any rounding-sensitive step).

Notation: ``x`` a position along one axis, ``size`` the array length along it, ``s = 1 / scale`` the
warper's scale (output pixels per source pixel; < 1 when the output is coarser), ``i0 = floor(x -
0.5)`` and ``d = x - 0.5 - i0`` (the pixel left of the point's centre and the offset from it).

Domain (all methods but the area ones)
    A point is outside when ``x < 0`` or ``x + 1e-10 > size``. The pixel containing it is
    ``int(x + 1e-10)`` (clamped to ``size - 1``): a point within 1e-10 of a pixel's right/lower edge
    belongs to the next pixel. ``near`` returns that pixel.

Translations
    At scale 1 on both axes, when the points are the pixel centres of a grid shifted from the source
    by whole pixels (within 1e-6 px), every method returns the containing pixel, as GDAL does
    (``GDALTransformIsTranslationOnPixelBoundaries``).

Validity
    Masks are per band and each band is treated as GDAL treats a single-band warp, where the band's
    nodata mask is the warper's unified source mask: an interpolated output is valid only if the pixel
    containing the point is valid, and then by the method's own rule. A NaN source value counts as
    nodata when a mask is given. (``rasterio.warp.reproject`` on several bands with a nodata value
    uses one mask for all bands instead: a pixel is invalid only if every band is nodata there, and
    the bands' values, nodata ones included, are used as data. Passing ``valid.any(axis=0)`` for every
    band reproduces that.)

bilinear, cubic, cubicspline, lanczos
    * If the source array is one pixel wide or high, every method returns the containing pixel.
    * bilinear and cubic use GDAL's 4-sample formulas when ``s >= 0.95`` on both axes: bilinear taps
      ``i0`` and ``i0 + 1`` with weights ``1 - d`` and ``d`` (for ``i0 == -1``: pixel 0, weight 1);
      invalid taps and taps outside the array are dropped and the others renormalised; invalid if
      the remaining weight is < 1e-5. Cubic is Catmull-Rom on the 4×4 pixels from ``i0 - 1``; within
      a pixel of the array edge, or if one of its 16 taps is invalid, it is the bilinear formula.
    * Otherwise (and always for cubicspline and lanczos) the general kernel: taps ``i0 + k`` for
      ``k`` in ``[init, R]``, ``R = ceil(r / s)`` when ``s < 1`` else ``r`` (r = 1, 2, 2, 3 for
      bilinear, cubic, cubicspline, lanczos), ``init = -R`` (bilinear, lanczos) or ``1 - R`` (cubic,
      cubicspline), separable weights ``K((k - d) * min(s, 1))``. Invalid taps and taps outside the
      array are dropped; invalid if their weight sum ``W`` < 1e-6; the value is divided by ``W``
      unless ``|W - 1| <= 1e-5`` (then used as is). The B-spline is GDAL's: 6× the textbook kernel,
      without its cut-off at +2 (a small negative weight beyond). Lanczos keeps the taps with
      ``|(k - d) * min(s, 1)| <= 3`` and also needs at least half (integer division) of those inside
      the array to be valid. When downsampling, GDAL computes Lanczos weights by a sine recurrence with
      a factor 3π² where 3/π² is due: all weights are π⁴ too large (which the normalisation cancels)
      except an exactly zero argument, which weighs 1, and an argument within rounding noise of 0
      (a point on a source pixel centre) gets a meaningless weight; the recurrence is reproduced
      operation by operation, so these results are GDAL's too.

average, mode, max, min, med, q1, q3
    The output pixel's footprint is ``[x - scale/2, x + scale/2]`` on each axis (GDAL transforms the
    output pixel's corners; for an affine output grid this is the same). With ``EPS = 1e-10``:
    skipped unless ``hi > -EPS`` and ``lo < size + EPS``; pixels ``[max(floor(lo + EPS), 0),
    min(ceil(hi - EPS), size))``, one more if that is empty and not at the end. ``average`` weighs the
    first and last pixels ``1 - (lo - imin)`` and ``1 - (imax - hi)`` (a single pixel weighs 1; more
    than 1 where the footprint passes the array edge, as GDAL) and averages the valid ones. The others
    use every valid pixel of the range: ``mode`` keeps the value that first reaches the highest count
    in row-major order, comparing values as float32 and returning the float32 value unless the source
    is uint8/uint16/int16 (as GDAL); ``med``/``q1``/``q3`` take the sorted values at index
    ``ceil(q * n - 1)`` (the lower middle of an even count). GDAL's antimeridian heuristic
    (``bWrapOverX``, only possible when the footprint spans most of a source window that starts at
    column 0) is not reproduced.

Not reproduced either: GDAL's specialised kernels for uint8/int16/uint16 (and float32 bilinear/cubic)
when neither source nor destination has nodata, which differ from the general path only for images
smaller than the kernel radius (they fall back to bilinear) and in the |W - 1| <= 1e-5 rule; and
GDAL's rounding to the destination type (values here are float64; the engine maps and casts).
"""

from __future__ import annotations

import math

import numpy as np

RESAMPLINGS = ("near", "bilinear", "cubic", "cubicspline", "lanczos", "average", "mode", "max", "min",
               "med", "q1", "q3")

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
            assert kernel is not None
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


def _area_axis(c: np.ndarray, scale: float, size: int, kmax: int) -> tuple[np.ndarray, _Axis]:
    """(skip, taps) of the footprint ``[c - scale/2, c + scale/2]``; weights are GDAL's average weights."""
    ic, fc = _split(c)
    half = 0.5 * scale
    lo_r = fc - half
    hi_r = fc + half
    lo = ic + lo_r
    hi = ic + hi_r
    ok = (hi > -_AREA_EPS) & (lo < size + _AREA_EPS)
    imin = np.maximum(ic + np.floor(lo_r + _AREA_EPS), 0.0)
    imax = np.minimum(ic + np.ceil(hi_r - _AREA_EPS), float(size))
    imax = np.where((imin == imax) & (imax < size), imax + 1.0, imax)
    count = imax - imin
    ks = np.arange(kmax, dtype=np.float64)[:, None]
    first = 1.0 - (lo_r - (imin - ic))
    last = 1.0 - ((imax - ic) - hi_r)
    single = count == 1.0
    w = np.where(ks == 0, np.where(single, 1.0, first)[None, :],
                 np.where(ks + 1 == count[None, :], last[None, :], 1.0))
    window = ks < count[None, :]
    w = np.where(window, w, 0.0)
    return ok, _Axis(imin.astype(np.int64), w, window)


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
    assert sx is not None and zx is not None
    acc = None
    for j in range(wy.shape[0]):
        iny = my[j] if my is not None else (oy + j >= 0) & (oy + j < h)
        t = np.where(iny, sx, zx) * wy[j]
        acc = t if acc is None else acc + t
    assert acc is not None
    return acc


class Resampler:
    """Resample source arrays onto output pixels with precomputed source positions (see module doc)."""

    def __init__(self, sx: np.ndarray, sy: np.ndarray, method: str, xscale: float, yscale: float,
                 src_shape: tuple[int, int]) -> None:
        """sx, sy: float64 arrays (H, W): the continuous source pixel coordinates of each output pixel
        centre, in the frame of the source array (pixel (row i, col j) covers [j, j+1) x [i, i+1)).
        NaN where the point has no source position (outside the projection's domain).
        xscale, yscale: source pixels per output pixel along x / y (> 1 when the output is coarser),
        fixed for the whole request (the engine computes them once, not per chunk).
        src_shape: (h, w) of the source array that __call__ will receive.
        Precomputes indices and weights once: the engine calls the same Resampler on many source
        arrays (the same tile on many dates) and all bands."""
        if method not in RESAMPLINGS:
            raise ValueError(f"unknown resampling {method!r}; expected one of {RESAMPLINGS}")
        sx = np.asarray(sx, dtype=np.float64)
        sy = np.asarray(sy, dtype=np.float64)
        if sx.shape != sy.shape or sx.ndim != 2:
            raise ValueError(f"sx and sy must be 2-D arrays of one shape, got {sx.shape} and {sy.shape}")
        if not (xscale > 0 and yscale > 0 and math.isfinite(xscale) and math.isfinite(yscale)):
            raise ValueError(f"scales must be finite and positive, got {xscale}, {yscale}")
        h, w = (int(v) for v in src_shape)
        if h < 1 or w < 1:
            raise ValueError(f"empty source shape {src_shape}")
        self.method = method
        self.shape: tuple[int, int] = (int(sx.shape[0]), int(sx.shape[1]))
        self.src_shape = (h, w)
        self.xscale = float(xscale)
        self.yscale = float(yscale)
        self._n = sx.size
        x = sx.ravel()
        y = sy.ravel()
        finite = np.isfinite(x) & np.isfinite(y)
        if not finite.all():
            x = np.where(finite, x, 0.0)
            y = np.where(finite, y, 0.0)
        self._pad = 0
        self._taps: list[_Taps] = []
        self._near: np.ndarray | None = None  # flat index into the (unpadded) source
        self._near_ok: np.ndarray | None = None  # bool (n,), None when every point is inside
        if method != "near" and _is_pixel_translation(sx, sy, finite, self.xscale, self.yscale):
            self._init_near(x, y, finite)
        elif method in _AREA:
            self._init_area(x, y, finite)
        elif method == "near" or h == 1 or w == 1:
            self._init_near(x, y, finite)
        else:
            self._init_interp(x, y, finite)

    # -- construction --------------------------------------------------------------------------------

    def _init_near(self, x: np.ndarray, y: np.ndarray, finite: np.ndarray) -> None:
        h, w = self.src_shape
        okx, cx = _domain(x, w)
        oky, cy = _domain(y, h)
        ok = finite & okx & oky
        self._near = np.where(ok, cy * w + cx, 0.0).astype(np.intp)
        self._near_ok = None if ok.all() else ok

    def _make(self, kind: str, sel: np.ndarray | None, ox: np.ndarray, wx: np.ndarray, oy: np.ndarray,
              wy: np.ndarray, mx: np.ndarray | None = None, my: np.ndarray | None = None) -> _Taps:
        h, w = self.src_shape
        pad = self._pad
        wp = w + 2 * pad
        base = ((oy + pad) * wp + ox + pad).astype(np.intp)
        t = _Taps(kind, sel, base, wx, wy, mx, my)
        t.den = _static_den(wx, ox, w, wy, oy, h, mx, my)
        t.good = _rule(kind, t.den, t.den)[1]
        if kind in ("general", "lanczos"):
            t.divide = np.abs(t.den - 1.0) > _UNNORMALISED_BAND
        return t

    def _init_interp(self, x: np.ndarray, y: np.ndarray, finite: np.ndarray) -> None:
        method = self.method
        h, w = self.src_shape
        sxg = _gdal_scale(self.xscale)
        syg = _gdal_scale(self.yscale)
        okx, _ = _domain(x, w)
        oky, _ = _domain(y, h)
        ok = finite & okx & oky
        sel: np.ndarray | None = np.flatnonzero(ok)
        assert sel is not None
        if sel.size == self._n:
            sel = None
        else:
            x, y = x[sel], y[sel]
        self._pad = max(_margin(method, self.xscale), _margin(method, self.yscale)) + 1
        four = sxg >= _FOUR_SAMPLE_MIN_SCALE and syg >= _FOUR_SAMPLE_MIN_SCALE
        if method == "bilinear" and four:
            ax, ay = _bilinear4_axis(x), _bilinear4_axis(y)
            t = self._make("bilinear4", sel, ax.offset, ax.weights, ay.offset, ay.weights)
        elif method == "cubic" and four:
            ax, inx = _cubic4_axis(x, w)
            ay, iny = _cubic4_axis(y, h)
            t = self._make("cubic4", sel, ax.offset, ax.weights, ay.offset, ay.weights)
            t.border = np.flatnonzero(~(inx & iny))
        else:
            ax = _general_axis(method, x, sxg, w)
            ay = _general_axis(method, y, syg, h)
            kind = "lanczos" if method == "lanczos" else "general"
            t = self._make(kind, sel, ax.offset, ax.weights, ay.offset, ay.weights, ax.window, ay.window)
            if kind == "lanczos":
                assert ax.window is not None and ay.window is not None
                t.half = (ax.window.sum(axis=0) * ay.window.sum(axis=0)) // 2
        t.x, t.y = np.array(x), np.array(y)  # never views of the caller's arrays
        self._taps.append(t)

    def _init_area(self, x: np.ndarray, y: np.ndarray, finite: np.ndarray) -> None:
        h, w = self.src_shape
        kx = int(math.ceil(self.xscale)) + 1
        ky = int(math.ceil(self.yscale)) + 1
        okx, ax = _area_axis(x, self.xscale, w, kx)
        oky, ay = _area_axis(y, self.yscale, h, ky)
        ok = finite & okx & oky
        sel: np.ndarray | None = np.flatnonzero(ok)
        assert sel is not None
        if sel.size == self._n:
            sel = None
        else:
            ax, ay = ax.take(sel), ay.take(sel)
        self._pad = max(kx, ky) + 1
        kind = "average" if self.method == "average" else "order"
        self._taps.append(self._make(kind, sel, ax.offset, ax.weights, ay.offset, ay.weights, ax.window,
                                     ay.window))

    # -- application ---------------------------------------------------------------------------------

    @property
    def nbytes(self) -> int:
        """Memory held by the precomputed indices and weights."""
        total = sum(a.nbytes for a in (self._near, self._near_ok) if a is not None)
        return total + sum(t.nbytes for t in self._taps)

    def __call__(self, src: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """src: (bands, h, w) any numeric dtype; valid: bool (bands, h, w) (False = nodata) or None (all
        valid). Returns (values float64 (bands, H, W), valid bool (bands, H, W)). Taps outside the source
        array are treated as outside the image (the engine reads windows that contain every in-image tap,
        using kernel_margin). Invalid outputs may hold any value."""
        src = np.asarray(src)
        if src.ndim != 3 or src.shape[1:] != self.src_shape:
            raise ValueError(f"source must be (bands, {self.src_shape[0]}, {self.src_shape[1]}), got {src.shape}")
        if valid is not None:
            valid = np.asarray(valid, dtype=bool)
            if valid.shape != src.shape:
                raise ValueError(f"valid must have the source's shape {src.shape}, got {valid.shape}")
        nb = src.shape[0]
        out = np.empty((nb, self._n), dtype=np.float64)
        ok = np.empty((nb, self._n), dtype=bool)
        if self._near is not None:
            for b in range(nb):
                self._near_band(src[b], None if valid is None else valid[b], out[b], ok[b])
        else:
            self._apply(src, valid, out, ok)
        h_out, w_out = self.shape
        return out.reshape(nb, h_out, w_out), ok.reshape(nb, h_out, w_out)

    def _near_band(self, band: np.ndarray, valid: np.ndarray | None, out: np.ndarray, ok: np.ndarray) -> None:
        assert self._near is not None
        idx = self._near
        np.copyto(out, np.ascontiguousarray(band).ravel().take(idx, mode="clip"), casting="unsafe")
        if valid is not None:
            np.ascontiguousarray(valid).ravel().take(idx, out=ok, mode="clip")
            if self._near_ok is not None:
                ok &= self._near_ok
        elif self._near_ok is not None:
            ok[...] = self._near_ok
        else:
            ok[...] = True

    def _apply(self, src: np.ndarray, valid: np.ndarray | None, out: np.ndarray, ok: np.ndarray) -> None:
        nb = src.shape[0]
        h, w = self.src_shape
        p = self._pad
        wp = w + 2 * p
        # Padded float copy of all bands. Without a mask the padding is 0 and the weight sums of the
        # in-array taps are precomputed. With one, invalid pixels and the padding are NaN, so a weighted
        # sum is NaN exactly when one of its taps is invalid or outside the array, and only those points
        # are redone tap by tap (a NaN source value is therefore always nodata).
        masked = valid is not None
        vals = np.full((nb, h + 2 * p, wp), np.nan) if masked else np.zeros((nb, h + 2 * p, wp))
        inner = vals[:, p:p + h, p:p + w]
        inner[...] = src
        if valid is not None and not valid.all():
            np.copyto(inner, np.nan, where=~valid)
        flat = vals.reshape(nb, vals.shape[1] * vals.shape[2])
        whole = len(self._taps) == 1 and self._taps[0].sel is None
        if not whole:
            out[...] = 0.0
            ok[...] = False
        for t in self._taps:
            if t.kind == "order":
                exact = src.dtype in _IMODE_DTYPES
                for b in range(nb):
                    value, good = _order_stat(self.method, flat[b], masked, t, wp, exact)
                    _put(out[b], ok[b], t.sel, value, good)
                continue
            num = out if whole else np.empty((nb, t.base.shape[0]))
            _wsum(flat, t.base, t.wx, t.wy, wp, num)
            _finish(t, num)
            assert t.good is not None
            for b in range(nb):
                redo = np.flatnonzero(np.isnan(num[b])) if masked else None
                if t.border is not None and t.border.size:
                    redo = t.border if redo is None else np.union1d(redo, t.border)
                good = t.good
                if redo is not None and redo.size:
                    good = good.copy()
                    self._redo(t, flat[b], masked, redo, num[b], good)
                if whole:
                    ok[b] = good
                else:
                    _put(out[b], ok[b], t.sel, num[b], good)

    def _redo(self, t: _Taps, flat: np.ndarray, masked: bool, d: np.ndarray, value: np.ndarray,
              good: np.ndarray) -> None:
        """Recompute points ``d``: with the band's mask where a tap is invalid or outside the array, and
        with the bilinear formula for cubic's fallback (array border, invalid taps)."""
        h, w = self.src_shape
        pad = self._pad
        wp = w + 2 * pad
        if t.kind == "average":
            num, den, _ = _wsum_masked(flat, t.base[d], np.take(t.wx, d, axis=1), np.take(t.wy, d, axis=1), wp)
            value[d], good[d] = _rule(t.kind, num, den)
            return
        assert t.x is not None and t.y is not None
        x, y = t.x[d], t.y[d]
        if t.kind == "cubic4":
            bx, by = _bilinear4_axis(x), _bilinear4_axis(y)
            base = ((by.offset + pad) * wp + bx.offset + pad).astype(np.intp)
            if masked:
                num, den, _ = _wsum_masked(flat, base, bx.weights, by.weights, wp)
            else:
                num = np.empty((1, d.size))
                _wsum(flat[None], base, bx.weights, by.weights, wp, num)
                num = num[0]
                den = _static_den(bx.weights, bx.offset, w, by.weights, by.offset, h)
            v_d, g_d = _rule("bilinear4", num, den)
        else:
            lanczos = t.kind == "lanczos"
            mx = my = None
            if lanczos:
                assert t.mx is not None and t.my is not None
                mx, my = np.take(t.mx, d, axis=1), np.take(t.my, d, axis=1)
            num, den, cnt = _wsum_masked(flat, t.base[d], np.take(t.wx, d, axis=1), np.take(t.wy, d, axis=1), wp,
                                         mx, my)
            v_d, g_d = _rule(t.kind, num, den)
            if lanczos:
                assert t.half is not None and cnt is not None
                g_d &= cnt >= t.half[d]
        if masked:
            cx = _domain(x, w)[1]
            cy = _domain(y, h)[1]
            centre = ((cy + pad) * wp + cx + pad).astype(np.intp)
            g_d &= ~np.isnan(flat.take(centre, mode="clip"))
        value[d] = v_d
        good[d] = g_d


def _put(out: np.ndarray, ok: np.ndarray, sel: np.ndarray | None, value: np.ndarray, good: np.ndarray) -> None:
    if sel is None:
        out[...] = value
        ok[...] = good
    else:
        out[sel] = value
        ok[sel] = good


def _finish(t: _Taps, num: np.ndarray) -> None:
    """Turn weighted sums (bands, n) into values in place, for points whose taps are all valid."""
    assert t.den is not None
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
            assert rnum is not None and rden is not None
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


def _order_stat(method: str, flat: np.ndarray, masked: bool, t: _Taps, wp: int,
                exact_mode: bool) -> tuple[np.ndarray, np.ndarray]:
    """mode, min, max or a quantile of the valid pixels of each footprint, in blocks of points."""
    assert t.mx is not None and t.my is not None
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
