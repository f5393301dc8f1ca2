"""A plain, independent reference of the cube semantics, for tests.

Written for clarity, not speed, and sharing no code with the engine: for each image, for each of its
sources in paint order, read the whole source level with rasterio, put it on the output grid in a
float64 array initialised to NaN, apply the value mapping, cast to the variable dtype, and paint
where valid.

* ``near``: exact source coordinates of each output pixel centre (pyproj, no approximation), the
  pixel containing the point (ties at an edge go right/down, after absorbing 1e-10 of noise; a point
  is in the source when 0 <= x and x + 1e-10 < width, likewise for y).
* other methods: ``rasterio.warp.reproject`` with the kernel scale pinned (XSCALE/YSCALE), which is
  exact when source and output share a CRS and approximate otherwise (GDAL's approximate
  transformer, error ≤ 0.125 px).

Level rule (documented in the engine): with r the output/source pixel ratio at the centre of the
overlap, read the coarsest overview whose decimation factor is ≤ r × 1.01.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import rasterio
import rasterio.warp
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.enums import Resampling
from shapely.geometry import box

GDAL_NAMES = {
    "near": Resampling.nearest, "bilinear": Resampling.bilinear, "cubic": Resampling.cubic,
    "cubicspline": Resampling.cubic_spline, "lanczos": Resampling.lanczos, "average": Resampling.average,
    "mode": Resampling.mode, "max": Resampling.max, "min": Resampling.min, "med": Resampling.med,
    "q1": Resampling.q1, "q3": Resampling.q3,
}


@dataclass
class RefSource:
    path: str
    bands: tuple[int, ...]
    vmin: float  # internal dformat min/max
    vmax: float
    real_min: float
    real_max: float
    exponent: float = 1.0
    nodata: float | None = None  # stored nodata (None: read it from the file)
    subdir: str = ""


@dataclass
class RefGrid:
    crs: str
    transform: Affine
    width: int
    height: int


def pixel_centres(grid: RefGrid) -> tuple[np.ndarray, np.ndarray]:
    cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    t = grid.transform
    return t.c + t.a * cols + t.b * rows, t.f + t.d * cols + t.e * rows


def to_source_pixels(grid: RefGrid, src_crs, src_transform: Affine, x: np.ndarray, y: np.ndarray):
    if rasterio.crs.CRS.from_user_input(src_crs) != rasterio.crs.CRS.from_user_input(grid.crs):
        x, y = Transformer.from_crs(grid.crs, src_crs, always_xy=True).transform(x, y)
    inv = ~src_transform
    return inv.c + inv.a * x + inv.b * y, inv.f + inv.d * x + inv.e * y


def choose_level(path: str, grid: RefGrid) -> tuple[int, float, float]:
    """(overview level or -1, xscale, yscale relative to that level) by the documented rule."""
    with rasterio.open(path) as ds:
        full_t, crs, w, h = ds.transform, ds.crs, ds.width, ds.height
        n_levels = len(ds.overviews(1))
        footprint = box(*ds.bounds)
    sizes = []
    for i in range(n_levels):
        with rasterio.open(path, overview_level=i) as ov:
            sizes.append((ov.width, ov.height))
    # centre of the overlap between the source footprint and the grid
    if rasterio.crs.CRS.from_user_input(crs) != rasterio.crs.CRS.from_user_input(grid.crs):
        tr = Transformer.from_crs(crs, grid.crs, always_xy=True)
        minx, miny, maxx, maxy = footprint.bounds
        dense = footprint.segmentize(max(maxx - minx, maxy - miny) / 20)
        footprint = shapely.transform(dense, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
    t = grid.transform
    if rasterio.crs.CRS.from_user_input(grid.crs).is_geographic:
        # longitudes within 180° of the grid's centre, so that a footprint across the antimeridian stays whole
        centre = t.c + t.a * grid.width / 2
        footprint = shapely.transform(
            footprint, lambda c: np.column_stack([centre + (c[:, 0] - centre + 180) % 360 - 180, c[:, 1]]))
    gbox = box(t.c, t.f + t.e * grid.height, t.c + t.a * grid.width, t.f)
    pt = footprint.intersection(gbox).representative_point()
    col, row = (~t) @ (pt.x, pt.y)

    def scales(transform: Affine) -> tuple[float, float]:
        xs = t.c + t.a * np.array([col, col + 1, col])
        ys = t.f + t.e * np.array([row, row, row + 1])
        sx, sy = to_source_pixels(grid, crs, transform, xs, ys)
        return math.hypot(sx[1] - sx[0], sy[1] - sy[0]), math.hypot(sx[2] - sx[0], sy[2] - sy[0])

    xs, ys = scales(full_t)
    ratio = min(xs, ys)
    level, best = -1, 1.0
    for i, (ow, oh) in enumerate(sizes):
        factor = min(w / ow, h / oh)
        if best < factor <= ratio * 1.01:
            level, best = i, factor
    if level < 0:
        return -1, xs, ys
    ow, oh = sizes[level]
    xs, ys = scales(full_t @ Affine.scale(w / ow, h / oh))
    return level, xs, ys


def source_on_grid(src: RefSource, grid: RefGrid, resampling: str) -> np.ndarray:
    """float64 (bands, H, W): the source's stored values on the output grid, NaN where no data."""
    level, xs, ys = choose_level(src.path, grid)
    kwargs = {} if level < 0 else {"overview_level": level}
    path = f"{src.subdir}:{src.path}" if src.subdir else src.path
    with rasterio.open(path, **kwargs) as ds:
        data = ds.read(list(src.bands)).astype("float64")
        nodata = src.nodata if src.nodata is not None else ds.nodata
        transform, crs = ds.transform, ds.crs
        if nodata is not None and not math.isnan(nodata):
            data[data == nodata] = np.nan
    out = np.full((len(src.bands), grid.height, grid.width), np.nan)
    if resampling == "near":
        x, y = pixel_centres(grid)
        sx, sy = to_source_pixels(grid, crs, transform, x, y)
        with np.errstate(invalid="ignore"):
            ci = np.floor(sx + 1e-10)
            ri = np.floor(sy + 1e-10)
            ok = (sx >= 0) & (ci < data.shape[2]) & (sy >= 0) & (ri < data.shape[1])
        for b in range(data.shape[0]):
            out[b][ok] = data[b][ri[ok].astype(int), ci[ok].astype(int)]
        return out
    for b in range(data.shape[0]):
        rasterio.warp.reproject(
            data[b], out[b], src_transform=transform, src_crs=crs, src_nodata=np.nan,
            dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
            resampling=GDAL_NAMES[resampling], XSCALE=1.0 / xs, YSCALE=1.0 / ys,
        )
    return out


def map_values(v: np.ndarray, src: RefSource) -> np.ndarray:
    t = (v - src.vmin) / (src.vmax - src.vmin)
    t = np.sign(t) * np.abs(t) ** src.exponent
    return src.real_min + (src.real_max - src.real_min) * t


def cast_values(v: np.ndarray, dtype: str) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return v.astype(dt)
    info = np.iinfo(dt)
    r = np.where(v >= 0, np.floor(v + 0.5), np.ceil(v - 0.5))
    return np.clip(r, info.min, info.max).astype(dt)


def reference_image(
    sources: list[RefSource], grid: RefGrid, dtype: str, nodata: float, resampling: str, nbands: int
) -> np.ndarray:
    """One image: the sources painted in order (a later valid value overwrites)."""
    out = np.full((nbands, grid.height, grid.width), nodata, dtype=dtype)
    for src in sources:
        values = source_on_grid(src, grid, resampling)
        valid = ~np.isnan(values)
        with np.errstate(invalid="ignore"):
            mapped = cast_values(np.where(valid, map_values(values, src), 0.0), dtype)
        out[valid] = mapped[valid]
    return out


def gdal_exact_warp(path: str, grid: RefGrid, resampling: str, nodata: float | None) -> np.ndarray:
    """GDAL's own warp of every band of ``path`` onto ``grid``, in float64, with an exact transformer.

    ``rasterio.warp.reproject`` and ``WarpedVRT`` always wrap GDAL's transformer in its approximate one
    (0.125 px error), and ``WarpedVRT(tolerance=0)`` with an explicit grid fails (rasterio 1.4); so the
    warped VRT rasterio writes is edited: the approximate transformer removed, float64 throughout, and
    per-band validity (``UNIFIED_SRC_NODATA=NO``, as a cube reads each band's nodata on its own).
    Pixels no valid source pixel reaches hold ``nodata``.
    """
    import os
    import re
    import tempfile

    import rasterio.shutil
    from rasterio.vrt import WarpedVRT

    with rasterio.open(path) as src, WarpedVRT(
        src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
        resampling=Resampling[resampling], src_nodata=nodata, nodata=nodata,
    ) as vrt:
        fd, tmp = tempfile.mkstemp(suffix=".vrt")
        os.close(fd)
        rasterio.shutil.copy(vrt, tmp, driver="VRT")
    try:
        with open(tmp) as f:
            xml = f.read()
        xml = re.sub(r"<ApproxTransformer>\s*<MaxError>[^<]*</MaxError>\s*<BaseTransformer>(.*?)</BaseTransformer>"
                     r"\s*</ApproxTransformer>", r"\1", xml, flags=re.S)
        xml = re.sub(r'dataType="\w+"', 'dataType="Float64"', xml)
        xml = re.sub(r"<WorkingDataType>\w+</WorkingDataType>", "<WorkingDataType>Float64</WorkingDataType>", xml)
        xml = re.sub(r'<Option name="UNIFIED_SRC_NODATA">\w+</Option>', '<Option name="UNIFIED_SRC_NODATA">NO</Option>',
                     xml)
        xml = re.sub(r'<SourceDataset relativeToVRT="\d">[^<]*</SourceDataset>',
                     f'<SourceDataset relativeToVRT="0">{os.path.abspath(path)}</SourceDataset>', xml)
        if "ApproxTransformer" in xml or "UNIFIED_SRC_NODATA\">NO" not in xml:
            raise RuntimeError("the warped VRT does not have the expected layout")
        with open(tmp, "w") as f:
            f.write(xml)
        with rasterio.open(tmp) as ds:
            return ds.read().astype("float64")
    finally:
        os.unlink(tmp)
