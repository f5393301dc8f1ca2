"""Point and polygon timeseries from plans (no database), against plain reads."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from scenes import CENTRE, make_plan, source_for
from shapely.geometry import Point

from geocube_dask.errors import InvalidArgument
from geocube_dask.graph.cube import cube_from_plan
from geocube_dask.graph.grid import make_grid
from geocube_dask.graph.timeseries import native_grid_for, point_grid, point_series, polygon_series


def pixel_at(path: str, lon: float, lat: float) -> np.ndarray | None:
    """Plain read of the pixel containing (lon, lat), all bands, or None when outside."""
    with rasterio.open(path) as ds:
        x, y = Transformer.from_crs("EPSG:4326", ds.crs, always_xy=True).transform(lon, lat)
        col, row = (~ds.transform) @ (x, y)
        # a point on a pixel edge belongs to the pixel on its right/below (after 1e-10 of noise)
        c, r = int(np.floor(col + 1e-10)), int(np.floor(row + 1e-10))
        if not (0 <= c < ds.width and 0 <= r < ds.height):
            return None
        return ds.read(window=((r, r + 1), (c, c + 1)))[:, 0, 0]


@pytest.mark.parametrize("offset", [(0.0, 0.0), (0.004, -0.003), (-0.006, 0.002)])
def test_point_series_takes_the_pixel_containing_the_point(scenes, offset):
    lon, lat = CENTRE[0] + offset[0], CENTRE[1] + offset[1]
    names = ["utm31", "utm32", "l93", "wgs84", "utm31b"]
    grid = point_grid((lon, lat), "EPSG:4326")
    plan = make_plan([[source_for(scenes[n].path)] for n in names], grid, chunks=1)
    with dask.config.set(scheduler="threads"):
        ts = point_series(cube_from_plan(plan)).compute()
    assert ts.dims == ("time", "band")
    for i, n in enumerate(names):
        want = pixel_at(scenes[n].path, lon, lat)
        want = np.zeros(4, "uint16") if want is None else want
        assert ts.values[i].tolist() == want.tolist(), n


def test_point_grid_is_centred_on_the_point():
    g = point_grid((5.5, 45.25), "EPSG:4326")
    assert g.xs()[0] == pytest.approx(5.5, abs=1e-12) and g.ys()[0] == pytest.approx(45.25, abs=1e-12)
    with pytest.raises(InvalidArgument):
        point_grid((200.0, 45.0), "EPSG:4326")
    with pytest.raises(InvalidArgument):
        point_grid(("a", 1), "EPSG:4326")


def test_polygon_series_reduces_valid_pixels_inside(scenes):
    src = source_for(scenes["utm31"].path)
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32631", always_xy=True).transform(*CENTRE)
    poly = Point(x, y).buffer(600)
    grid = make_grid(**native_grid_for(poly, "EPSG:32631", src.crs, src.transform))
    cube = cube_from_plan(make_plan([[src]], grid))
    with dask.config.set(scheduler="threads"):
        values = cube.values[0]
        mean = polygon_series(cube, poly, "EPSG:32631", "mean").compute()
        per_pixel = polygon_series(cube, poly, "EPSG:32631", None).compute()
        maxi = polygon_series(cube, poly, "EPSG:32631", "max").compute()
    xs, ys = np.meshgrid(cube.x.values, cube.y.values)
    inside = np.array([poly.contains(Point(a, b)) for a, b in zip(xs.ravel(), ys.ravel(), strict=True)])
    inside = inside.reshape(xs.shape)
    for b in range(4):
        v = values[b][inside]
        v = v[v != 0].astype("float64")
        assert mean.values[0, b] == pytest.approx(v.mean())
        assert maxi.values[0, b] == v.max()
    assert per_pixel.dims == ("time", "band", "pixel")
    assert per_pixel.sizes["pixel"] == inside.sum()
    with pytest.raises(InvalidArgument):
        polygon_series(cube, poly, "EPSG:32631", "sum")


def test_native_grid_of_a_rotated_source_is_north_up_at_its_pixel_size():
    from affine import Affine

    rotated = Affine.translation(600000, 5000000) @ Affine.rotation(30) @ Affine.scale(10, -10)
    poly = Point(600300, 4999800).buffer(100)
    grid = make_grid(**native_grid_for(poly, "EPSG:32631", "EPSG:32631", tuple(rotated)[:6]))
    assert grid.transform[1] == 0 and grid.transform[3] == 0
    assert grid.resolution == pytest.approx((10.0, 10.0))
    assert grid.polygon().contains(poly)
