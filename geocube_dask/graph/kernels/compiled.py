"""Compiled kernels (numba): resample a source window onto a chunk's pixels and paint the result in one pass.

Two cases cover almost every request, and numpy cannot make them fast: each needs, per output pixel, a
handful of source pixels, their validity, a weighted sum, the value mapping and the cast, which numpy
spreads over a dozen temporary arrays (bands × pixels float64 each) and passes over memory.

* :func:`paint_near`: nearest neighbour as a gather of precomputed flat indices into the window.
* :func:`paint_interp`: bilinear, cubic and cubicspline, with GDAL's 4-sample formulas (bilinear,
  cubic) or its general separable kernel, computing each pixel's source position (from a separable
  pair of axes, the interpolation lattice of :mod:`~geocube_dask.graph.warp`, or dense arrays), its taps
  and their weights on the fly: nothing per pixel needs to be kept between dates.

Every rule is the one the numpy :class:`~geocube_dask.graph.kernels.Resampler` documents (module
docstring of :mod:`geocube_dask.graph.kernels`) and every floating-point operation is the one it and
:meth:`~geocube_dask.graph.mapping.Mapping.apply` / :func:`~geocube_dask.graph.mapping.cast` perform,
in the same order (numba does not reorder or fuse them without ``fastmath``), so that the values are
the same bit for bit; ``tests/graph/test_compiled.py`` compares both on random configurations. The one
simplification: a point's value is valid only if the source pixel containing it is valid. The numpy
path applies that test only to points with an invalid tap, which is the same thing, because the
containing pixel is always a tap of non-zero weight.

Validity is decided per value, as :func:`~geocube_dask.graph.mapping.valid_mask` does: a value is
nodata when it equals the source's nodata (compared in the source's type for float sources, in
float64 for integer ones, as numpy compares an array with a Python float) or when it is NaN.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..warp import DENSE, LATTICE_NODES, SEPARABLE

# kinds of interpolation (see paint_interp)
BILINEAR4, CUBIC4, GENERAL = 0, 1, 2
# kernels of the general path
K_BILINEAR, K_CUBIC, K_BSPLINE = 0, 1, 2

_NEAR_EPS = 1e-10
_BILINEAR4_MIN_WEIGHT = 0.00001
_GENERAL_MIN_WEIGHT = 0.000001
_UNNORMALISED_BAND = 0.00001
_OPTS = {"cache": True, "nogil": True}
_INLINE = {"cache": True, "nogil": True, "inline": "always"}


@njit(**_INLINE)
def _is_valid(v, nodata, has_nodata):  # type: ignore[no-untyped-def]
    """valid_mask for one value: not the nodata value, not NaN."""
    if has_nodata and v == nodata:
        return False
    return v == v


@njit(**_INLINE)
def _map(v, mapping):  # type: ignore[no-untyped-def]
    """Mapping.apply on one float64 value; ``mapping`` = (identity, min_in, max_in, min_out, max_out, exponent)."""
    if mapping[0] != 0.0:
        return v
    t = (v - mapping[1]) / (mapping[2] - mapping[1])
    if mapping[5] != 1.0:
        t = np.sign(t) * np.abs(t) ** mapping[5]
    return mapping[3] + (mapping[4] - mapping[3]) * t


@njit(**_INLINE)
def _store(out, b, r, c, v, mapping, cast):  # type: ignore[no-untyped-def]
    """Map ``v`` (float64), cast it as mapping.cast does and write it; ``cast`` = (integer, lo, hi)."""
    v = _map(v, mapping)
    if cast[0] != 0.0:
        lo, hi = cast[1], cast[2]
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        v = np.floor(v + 0.5) if lo >= 0.0 else np.trunc(v + math.copysign(0.5, v))
    out[b, r, c] = v


@njit(**_INLINE)
def _put(out, b, r, c, v, nodata, has_nodata, direct, mapping, cast):  # type: ignore[no-untyped-def]
    """Paint source value ``v`` at (b, r, c) if valid: as it is (``direct``) or mapped and cast."""
    if not _is_valid(v, nodata, has_nodata):
        return
    if direct:
        out[b, r, c] = v
    else:
        _store(out, b, r, c, np.float64(v), mapping, cast)


@njit(**_OPTS)
def paint_near(src, index, inside, nodata, has_nodata, out, direct, mapping, cast):  # type: ignore[no-untyped-def]
    """Paint ``out`` (bands, h, w) with ``src`` (bands, H, W; C-contiguous) gathered at ``index`` (h * w flat
    indices into one band of ``src``) where ``inside`` (h * w; empty: everywhere) and the gathered value is valid.
    ``direct``: the mapping is the identity and ``src`` has ``out``'s type (values copied as they are)."""
    nb = src.shape[0]
    h, w = out.shape[1], out.shape[2]
    flat = src.reshape(nb, src.shape[1] * src.shape[2])
    check_inside = inside.shape[0] > 0
    for r in range(h):
        for c in range(w):
            p = r * w + c
            if check_inside and not inside[p]:
                continue
            k = index[p]
            for b in range(nb):
                _put(out, b, r, c, flat[b, k], nodata, has_nodata, direct, mapping, cast)


@njit(**_INLINE)
def _position(mode, r, c, sep_x, sep_y, nodes_x, nodes_y, lat, dense_x, dense_y):  # type: ignore[no-untyped-def]
    """Source position of pixel (r, c) of the window: separable axes, lattice interpolation or dense
    arrays. ``lat`` = (row0, col0, j0, k0, n): the window's origin in the grid, the lattice's first
    node row/column and its step; the arithmetic is warp.lattice_coords', pixel by pixel."""
    if mode == SEPARABLE:
        return sep_x[c], sep_y[r]
    if mode == DENSE:
        return dense_x[r, c], dense_y[r, c]
    row0, col0, j0, k0, n = lat
    cg = col0 + c
    rg = row0 + r
    kx = cg // n - k0
    fx = (cg % n) / n
    ky = rg // n - j0
    fy = (rg % n) / n
    ax0 = nodes_x[ky, kx] * (1 - fx) + nodes_x[ky, kx + 1] * fx
    ax1 = nodes_x[ky + 1, kx] * (1 - fx) + nodes_x[ky + 1, kx + 1] * fx
    ay0 = nodes_y[ky, kx] * (1 - fx) + nodes_y[ky, kx + 1] * fx
    ay1 = nodes_y[ky + 1, kx] * (1 - fx) + nodes_y[ky + 1, kx + 1] * fx
    return ax0 * (1 - fy) + ax1 * fy, ay0 * (1 - fy) + ay1 * fy


@njit(**_OPTS)
def _row_positions(mode, r, nodes_x, nodes_y, lat, dense_x, dense_y, px, py, rows, state):  # type: ignore[no-untyped-def]
    """:func:`_position` for every pixel of row ``r`` (LATTICE_NODES or DENSE) into ``px``, ``py``. The
    lattice's interpolation along x on the two node rows around ``r`` is the same for the lattice
    cell's other rows: it is kept in ``rows`` (4, w) while ``state[0]`` (its node row) holds."""
    w = px.shape[0]
    if mode == DENSE:
        for c in range(w):
            px[c] = dense_x[r, c]
            py[c] = dense_y[r, c]
        return
    row0, col0, j0, k0, n = lat
    rg = row0 + r
    ky = rg // n - j0
    fy = (rg % n) / n
    if state[0] != ky:
        state[0] = ky
        for c in range(w):
            cg = col0 + c
            kx = cg // n - k0
            fx = (cg % n) / n
            rows[0, c] = nodes_x[ky, kx] * (1 - fx) + nodes_x[ky, kx + 1] * fx
            rows[1, c] = nodes_x[ky + 1, kx] * (1 - fx) + nodes_x[ky + 1, kx + 1] * fx
            rows[2, c] = nodes_y[ky, kx] * (1 - fx) + nodes_y[ky, kx + 1] * fx
            rows[3, c] = nodes_y[ky + 1, kx] * (1 - fx) + nodes_y[ky + 1, kx + 1] * fx
    for c in range(w):
        px[c] = rows[0, c] * (1 - fy) + rows[1, c] * fy
        py[c] = rows[2, c] * (1 - fy) + rows[3, c] * fy


@njit(**_INLINE)
def _domain(x, size):  # type: ignore[no-untyped-def]
    """(inside, containing pixel) along one axis (weights._domain)."""
    i = np.floor(x)
    f = x - i
    inside = x >= 0.0 and (i < size - 1 or (i == size - 1 and f + _NEAR_EPS <= 1.0))
    up = 1.0 if f + _NEAR_EPS >= 1.0 else 0.0
    return inside, int(min(i + up, size - 1))


@njit(**_INLINE)
def _half_split(x):  # type: ignore[no-untyped-def]
    """(floor(x - 0.5), x - 0.5 - floor(x - 0.5), fraction of x) from the exact split (weights._half_split)."""
    i = np.floor(x)
    f = x - i
    if f >= 0.5:
        return i, f - 0.5, f
    return i - 1.0, f + 0.5, f


@njit(**_INLINE)
def _bilinear4_axis(x, w):  # type: ignore[no-untyped-def]
    """First tap and its two weights into ``w`` (weights._bilinear4_axis)."""
    i0, _, f = _half_split(x)
    ratio = 1.5 - f if f >= 0.5 else 0.5 - f
    if i0 == -1.0:
        i0 = 0.0
        ratio = 1.0
    w[0] = ratio
    w[1] = 1.0 - ratio
    return int(i0)


@njit(**_INLINE)
def _cubic4_axis(x, w):  # type: ignore[no-untyped-def]
    """First tap and the four Catmull-Rom weights into ``w`` (weights._cubic4_axis, _cubic4_weights)."""
    i0, d, _ = _half_split(x)
    hx = 0.5 * d
    tx = 3.0 * d
    hx2 = hx * d
    w[0] = hx * (-1 + d * (2 - d))
    w[1] = 1 + hx2 * (-5 + tx)
    w[2] = hx * (1 + d * (4 - tx))
    w[3] = hx2 * (-1 + d)
    return int(i0) - 1


@njit(**_INLINE)
def _kernel(kernel, t):  # type: ignore[no-untyped-def]
    """weights._k_bilinear, _k_cubic and _k_bspline on one argument."""
    if kernel == K_BILINEAR:
        a = abs(t)
        return 1.0 - a if a <= 1.0 else 0.0
    if kernel == K_CUBIC:
        a = abs(t)
        t2 = t * t
        if a <= 1.0:
            return t2 * (1.5 * a - 2.5) + 1.0
        if a <= 2.0:
            return t2 * (-0.5 * a + 2.5) - 4.0 * a + 2.0
        return 0.0
    u1 = max(t - 1.0, 0.0)
    u0 = max(t, 0.0)
    u2 = max(t + 1.0, 0.0)
    u3 = max(t + 2.0, 0.0)
    return ((-4.0 * (u1 * u1 * u1) + 6.0 * (u0 * u0 * u0)) + -4.0 * (u2 * u2 * u2)) + u3 * u3 * u3


@njit(**_INLINE)
def _general_axis(x, kernel, s, init, w):  # type: ignore[no-untyped-def]
    """First tap and the len(w) weights K((k - d) * min(s, 1)) for k = init… into ``w`` (weights._general_axis)."""
    i0, d, _ = _half_split(x)
    for r in range(w.shape[0]):
        t = (init + r) - d
        w[r] = _kernel(kernel, t * s if s < 1.0 else t)
    return int(i0) + init


@njit(**_INLINE)
def _axis(kind, kernel, s, init, x, size, w):  # type: ignore[no-untyped-def]
    """One axis of one point: (inside, containing pixel, first tap, taps) and the taps' weights in ``w``.
    The general kernel's leading and trailing taps of weight 0 are left out: they add exact zeros to
    both sums (the validity rules do not count taps; see the module docstring)."""
    inside, centre = _domain(x, size)
    if kind == BILINEAR4:
        return inside, centre, _bilinear4_axis(x, w), 2
    if kind == CUBIC4:
        return inside, centre, _cubic4_axis(x, w), 4
    first = _general_axis(x, kernel, s, init, w)
    lo = 0
    hi = w.shape[0]
    while lo < hi and w[lo] == 0.0:
        lo += 1
    while hi > lo and w[hi - 1] == 0.0:
        hi -= 1
    for k in range(lo, hi):
        w[k - lo] = w[k]
    return inside, centre, first + lo, hi - lo


@njit(**_OPTS)
def _axes(kind, kernel, s, init, pos, origin, size, ok, centre, first, count, weights, rel):  # type: ignore[no-untyped-def]
    """:func:`_axis` for every position in ``pos`` (relative to ``origin``), into the per-point buffers;
    ``rel`` keeps the relative positions (cubic computes its bilinear fallback's taps from them, for the
    rare points that need it)."""
    for p in range(pos.shape[0]):
        x = pos[p] - origin
        rel[p] = x
        ok[p], centre[p], first[p], count[p] = _axis(kind, kernel, s, init, x, size, weights[p])


@njit(**_INLINE)
def _row_sum(src, b, yy, ox, wx, nx, nodata, has_nodata, width):  # type: ignore[no-untyped-def]
    """(Σ_i wx_i · v_i, Σ_i wx_i, every tap inside and valid) over the taps ``ox + i`` (i < nx) of source
    row ``yy`` that are inside the array and valid."""
    rn = 0.0
    rd = 0.0
    full = True
    for i in range(nx):
        xx = ox + i
        if 0 <= xx < width:
            v = src[b, yy, xx]
            if _is_valid(v, nodata, has_nodata):
                rn += np.float64(v) * wx[i]
                rd += wx[i]
                continue
        full = False
    return rn, rd, full


@njit(**_INLINE)
def _wsum(src, b, ox, wx, nx, oy, wy, ny, nodata, has_nodata, height, width):  # type: ignore[no-untyped-def]
    """(Σ_j wy_j · Σ_i wx_i · v_ji, the same sum of the weights, every tap inside and valid) over the taps
    ``ox + i``, ``oy + j`` (i < nx, j < ny) that are inside the array and valid (taps.py's order)."""
    num = 0.0
    den = 0.0
    full = True
    for j in range(ny):
        yy = oy + j
        if 0 <= yy < height:
            rn, rd, row_full = _row_sum(src, b, yy, ox, wx, nx, nodata, has_nodata, width)
            full = full and row_full
        else:
            rn, rd = 0.0, 0.0
            full = False
        num += rn * wy[j]
        den += rd * wy[j]
    return num, den, full


@njit(**_OPTS)
def _row_bilinear4(src, nodata, has_nodata, out, r, xa, ya, same_y, mapping, cast):  # type: ignore[no-untyped-def]
    """Paint row ``r`` of ``out`` from the axes of its points (``xa``, ``ya``: ok, centre, first, count,
    weights, position relative to the window; ``same_y``: ``ya`` holds one point for the whole row)."""
    x_ok, x_centre, x_first, _, x_w, _ = xa
    y_ok, y_centre, y_first, _, y_w, _ = ya
    height, width = src.shape[1], src.shape[2]
    for c in range(out.shape[2]):
        q = 0 if same_y else c
        if not (x_ok[c] and y_ok[q]):
            continue
        ox, oy = x_first[c], y_first[q]
        wx0, wx1 = x_w[c, 0], x_w[c, 1]
        wy0, wy1 = y_w[q, 0], y_w[q, 1]
        cx, cy = x_centre[c], y_centre[q]
        # the point's containing pixel is inside, and the taps are at most one pixel past it
        x1_in = ox + 1 < width
        y1_in = oy + 1 < height
        for b in range(src.shape[0]):
            if not _is_valid(src[b, cy, cx], nodata, has_nodata):
                continue
            num = 0.0
            den = 0.0
            for j in range(2):
                yy = oy + j
                wy = wy0 if j == 0 else wy1
                rn = 0.0
                rd = 0.0
                if j == 0 or y1_in:
                    v = src[b, yy, ox]
                    if _is_valid(v, nodata, has_nodata):
                        rn += np.float64(v) * wx0
                        rd += wx0
                    if x1_in:
                        v = src[b, yy, ox + 1]
                        if _is_valid(v, nodata, has_nodata):
                            rn += np.float64(v) * wx1
                            rd += wx1
                num += rn * wy
                den += rd * wy
            if den >= _BILINEAR4_MIN_WEIGHT:
                _store(out, b, r, c, num / den, mapping, cast)


@njit(**_INLINE)
def _cubic4_sum(src, b, ox, wx, oy, wy, nodata, has_nodata):  # type: ignore[no-untyped-def]
    """(Σ_j wy_j · Σ_i wx_i · v_ji over the 4×4 taps, whether they are all valid), taps inside the array;
    stops at the first invalid tap (the caller then falls back on bilinear)."""
    num = 0.0
    for j in range(4):
        rn = 0.0
        for i in range(4):
            v = src[b, oy + j, ox + i]
            if not _is_valid(v, nodata, has_nodata):
                return 0.0, False
            rn += np.float64(v) * wx[i]
        num += rn * wy[j]
    return num, True


@njit(**_OPTS)
def _row_cubic4(src, nodata, has_nodata, out, r, xa, ya, same_y, mapping, cast):  # type: ignore[no-untyped-def]
    """:func:`_row_bilinear4` for GDAL's 4×4 cubic, which is the bilinear formula where a tap is missing."""
    x_ok, x_centre, x_first, _, x_w, x_rel = xa
    y_ok, y_centre, y_first, _, y_w, y_rel = ya
    height, width = src.shape[1], src.shape[2]
    bx_w = np.empty(2)
    by_w = np.empty(2)
    for c in range(out.shape[2]):
        q = 0 if same_y else c
        if not (x_ok[c] and y_ok[q]):
            continue
        ox, oy = x_first[c], y_first[q]
        inside = ox >= 0 and ox + 3 <= width - 1 and oy >= 0 and oy + 3 <= height - 1
        bx = by = 0  # the fallback's first taps and weights, computed when a band first needs them
        fallback = False
        for b in range(src.shape[0]):
            if not _is_valid(src[b, y_centre[q], x_centre[c]], nodata, has_nodata):
                continue
            if inside:
                num, full = _cubic4_sum(src, b, ox, x_w[c], oy, y_w[q], nodata, has_nodata)
                if full:
                    _store(out, b, r, c, num, mapping, cast)
                    continue
            if not fallback:
                bx = _bilinear4_axis(x_rel[c], bx_w)
                by = _bilinear4_axis(y_rel[q], by_w)
                fallback = True
            num, den, _ = _wsum(src, b, bx, bx_w, 2, by, by_w, 2, nodata, has_nodata, height, width)
            if den >= _BILINEAR4_MIN_WEIGHT:
                _store(out, b, r, c, num / den, mapping, cast)


@njit(**_OPTS)
def _row_general(src, nodata, has_nodata, out, r, xa, ya, same_y, mapping, cast):  # type: ignore[no-untyped-def]
    """:func:`_row_bilinear4` for GDAL's general separable kernel."""
    x_ok, x_centre, x_first, x_count, x_w, _ = xa
    y_ok, y_centre, y_first, y_count, y_w, _ = ya
    height, width = src.shape[1], src.shape[2]
    for c in range(out.shape[2]):
        q = 0 if same_y else c
        if not (x_ok[c] and y_ok[q]):
            continue
        for b in range(src.shape[0]):
            if not _is_valid(src[b, y_centre[q], x_centre[c]], nodata, has_nodata):
                continue
            num, den, _ = _wsum(src, b, x_first[c], x_w[c], x_count[c], y_first[q], y_w[q], y_count[q], nodata,
                                has_nodata, height, width)
            if den >= _GENERAL_MIN_WEIGHT:
                _store(out, b, r, c, num if abs(den - 1.0) <= _UNNORMALISED_BAND else num / den, mapping, cast)


@njit(**_OPTS)
def _separable_general(src, nodata, has_nodata, kernel, sy_g, init_y, sep_y, origin_y, out, xa, ya,  # type: ignore[no-untyped-def]
                       mapping, cast):
    """:func:`_row_general` over every row when the positions are separable, in two passes: the sums
    along x (Σ_i wx_i · v and Σ_i wx_i over a source row's valid taps) depend on the source row and the
    output column only, so each is computed once and kept (in a ring of source rows) for every output
    row that uses it; each output value then sums them along y. Same operations in the same order as
    :func:`_wsum`, so the same values, with a fraction of the taps."""
    x_ok, x_centre, x_first, x_count, x_w, _ = xa
    y_ok, y_centre, y_first, y_count, y_w, _ = ya
    nb = src.shape[0]
    height, width = src.shape[1], src.shape[2]
    w = out.shape[2]
    slots = y_w.shape[1] + 1
    sums = np.empty((slots, nb, w))
    weights = np.empty((slots, nb, w))
    held = np.full(slots, -1, dtype=np.int64)
    py = np.empty(1)
    for r in range(out.shape[1]):
        py[0] = sep_y[r]
        _axes(GENERAL, kernel, sy_g, init_y, py, origin_y, height, *ya)
        if not y_ok[0]:
            continue
        oy, ny, wy, cy = y_first[0], y_count[0], y_w[0], y_centre[0]
        for j in range(ny):
            yy = oy + j
            s = yy % slots
            if 0 <= yy < height and held[s] != yy:
                held[s] = yy
                for c in range(w):
                    if not x_ok[c]:
                        continue
                    ox, nx, wx = x_first[c], x_count[c], x_w[c]
                    for b in range(nb):
                        sums[s, b, c], weights[s, b, c], _ = _row_sum(src, b, yy, ox, wx, nx, nodata, has_nodata,
                                                                      width)
        for c in range(w):
            if not x_ok[c]:
                continue
            cx = x_centre[c]
            for b in range(nb):
                if not _is_valid(src[b, cy, cx], nodata, has_nodata):
                    continue
                num = 0.0
                den = 0.0
                for j in range(ny):
                    yy = oy + j
                    if 0 <= yy < height:
                        s = yy % slots
                        num += sums[s, b, c] * wy[j]
                        den += weights[s, b, c] * wy[j]
                if den >= _GENERAL_MIN_WEIGHT:
                    _store(out, b, r, c, num if abs(den - 1.0) <= _UNNORMALISED_BAND else num / den, mapping, cast)


@njit(**_OPTS)
def _buffers(n, k):  # type: ignore[no-untyped-def]
    """Per-point axis buffers for ``n`` points of ``k`` taps (see :func:`_axes`)."""
    return (np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
            np.zeros(n, dtype=np.int64), np.zeros((n, k)), np.zeros(n))


@njit(**_OPTS)
def paint_interp(src, nodata, has_nodata, kind, kernel, kx, ky, sx_g, sy_g, init_x, init_y,  # type: ignore[no-untyped-def]
                 mode, sep_x, sep_y, nodes_x, nodes_y, lat, dense_x, dense_y, origin_x, origin_y,
                 out, mapping, cast):
    """Resample ``src`` (bands, H, W), the source window whose top-left pixel is (origin_y, origin_x) in
    the level grid, onto ``out`` (bands, h, w) and paint the valid values.

    Positions (level grid pixels, see :func:`_position`): ``mode`` SEPARABLE (``sep_x`` (w,), ``sep_y``
    (h,)), LATTICE_NODES (``nodes_x``/``nodes_y`` and ``lat``) or DENSE (``dense_x``/``dense_y`` (h, w)).
    ``kind``: BILINEAR4, CUBIC4 or GENERAL (``kernel``, ``kx``/``ky`` taps from ``init_x``/``init_y``
    along each axis, GDAL scales ``sx_g``/``sy_g``). The taps and weights are computed a row at a time
    (once for all rows along x when the positions are separable)."""
    height, width = src.shape[1], src.shape[2]
    h, w = out.shape[1], out.shape[2]
    tx = max(kx, 4)
    ty = max(ky, 4)
    xa = _buffers(w, tx)
    ya = _buffers(w, ty)
    px = np.empty(w)
    py = np.empty(w)
    rows = np.empty((4, w))
    state = np.full(1, -1, dtype=np.int64)
    sep = mode == SEPARABLE
    if sep:
        _axes(kind, kernel, sx_g, init_x, sep_x, origin_x, width, *xa)
        if kind == GENERAL:
            _separable_general(src, nodata, has_nodata, kernel, sy_g, init_y, sep_y, origin_y, out, xa, ya,
                               mapping, cast)
            return
    for r in range(h):
        if sep:
            py[0] = sep_y[r]
            _axes(kind, kernel, sy_g, init_y, py[:1], origin_y, height, *ya)
        else:
            _row_positions(mode, r, nodes_x, nodes_y, lat, dense_x, dense_y, px, py, rows, state)
            _axes(kind, kernel, sx_g, init_x, px, origin_x, width, *xa)
            _axes(kind, kernel, sy_g, init_y, py, origin_y, height, *ya)
        if kind == BILINEAR4:
            _row_bilinear4(src, nodata, has_nodata, out, r, xa, ya, sep, mapping, cast)
        elif kind == CUBIC4:
            _row_cubic4(src, nodata, has_nodata, out, r, xa, ya, sep, mapping, cast)
        else:
            _row_general(src, nodata, has_nodata, out, r, xa, ya, sep, mapping, cast)


@njit(**_OPTS)
def position_bounds(mode, sep_x, sep_y, nodes_x, nodes_y, lat, dense_x, dense_y, h, w):  # type: ignore[no-untyped-def]
    """(any, floor of the smallest x, of the largest x, of the smallest y, of the largest y) over the
    window's positions (see :func:`_position`) whose coordinates are both finite."""
    found = False
    x0 = y0 = np.inf
    x1 = y1 = -np.inf
    for r in range(h):
        for c in range(w):
            px, py = _position(mode, r, c, sep_x, sep_y, nodes_x, nodes_y, lat, dense_x, dense_y)
            if np.isfinite(px) and np.isfinite(py):
                found = True
                x0 = min(x0, px)
                x1 = max(x1, px)
                y0 = min(y0, py)
                y1 = max(y1, py)
    if not found:
        return False, 0, 0, 0, 0
    return True, int(np.floor(x0)), int(np.floor(x1)), int(np.floor(y0)), int(np.floor(y1))


@njit(**_OPTS)
def near_scan(nodes_x, nodes_y, lat, h, w, band, level_w, level_h):  # type: ignore[no-untyped-def]
    """Over a window's LATTICE_NODES positions, expanded as :func:`paint_near_positions` expands them: the
    flat indices (row-major, ascending) of the points within ``band`` of a source pixel edge along x or y
    (whose coordinates are to be made exact), and (found, first column, last column, first row, last row)
    of the pixels containing the other points that are inside the level (``level_w`` × ``level_h``)."""
    px = np.empty(w)
    py = np.empty(w)
    rows = np.empty((4, w))
    state = np.full(1, -1, dtype=np.int64)
    empty = np.empty((0, 0))
    fix = np.empty(max(16, (h * w) // 64), dtype=np.int64)
    n_fix = 0
    found = False
    x0 = y0 = np.inf
    x1 = y1 = -np.inf
    for r in range(h):
        _row_positions(LATTICE_NODES, r, nodes_x, nodes_y, lat, empty, empty, px, py, rows, state)
        for c in range(w):
            x = px[c]
            y = py[c]
            if abs(x - np.rint(x)) < band or abs(y - np.rint(y)) < band:
                if n_fix == fix.shape[0]:
                    grown = np.empty(2 * n_fix, dtype=np.int64)
                    grown[:n_fix] = fix
                    fix = grown
                fix[n_fix] = r * w + c
                n_fix += 1
                continue
            fx = np.floor(x + _NEAR_EPS)
            fy = np.floor(y + _NEAR_EPS)
            if x >= 0 and fx < level_w and y >= 0 and fy < level_h:
                found = True
                x0 = min(x0, fx)
                x1 = max(x1, fx)
                y0 = min(y0, fy)
                y1 = max(y1, fy)
    return fix[:n_fix].copy(), found, x0, x1, y0, y1


@njit(**_OPTS)
def paint_near_positions(src, mode, sep_x, sep_y, nodes_x, nodes_y, lat, fix_index, fix_x, fix_y,  # type: ignore[no-untyped-def]
                         level_w, level_h, origin_x, origin_y, nodata, has_nodata, out, direct, mapping, cast):
    """Nearest neighbour from positions (SEPARABLE, exact, or LATTICE_NODES, see :func:`paint_interp`), the
    lattice's pixels ``fix_index`` (flat, ascending) taking the exact coordinates ``fix_x``/``fix_y``: the pixel
    containing each point is ``floor(x + 1e-10)``, inside when ``0 <= x`` and that pixel is in the level
    (``level_w`` × ``level_h``); ``src`` is the window from (origin_y, origin_x), C-contiguous. Then as
    :func:`paint_near`."""
    if mode == SEPARABLE:  # exact already: no exceptions
        _near_separable(src, sep_x, sep_y, level_w, level_h, origin_x, origin_y, nodata, has_nodata, out, direct,
                        mapping, cast)
        return
    nb = src.shape[0]
    h, w = out.shape[1], out.shape[2]
    win_w = src.shape[2]
    flat = src.reshape(nb, src.shape[1] * win_w)  # src is contiguous (the caller's contract)
    px = np.empty(w)
    py = np.empty(w)
    rows = np.empty((4, w))
    state = np.full(1, -1, dtype=np.int64)
    empty = np.empty((0, 0))
    index = np.empty(w, dtype=np.int64)  # per pixel of the row: its flat index in the window, -1: outside
    k = 0
    n_fix = fix_index.shape[0]
    for r in range(h):
        _row_positions(mode, r, nodes_x, nodes_y, lat, empty, empty, px, py, rows, state)
        while k < n_fix and fix_index[k] < (r + 1) * w:  # the row's exceptions take their exact coordinates
            px[fix_index[k] - r * w] = fix_x[k]
            py[fix_index[k] - r * w] = fix_y[k]
            k += 1
        for c in range(w):
            x = px[c]
            y = py[c]
            fx = np.floor(x + _NEAR_EPS)
            fy = np.floor(y + _NEAR_EPS)
            if x >= 0 and fx < level_w and y >= 0 and fy < level_h:
                index[c] = (int(fy) - origin_y) * win_w + int(fx) - origin_x
            else:
                index[c] = -1
        # then the row band by band, one plane of the window at a time, as _near_separable does: half the
        # time of a pixel-by-pixel gather across the planes on the bench's cross-CRS windows
        for b in range(nb):
            for c in range(w):
                if index[c] >= 0:
                    _put(out, b, r, c, flat[b, index[c]], nodata, has_nodata, direct, mapping, cast)


@njit(**_OPTS)
def _near_separable(src, sep_x, sep_y, level_w, level_h, origin_x, origin_y, nodata, has_nodata, out, direct,  # type: ignore[no-untyped-def]
                    mapping, cast):
    """:func:`paint_near_positions` on separable positions: the containing column of each output column
    and row of each output row computed once (same rule, same pixels), then each band row by row."""
    nb = src.shape[0]
    h, w = out.shape[1], out.shape[2]
    cols = np.full(w, -1, dtype=np.int64)
    for c in range(w):
        x = sep_x[c]
        fx = np.floor(x + _NEAR_EPS)
        if x >= 0 and fx < level_w:
            cols[c] = int(fx) - origin_x
    for r in range(h):
        y = sep_y[r]
        fy = np.floor(y + _NEAR_EPS)
        if not (y >= 0 and fy < level_h):
            continue
        row = int(fy) - origin_y
        for b in range(nb):
            for c in range(w):
                if cols[c] >= 0:
                    _put(out, b, r, c, src[b, row, cols[c]], nodata, has_nodata, direct, mapping, cast)
