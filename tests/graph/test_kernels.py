"""The resampling kernels against GDAL (``rasterio.warp.reproject``) where GDAL's transform is exact.

Source and output share a CRS and the output grid is an affine rescale/shift of the source grid, so
the exact source position of every output pixel centre is a linear function computed here; GDAL gets
the same positions (dyadic offsets and resolutions keep its arithmetic exact; the non-dyadic scales
use offsets away from the kernels' decision boundaries) and the same fixed kernel scale through the
``XSCALE``/``YSCALE`` warp options. Masks must agree exactly and values to 1e-9 relative.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.enums import Resampling
from rasterio.warp import reproject

from geocube_dask.graph.kernels import RESAMPLINGS, Resampler, kernel_margin

CRS = "EPSG:32631"
ORIGIN = 1024.0  # source top-left corner at (1024, 1024): small, exact coordinates
NODATA = -9999.0
RTOL = 1e-9
GDAL_NAMES = {
    "near": Resampling.nearest, "bilinear": Resampling.bilinear, "cubic": Resampling.cubic,
    "cubicspline": Resampling.cubic_spline, "lanczos": Resampling.lanczos, "average": Resampling.average,
    "mode": Resampling.mode, "max": Resampling.max, "min": Resampling.min, "med": Resampling.med,
    "q1": Resampling.q1, "q3": Resampling.q3,
}


def gdal(src: np.ndarray, method: str, x0: float, y0: float, xres: float, yres: float, shape: tuple[int, int],
         nodata: float | None, **options: str) -> tuple[np.ndarray, np.ndarray]:
    """GDAL's float64 result and validity on the output grid whose top-left corner is (x0, y0) source
    pixels from the source's, with pixels of (xres, yres) source pixels."""
    dst = np.full((src.shape[0], *shape), np.nan)
    reproject(
        src, dst,
        src_transform=Affine(1, 0, ORIGIN, 0, -1, ORIGIN), src_crs=CRS, src_nodata=nodata,
        dst_transform=Affine(xres, 0, ORIGIN + x0, 0, -yres, ORIGIN - y0), dst_crs=CRS, dst_nodata=np.nan,
        resampling=GDAL_NAMES[method], XSCALE=repr(1.0 / xres), YSCALE=repr(1.0 / yres), **options,
    )
    return dst, ~np.isnan(dst)


def centres(x0: float, y0: float, xres: float, yres: float, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Exact source positions of the output pixel centres."""
    sx = x0 + xres * (np.arange(shape[1]) + 0.5)
    sy = y0 + yres * (np.arange(shape[0]) + 0.5)
    return np.broadcast_to(sx, shape).copy(), np.broadcast_to(sy[:, None], shape).copy()


def ours(src: np.ndarray, valid: np.ndarray | None, method: str, x0: float, y0: float, xres: float,
         yres: float, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    sx, sy = centres(x0, y0, xres, yres, shape)
    return Resampler(sx, sy, method, xres, yres, src.shape[1:])(src, valid)


def assert_agree(mine: tuple[np.ndarray, np.ndarray], theirs: tuple[np.ndarray, np.ndarray],
                 rtol: float = RTOL) -> None:
    values, ok = mine
    ref, ref_ok = theirs
    assert ok.shape == ref_ok.shape
    assert np.array_equal(ok, ref_ok), f"{(ok != ref_ok).sum()} of {ok.size} validity flags differ"
    both = ok & ref_ok
    err = np.abs(values[both] - ref[both]) / np.maximum(np.abs(ref[both]), 1.0)
    assert err.size == 0 or err.max() <= rtol, f"max relative difference {err.max():.3g}"


def blobs(shape: tuple[int, int], seed: int, frac: float = 0.04) -> np.ndarray:
    """Random nodata blobs plus a nodata first column and last row."""
    rng = np.random.default_rng(seed)
    m = rng.random(shape) < frac
    for _ in range(2):
        grown = m.copy()
        grown[1:] |= m[:-1]
        grown[:, 1:] |= m[:, :-1]
        m = grown | (rng.random(shape) < frac / 4)
    m[:, 0] = True
    m[-1, :] = True
    return m


def float_source(shape: tuple[int, int], seed: int, nodata: bool = True) -> np.ndarray:
    src = np.random.default_rng(seed).random((1, *shape)) * 1000.0
    if nodata:
        src[0][blobs(shape, seed)] = NODATA
    return src


def output_shape(src_shape: tuple[int, int], xres: float, yres: float, extra: float = 5.0) -> tuple[int, int]:
    """An output grid reaching beyond the source on every side."""
    return int(math.ceil((src_shape[0] + extra) / yres)), int(math.ceil((src_shape[1] + extra) / xres))


# (xres, yres, x0, y0): source pixels per output pixel and the grid's offset, in source pixels
CASES = [
    pytest.param(0.375, 0.375, -1.25, -0.625, id="up-x2.67"),
    pytest.param(0.625, 0.5, -0.875, 0.1875, id="up-mixed"),
    pytest.param(1.0, 1.0, 0.25, 0.75, id="shift-quarter"),
    pytest.param(1.0, 1.0, -0.5, 0.5, id="shift-half"),
    pytest.param(1.0, 1.0, -1.375, 2.0625, id="shift-odd"),
    pytest.param(1.03125, 1.03125, -0.3125, 0.125, id="down-1.03"),
    pytest.param(1.25, 1.25, -0.875, -0.25, id="down-1.25"),
    pytest.param(1.3, 1.3, -0.74, 0.26, id="down-1.3"),
    pytest.param(2.0, 2.0, 0.0, 0.0, id="down-2-aligned"),
    pytest.param(2.0, 2.0, -1.375, 0.625, id="down-2"),
    pytest.param(3.7, 3.7, -1.81, 0.52, id="down-3.7"),
    pytest.param(3.0, 3.0, -3.0, 0.0, id="down-3-centred"),
    pytest.param(2.0, 0.625, -0.5, 0.3125, id="down-x-up-y"),
]


@pytest.mark.parametrize("method", RESAMPLINGS)
@pytest.mark.parametrize(("xres", "yres", "x0", "y0"), CASES)
def test_float_source_with_nodata(method: str, xres: float, yres: float, x0: float, y0: float) -> None:
    src = float_source((27, 33), seed=int(xres * 1000 + yres * 100))
    shape = output_shape((27, 33), xres, yres)
    assert_agree(ours(src, src != NODATA, method, x0, y0, xres, yres, shape),
                 gdal(src, method, x0, y0, xres, yres, shape, NODATA))


@pytest.mark.parametrize("method", RESAMPLINGS)
@pytest.mark.parametrize(("xres", "yres", "x0", "y0"), [CASES[0], CASES[2], CASES[7], CASES[9]])
def test_float_source_without_nodata(method: str, xres: float, yres: float, x0: float, y0: float) -> None:
    src = float_source((21, 26), seed=7, nodata=False)
    shape = output_shape((21, 26), xres, yres)
    assert_agree(ours(src, None, method, x0, y0, xres, yres, shape),
                 gdal(src, method, x0, y0, xres, yres, shape, None))


def typed_source(dtype: str) -> tuple[np.ndarray, float]:
    """A (1, 24, 30) source of ``dtype`` spanning its range (within ±30000..60000) with nodata blobs, and
    that nodata (the type's minimum, or -1 for floats)."""
    rng = np.random.default_rng(len(dtype))
    kind = np.dtype(dtype)
    if kind.kind in "iu":
        info = np.iinfo(kind)
        src = rng.integers(max(info.min, -30000), min(info.max, 60000), (1, 24, 30), endpoint=True).astype(kind)
        nodata = float(info.min)
    else:
        src = (rng.random((1, 24, 30)) * 100).astype(kind)
        nodata = -1.0
    src[0][blobs((24, 30), 3)] = nodata
    return src, nodata


@pytest.mark.parametrize("method", RESAMPLINGS)
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "uint16", "int32", "uint32", "float32"])
def test_integer_and_float32_sources(method: str, dtype: str) -> None:
    """Every source type, against GDAL warping into float64 (GDAL's working type, no rounding)."""
    src, nodata = typed_source(dtype)
    for xres, yres, x0, y0 in [(1.0, 1.0, 0.25, -0.5), (2.0, 2.0, -0.625, 0.375), (0.625, 0.625, -0.75, 0.25)]:
        shape = output_shape((24, 30), xres, yres)
        assert_agree(ours(src, src != nodata, method, x0, y0, xres, yres, shape),
                     gdal(src, method, x0, y0, xres, yres, shape, nodata))


@pytest.mark.parametrize("method", RESAMPLINGS)
@pytest.mark.parametrize("src_shape", [(1, 1), (1, 6), (5, 1), (2, 2), (3, 3), (4, 5)])
@pytest.mark.parametrize("res", [0.625, 2.0, 3.75])
def test_images_smaller_than_the_kernel(method: str, src_shape: tuple[int, int], res: float) -> None:
    src = float_source(src_shape, seed=sum(src_shape), nodata=False)
    if src.size > 4:
        src[0, 0, 0] = NODATA
    shape = output_shape(src_shape, res, res, extra=4.0)
    assert_agree(ours(src, src != NODATA, method, -1.0, -1.25, res, res, shape),
                 gdal(src, method, -1.0, -1.25, res, res, shape, NODATA))


@pytest.mark.parametrize("seed", range(40))
def test_random_configurations(seed: int) -> None:
    """Random sizes, scales, offsets and nodata, every method."""
    rng = np.random.default_rng(1000 + seed)
    src_shape = (int(rng.integers(1, 30)), int(rng.integers(1, 30)))
    scales = [0.375, 0.625, 1.0, 1.03125, 1.25, 1.5, 2.0, 3.0, 3.75]
    xres = float(rng.choice(scales))
    yres = xres if rng.random() < 0.6 else float(rng.choice(scales))
    x0, y0 = (float(v) for v in rng.integers(-192, 192, 2) / 64)
    src = float_source(src_shape, seed, nodata=bool(rng.random() < 0.7))
    valid = src != NODATA if (src == NODATA).any() else None
    shape = output_shape(src_shape, xres, yres)
    for method in RESAMPLINGS:
        assert_agree(ours(src, valid, method, x0, y0, xres, yres, shape),
                     gdal(src, method, x0, y0, xres, yres, shape, NODATA if valid is not None else None))


# --- specific rules ---------------------------------------------------------------------------------


def test_nearest_edge_rule() -> None:
    """The containing pixel is int(x + 1e-10); x < 0 or x + 1e-10 > width is outside."""
    src = np.arange(4.0)[None, None, :]
    xs = np.array([[0.0, 0.7, 1.0, 2.0 - 5e-11, 2.0 - 2e-10, 4.0 - 2e-10, 4.0 - 5e-11, -1e-12, 4.0]])
    values, ok = Resampler(xs, np.full(xs.shape, 0.5), "near", 1.0, 1.0, (1, 4))(src, None)
    assert ok.tolist() == [[[True] * 6 + [False] * 3]]
    assert values[0, 0, :6].tolist() == [0.0, 0.0, 1.0, 2.0, 1.0, 3.0]


def test_pixel_translation_is_nearest() -> None:
    """Same resolution and a whole-pixel offset (within 1e-6 px): GDAL takes the pixel, whatever the
    method (cubicspline would otherwise smooth)."""
    src = float_source((12, 15), seed=5)
    for x0 in (2.0, 2.0 + 2.0**-21):
        for method in ("cubicspline", "mode", "lanczos"):
            mine = ours(src, src != NODATA, method, x0, -1.0, 1.0, 1.0, (14, 16))
            assert_agree(mine, gdal(src, method, x0, -1.0, 1.0, 1.0, (14, 16), NODATA))
            near = ours(src, src != NODATA, "near", x0, -1.0, 1.0, 1.0, (14, 16))
            assert np.array_equal(mine[1], near[1]) and np.array_equal(mine[0][mine[1]], near[0][near[1]])
    smoothed = ours(src, src != NODATA, "cubicspline", 2.0 + 2.0**-16, -1.0, 1.0, 1.0, (14, 16))
    assert not np.allclose(smoothed[0][smoothed[1]], near[0][near[1] & smoothed[1]])


def test_per_band_masks_are_single_band_warps() -> None:
    """Each band with its own mask gives what GDAL gives warping that band alone."""
    rng = np.random.default_rng(3)
    src = rng.random((3, 18, 22)) * 100
    for b in range(3):
        src[b][rng.random((18, 22)) < 0.2] = NODATA
    for method in RESAMPLINGS:
        values, ok = ours(src, src != NODATA, method, -0.75, 0.25, 1.25, 1.25, (18, 21))
        for b in range(3):
            ref = gdal(src[b:b + 1], method, -0.75, 0.25, 1.25, 1.25, (18, 21), NODATA)
            assert_agree((values[b:b + 1], ok[b:b + 1]), ref)


def test_unified_mask_reproduces_multiband_reproject() -> None:
    """rasterio's multi-band warp treats a pixel as nodata only where every band is; passing the
    any-band mask to every band reproduces it."""
    rng = np.random.default_rng(11)
    src = rng.random((3, 20, 24)) * 1000
    for b in range(3):
        src[b][rng.random((20, 24)) < 0.25] = NODATA
    src[:, 4:9, 5:10] = NODATA
    unified = np.broadcast_to((src != NODATA).any(axis=0), src.shape)
    for method in RESAMPLINGS:
        for xres, x0 in ((1.0, 0.25), (2.0, 0.5), (0.625, -0.375)):
            shape = output_shape((20, 24), xres, xres)
            assert_agree(ours(src, unified, method, x0, x0 / 2, xres, xres, shape),
                         gdal(src, method, x0, x0 / 2, xres, xres, shape, NODATA))


def test_lanczos_downsampling_on_pixel_centres() -> None:
    """GDAL's Lanczos weights when downsampling are π⁴ too large except at an exactly-zero argument,
    and unstable next to it: output centres on source pixel centres (×3, aligned) show both."""
    src = float_source((40, 40), seed=9)
    for x0, y0 in ((0.0, 0.0), (-3.0, 3.0), (1.5, -1.5)):
        shape = output_shape((40, 40), 3.0, 3.0)
        assert_agree(ours(src, src != NODATA, "lanczos", x0, y0, 3.0, 3.0, shape),
                     gdal(src, "lanczos", x0, y0, 3.0, 3.0, shape, NODATA))
        assert_agree(ours(src, None, "lanczos", x0, y0, 2.5, 2.5, shape),
                     gdal(src, "lanczos", x0, y0, 2.5, 2.5, shape, None))


def test_mode_ties_and_quantiles_of_even_counts() -> None:
    """2×2 footprints: mode keeps the value that first reaches the top count (row-major scan);
    med/q1/q3 of four values take the sorted values at ceil(q·4 − 1) = 1, 0, 2."""
    src = np.array([[[5.0, 7.0, 1.0, 2.0], [7.0, 5.0, 4.0, 3.0]]])
    expected = {"mode": [7.0, 1.0], "med": [5.0, 2.0], "q1": [5.0, 1.0], "q3": [7.0, 3.0],
                "min": [5.0, 1.0], "max": [7.0, 4.0], "average": [6.0, 2.5]}
    for method, want in expected.items():
        values, ok = ours(src, None, method, 0.0, 0.0, 2.0, 2.0, (1, 2))
        assert ok.all() and values[0, 0].tolist() == want, method
        assert_agree((values, ok), gdal(src, method, 0.0, 0.0, 2.0, 2.0, (1, 2), None))


def test_mode_of_float_types_is_float32() -> None:
    """GDAL compares and returns float32 for every type but uint8/uint16/int16."""
    src = np.array([[[0.1, 0.1 + 1e-12, 0.3, 0.4]]])
    values, ok = ours(src, None, "mode", 0.0, 0.0, 4.0, 1.0, (1, 1))
    assert ok.all() and values[0, 0, 0] == float(np.float32(0.1))
    assert_agree((values, ok), gdal(src, "mode", 0.0, 0.0, 4.0, 1.0, (1, 1), None))
    ints = np.array([[[40000, 40000, 7, 7]]], dtype=np.uint16)
    assert ours(ints, None, "mode", 0.0, 0.0, 4.0, 1.0, (1, 1))[0][0, 0, 0] == 40000.0


def test_average_weights_partial_pixels() -> None:
    """Footprint [0.5, 2.5] × [0, 1]: pixels 0 and 2 weigh ½, pixel 1 weighs 1."""
    src = np.array([[[0.0, 10.0, 100.0, 1000.0]]])
    values, ok = ours(src, None, "average", 0.5, 0.0, 2.0, 1.0, (1, 1))
    assert ok.all() and values[0, 0, 0] == pytest.approx((0.5 * 0 + 10 + 0.5 * 100) / 2)


def test_invalid_coordinates_and_outside_points() -> None:
    src = float_source((8, 8), seed=1, nodata=False)
    sx = np.array([[np.nan, 3.5, -0.5, 8.5, 3.5]])
    sy = np.array([[3.5, np.inf, 3.5, 3.5, 3.5]])
    for method in RESAMPLINGS:
        _, ok = Resampler(sx, sy, method, 1.5, 1.5, (8, 8))(src, None)
        assert ok[0, 0].tolist()[:2] == [False, False] and ok[0, 0, 4], method
        if method not in ("average", "mode", "max", "min", "med", "q1", "q3"):
            assert not ok[0, 0, 2] and not ok[0, 0, 3], method


def test_bad_arguments() -> None:
    sx = np.zeros((2, 2))
    with pytest.raises(ValueError, match="unknown resampling"):
        Resampler(sx, sx, "gauss", 1.0, 1.0, (2, 2))
    with pytest.raises(ValueError, match="unknown resampling"):
        kernel_margin("sum", 1.0, 1.0)
    with pytest.raises(ValueError, match="one shape"):
        Resampler(sx, np.zeros((2, 3)), "near", 1.0, 1.0, (2, 2))
    with pytest.raises(ValueError, match="positive"):
        Resampler(sx, sx, "near", 0.0, 1.0, (2, 2))
    r = Resampler(sx, sx, "bilinear", 1.0, 1.0, (2, 2))
    with pytest.raises(ValueError, match="source must be"):
        r(np.zeros((1, 3, 2)), None)
    with pytest.raises(ValueError, match="valid must"):
        r(np.zeros((1, 2, 2)), np.ones((1, 2, 3), bool))


def test_output_types_and_reuse() -> None:
    """float64 values and bool validity; one Resampler serves many sources and dtypes."""
    sx, sy = centres(-0.5, 0.25, 1.25, 1.25, (6, 7))
    r = Resampler(sx, sy, "cubic", 1.25, 1.25, (8, 9))
    for dtype in ("uint8", "int16", "float32"):
        src = np.arange(2 * 8 * 9).reshape(2, 8, 9).astype(dtype)
        values, ok = r(src, None)
        assert values.dtype == np.float64 and ok.dtype == np.bool_ and values.shape == (2, 6, 7)
        again, ok2 = r(src.astype("float64"), np.ones(src.shape, bool))
        assert np.array_equal(ok, ok2) and np.array_equal(values[ok], again[ok2])
    assert r.nbytes > 0


# --- chunking never changes a value ------------------------------------------------------------------


def _window(sx: np.ndarray, sy: np.ndarray, method: str, xscale: float, yscale: float,
            shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The source window the engine reads for these points: their pixels plus kernel_margin."""
    mx, my = kernel_margin(method, xscale, yscale)
    finite = np.isfinite(sx) & np.isfinite(sy)
    if not finite.any():
        return None
    fx, fy = np.floor(sx[finite]), np.floor(sy[finite])
    c0, c1 = max(0, int(fx.min()) - mx), min(shape[1], int(fx.max()) + mx + 1)
    r0, r1 = max(0, int(fy.min()) - my), min(shape[0], int(fy.max()) + my + 1)
    if c1 <= c0 or r1 <= r0:
        return None
    return r0, r1, c0, c1


@st.composite
def chunked_problems(draw: st.DrawFn) -> dict:
    method = draw(st.sampled_from(RESAMPLINGS))
    xscale = draw(st.sampled_from([0.5, 0.8, 1.0, 1.3, 2.0, 2.7]))
    yscale = draw(st.sampled_from([xscale, 0.9, 1.0, 1.6, 3.2]))
    h, w = draw(st.integers(3, 40)), draw(st.integers(3, 40))
    out_h, out_w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    rows = sorted(set(draw(st.lists(st.integers(1, max(1, out_h - 1)), max_size=4))) - {out_h})
    cols = sorted(set(draw(st.lists(st.integers(1, max(1, out_w - 1)), max_size=4))) - {out_w})
    seed = draw(st.integers(0, 2**16))
    return dict(method=method, xscale=xscale, yscale=yscale, src_shape=(h, w), out_shape=(out_h, out_w),
                rows=rows, cols=cols, seed=seed, masked=draw(st.booleans()), warp=draw(st.booleans()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunked_problems())
def test_chunking_never_changes_a_value(p: dict) -> None:
    """Split the output grid into arbitrary chunks, each with its own Resampler over its own
    coordinates and its own source window read with kernel_margin: the values are bit-identical."""
    rng = np.random.default_rng(p["seed"])
    h, w = p["src_shape"]
    out_h, out_w = p["out_shape"]
    src = rng.random((2, h, w)) * 500
    valid = rng.random((2, h, w)) > 0.15 if p["masked"] else None
    jj, ii = np.meshgrid(np.arange(out_w) + 0.5, np.arange(out_h) + 0.5)
    x0, y0 = rng.uniform(-3, 3, 2)
    sx = x0 + p["xscale"] * jj
    sy = y0 + p["yscale"] * ii
    if p["warp"]:  # a rotated, slightly curved grid with a hole: not a translation, not separable
        sx = sx + 0.11 * ii + 0.004 * jj * ii
        sy = sy - 0.07 * jj + 0.003 * jj * jj
        sx[rng.random(sx.shape) < 0.05] = np.nan
    method, xs, ys = p["method"], p["xscale"], p["yscale"]
    whole = Resampler(sx, sy, method, xs, ys, (h, w))(src, valid)
    r_edges = [0, *p["rows"], out_h]
    c_edges = [0, *p["cols"], out_w]
    for ra, rb in zip(r_edges[:-1], r_edges[1:], strict=True):
        for ca, cb in zip(c_edges[:-1], c_edges[1:], strict=True):
            csx, csy = sx[ra:rb, ca:cb], sy[ra:rb, ca:cb]
            win = _window(csx, csy, method, xs, ys, (h, w))
            want_v, want_ok = whole[0][:, ra:rb, ca:cb], whole[1][:, ra:rb, ca:cb]
            if win is None:
                assert not want_ok.any()
                continue
            r0, r1, c0, c1 = win
            sub_valid = None if valid is None else valid[:, r0:r1, c0:c1]
            got_v, got_ok = Resampler(csx - c0, csy - r0, method, xs, ys, (r1 - r0, c1 - c0))(
                src[:, r0:r1, c0:c1], sub_valid)
            assert np.array_equal(got_ok, want_ok)
            assert np.array_equal(got_v[got_ok], want_v[want_ok])


def test_gdal_options_reach_the_warper() -> None:
    """XSCALE/YSCALE passed through reproject's keyword arguments change GDAL's kernel scale."""
    src = float_source((30, 30), seed=2, nodata=False)
    pinned = gdal(src, "bilinear", 0.0, 0.0, 2.0, 2.0, (15, 15), None)[0]
    dst = np.full((1, 15, 15), np.nan)
    with rasterio.Env():
        reproject(src, dst, src_transform=Affine(1, 0, ORIGIN, 0, -1, ORIGIN), src_crs=CRS,
                  dst_transform=Affine(2, 0, ORIGIN, 0, -2, ORIGIN), dst_crs=CRS, dst_nodata=np.nan,
                  resampling=Resampling.bilinear, XSCALE="1", YSCALE="1")
    assert not np.allclose(pinned, dst, equal_nan=True)
