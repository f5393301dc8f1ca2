"""Area methods (average, mode, min, max, med, q1, q3) across CRSs give GDAL's values.

GDAL weighs the source pixels under an output pixel's footprint as it maps the pixel's corners into
the source; a box of the local scale around the centre is only right when the grids are axis-aligned.
The reference is GDAL's own warp with an exact transformer (``reference.gdal_exact_warp``), on a source
rotated by ~2° (UTM 32N into UTM 31N) and on a lon/lat source, both with nodata pixels, downsampled by
about 3 so that every output pixel weighs several source pixels partly.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds
from reference import RefGrid, gdal_exact_warp
from scenes import make_plan, origin_near, source_for

from geocube_dask.entities import DFormat
from geocube_dask.graph.cube import cube_from_plan
from geocube_dask.graph.grid import make_grid
from geocube_dask.synthetic import write_reflectance

METHODS = ["average", "mode", "min", "max", "med", "q1", "q3"]
OUT = DFormat("float64", 0.0, 0.0, 10000.0)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, float]]:
    """name → (path, output resolution): 10 m UTM 32N and ~8×11 m lon/lat, no overviews, with nodata."""
    root = tmp_path_factory.mktemp("area")
    out = {}
    utm = root / "utm32.tif"
    write_reflectance(utm, crs="EPSG:32632", transform=origin_near("EPSG:32632", 10.0, 240, 200), width=240,
                      height=200, bands=2, seed=11, nodata=0, nodata_fraction=0.2, overviews=())
    out["utm32"] = (str(utm), 30.0)
    lonlat = root / "lonlat.tif"
    write_reflectance(lonlat, crs="EPSG:4326", transform=Affine(0.0001, 0, 5.9, 0, -0.0001, 45.1), width=260,
                      height=200, bands=2, seed=12, nodata=0, nodata_fraction=0.2, overviews=())
    out["lonlat"] = (str(lonlat), 25.0)
    return out


def _grid(path: str, res: float):
    """An EPSG:32631 grid inside the source, its origin off the source's pixel edges."""
    with rasterio.open(path) as ds:
        x0, y0, x1, y1 = transform_bounds(ds.crs, "EPSG:32631", *ds.bounds)
    left, top = np.ceil(x0 / res) * res + 2 * res + 3.7, np.floor(y1 / res) * res - 2 * res - 5.3
    width, height = int((x1 - left) // res) - 2, int((top - y0) // res) - 2
    return make_grid("EPSG:32631", transform=Affine(res, 0, left, 0, -res, top), shape=(height, width))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["utm32", "lonlat"])
def test_area_methods_match_gdal_across_crss(sources, name: str, method: str) -> None:
    path, res = sources[name]
    grid = _grid(path, res)
    src = source_for(path, bands=(1, 2), dformat=DFormat("uint16", 0, 0, 10000))
    plan = make_plan([[src]], grid, dformat=OUT, bands=("a", "b"), resampling=method, chunks=29)
    got = cube_from_plan(plan).compute(scheduler="sync").values[0]
    want = gdal_exact_warp(path, RefGrid(grid.crs, Affine(*grid.transform), grid.width, grid.height), method, 0)
    np.testing.assert_array_equal(got == 0, want == 0)  # the same pixels are nodata
    valid = want != 0
    assert valid.mean() > 0.5
    if method == "average":
        np.testing.assert_allclose(got[valid], want[valid], rtol=1e-4)
    else:  # a value picked among the source pixels: the same one
        np.testing.assert_array_equal(got[valid], want[valid])
