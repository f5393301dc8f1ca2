"""The Resampler: precomputed taps for a set of output points, applied to many source arrays."""

from __future__ import annotations

import math

import numpy as np

from .order import _order_stat
from .taps import _finish, _put, _rule, _static_den, _Taps, _wsum, _wsum_masked
from .weights import (
    _AREA,
    _FOUR_SAMPLE_MIN_SCALE,
    _IMODE_DTYPES,
    _UNNORMALISED_BAND,
    RESAMPLINGS,
    _area_axis,
    _bilinear4_axis,
    _cubic4_axis,
    _domain,
    _gdal_scale,
    _general_axis,
    _is_pixel_translation,
    _margin,
    area_bounds,
    area_taps,
    footprint_bounds,
)


class Resampler:
    """Resample source arrays onto output pixels with precomputed source positions (see module doc)."""

    def __init__(self, sx: np.ndarray, sy: np.ndarray, method: str, xscale: float, yscale: float,
                 src_shape: tuple[int, int],
                 footprints: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        """sx, sy: float64 arrays (H, W): the continuous source pixel coordinates of each output pixel
        centre, in the frame of the source array (pixel (row i, col j) covers [j, j+1) x [i, i+1)).
        NaN where the point has no source position (outside the projection's domain).
        xscale, yscale: source pixels per output pixel along x / y (> 1 when the output is coarser),
        fixed for the whole request (the engine computes them once, not per chunk).
        src_shape: (h, w) of the source array that __call__ will receive.
        footprints: for the area methods, (xlo, xhi, ylo, yhi) (H, W): each output pixel's footprint in
        the source array's frame (:func:`~.weights.corner_footprints`, as GDAL maps the pixel's corners);
        without them, a box of the scale around the centre (exact when the grids are axis-aligned).
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
            if footprints is None:
                bx, by = area_bounds(x, self.xscale), area_bounds(y, self.yscale)
            else:
                xlo, xhi, ylo, yhi = (np.where(finite, np.asarray(b, dtype=np.float64).ravel(), 0.0)
                                      for b in footprints)
                bx, by = footprint_bounds(xlo, xhi), footprint_bounds(ylo, yhi)
            self._init_area(bx, by, finite)
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

    def _selection(self, ok: np.ndarray) -> np.ndarray | None:
        """Indices of the output points with a source position, or None when that is every point."""
        sel = np.flatnonzero(ok)
        return None if sel.size == self._n else sel

    def _init_interp(self, x: np.ndarray, y: np.ndarray, finite: np.ndarray) -> None:
        method = self.method
        h, w = self.src_shape
        sxg = _gdal_scale(self.xscale)
        syg = _gdal_scale(self.yscale)
        okx, _ = _domain(x, w)
        oky, _ = _domain(y, h)
        sel = self._selection(finite & okx & oky)
        if sel is not None:
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
                if not (ax.window is not None and ay.window is not None):
                    raise RuntimeError("internal error: expected ax.window is not None and ay.window is not None")
                t.half = (ax.window.sum(axis=0) * ay.window.sum(axis=0)) // 2
        t.x, t.y = np.array(x), np.array(y)  # never views of the caller's arrays
        self._taps.append(t)

    def _init_area(self, bx: tuple[np.ndarray, np.ndarray, np.ndarray], by: tuple[np.ndarray, np.ndarray, np.ndarray],
                   finite: np.ndarray) -> None:
        h, w = self.src_shape
        kx = area_taps(bx[1], bx[2])
        ky = area_taps(by[1], by[2])
        okx, ax = _area_axis(*bx, w, kx)
        oky, ay = _area_axis(*by, h, ky)
        sel = self._selection(finite & okx & oky)
        if sel is not None:
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
        if not (self._near is not None):
            raise RuntimeError("internal error: expected self._near is not None")
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
            if not (t.good is not None):
                raise RuntimeError("internal error: expected t.good is not None")
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
        if not (t.x is not None and t.y is not None):
            raise RuntimeError("internal error: expected t.x is not None and t.y is not None")
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
                if not (t.mx is not None and t.my is not None):
                    raise RuntimeError("internal error: expected t.mx is not None and t.my is not None")
                mx, my = np.take(t.mx, d, axis=1), np.take(t.my, d, axis=1)
            num, den, cnt = _wsum_masked(flat, t.base[d], np.take(t.wx, d, axis=1), np.take(t.wy, d, axis=1), wp,
                                         mx, my)
            v_d, g_d = _rule(t.kind, num, den)
            if lanczos:
                if not (t.half is not None and cnt is not None):
                    raise RuntimeError("internal error: expected t.half is not None and cnt is not None")
                g_d &= cnt >= t.half[d]
        if masked:
            cx = _domain(x, w)[1]
            cy = _domain(y, h)[1]
            centre = ((cy + pad) * wp + cx + pad).astype(np.intp)
            g_d &= ~np.isnan(flat.take(centre, mode="clip"))
        value[d] = v_d
        good[d] = g_d


