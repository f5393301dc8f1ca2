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
    The output pixel's footprint is, as in GDAL, the box in source pixel coordinates spanned by the
    output pixel's top-left and bottom-right corners (``footprints=``, :func:`corner_footprints`); when
    the two grids are axis-aligned in one CRS it is ``[x - scale/2, x + scale/2]`` on each axis, the
    default. With ``EPS = 1e-10``:
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

from .resampler import Resampler
from .weights import RESAMPLINGS, corner_footprints, kernel_margin

__all__ = ["RESAMPLINGS", "Resampler", "corner_footprints", "kernel_margin"]
