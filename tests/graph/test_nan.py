"""NaN is never data: a float source with a numeric nodata that also holds NaN pixels gives, on every read
path (aligned, nearest across CRSs, kernels, area), exactly what the path that tests validity gives, and
the variable's nodata where no valid value lands. The expected images come from tests/reference.py
(per-source reprojection into float64 NaN, then mapping, paint order and cast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from reference import reference_image
from scenes import make_plan, origin_near, ref_grid, ref_of, source_for

from geocube_dask.entities import DFormat
from geocube_dask.graph.cube import cube_from_plan
from geocube_dask.graph.grid import make_grid
from geocube_dask.synthetic import write_raster

SRC_NODATA = -9999.0


@pytest.fixture(scope="module")
def nan_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """float32 files (nodata -9999) holding NaN pixels as well: one in UTM 31N, one in UTM 32N."""
    root = tmp_path_factory.mktemp("nan")
    out = {}
    for name, crs in (("u31", "EPSG:32631"), ("u32", "EPSG:32632")):
        rng = np.random.default_rng(7)
        data = rng.uniform(100, 9000, size=(2, 60, 70)).astype("float32")
        data[:, 5:15, 5:25] = SRC_NODATA
        data[:, 30:42, 20:50] = np.nan  # a NaN block
        data[0][rng.random((60, 70)) < 0.1] = np.nan  # scattered NaN in the first band
        out[name] = str(write_raster(root / f"{name}.tif", data, crs=crs, transform=origin_near(crs, 10.0, 70, 60),
                                     nodata=SRC_NODATA, overviews=()))
    return out


CASES = [  # (file, output resolution, resampling): aligned, near across CRSs, kernels, area
    ("u31", 10.0, "near"),
    ("u32", 10.0, "near"),
    ("u32", 10.0, "bilinear"),
    ("u31", 20.0, "cubic"),
    ("u31", 20.0, "average"),
]
VARIABLES = [DFormat("float32", -9999.0, 0.0, 10000.0), DFormat("float32", float("nan"), 0.0, 10000.0),
             DFormat("uint16", 65535.0, 0.0, 10000.0), DFormat("int16", -32768.0, 0.0, 10000.0)]


@pytest.mark.parametrize("var", VARIABLES, ids=lambda v: f"{v.dtype}-{v.nodata}")
@pytest.mark.parametrize(("name", "res", "resampling"), CASES)
def test_nan_pixels_are_nodata_on_every_path(nan_files, name: str, res: float, resampling: str,
                                            var: DFormat) -> None:
    path = nan_files[name]
    src = source_for(path, bands=(1, 2), dformat=DFormat("float32", SRC_NODATA, 0.0, 10000.0))
    grid = make_grid("EPSG:32631", res, _bounds(path, res))
    plan = make_plan([[src]], grid, dformat=var, bands=("b1", "b2"), resampling=resampling, chunks=32)
    got = cube_from_plan(plan).compute(scheduler="sync").values[0]
    want = reference_image([ref_of(src)], ref_grid(grid), var.dtype, var.nodata, resampling, 2)
    if var.dtype == "float32":
        assert not np.isnan(got).any() or np.isnan(var.nodata)
    if resampling in ("near",):
        np.testing.assert_array_equal(got, want)
    else:  # kernels: within one unit of the output dtype, and exactly the same valid/nodata pixels
        nodata_got = np.isnan(got) if np.isnan(var.nodata) else got == var.nodata
        nodata_want = np.isnan(want) if np.isnan(var.nodata) else want == var.nodata
        np.testing.assert_array_equal(nodata_got, nodata_want)
        np.testing.assert_allclose(got[~nodata_got].astype(float), want[~nodata_want].astype(float), atol=1.0,
                                   rtol=1e-5)


def _bounds(path: str, res: float) -> tuple[float, float, float, float]:
    """The file's bounds in EPSG:32631, a little inside so that the whole grid is covered."""
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as ds:
        x0, y0, x1, y1 = transform_bounds(ds.crs, "EPSG:32631", *ds.bounds)
    return x0 + 2 * res, y0 + 2 * res, x1 - 2 * res, y1 - 2 * res


def test_the_fixture_holds_nan_and_nodata(nan_files) -> None:
    import rasterio

    with rasterio.open(Path(nan_files["u31"])) as ds:
        data = ds.read()
        assert ds.nodata == SRC_NODATA
    assert np.isnan(data).sum() > 1000 and (data == SRC_NODATA).sum() > 100
