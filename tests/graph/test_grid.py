import math

import pytest
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box

from geocube_dask.errors import InvalidArgument
from geocube_dask.graph.grid import GridSpec, make_grid, snap_bounds
from geocube_dask.projection import transform_polygon


def test_snap_bounds_outwards_to_resolution_multiples():
    aff, w, h = snap_bounds((603001, 4993007, 611999, 4998995), 20)
    assert aff == Affine(20, 0, 603000, 0, -20, 4999000)
    assert (w, h) == (450, 300)


def test_snap_keeps_bounds_already_on_the_grid():
    aff, w, h = snap_bounds((600000, 4990000, 600100, 4990040), (10, 20))
    assert aff == Affine(10, 0, 600000, 0, -20, 4990040)
    assert (w, h) == (10, 2)


def test_grid_from_bounds_contains_the_bounds():
    g = make_grid("EPSG:32631", 30, (500010, 4000015, 500500, 4000300))
    xmin, ymin, xmax, ymax = g.bounds
    assert xmin <= 500010 and ymin <= 4000015 and xmax >= 500500 and ymax >= 4000300
    assert xmin % 30 == 0 and ymax % 30 == 0
    assert g.crs == "EPSG:32631"


def test_grid_from_transform_and_shape_is_kept_as_given():
    g = make_grid("EPSG:2154", transform=Affine(5, 0, 700003.5, 0, -5, 6600001.25), shape=(7, 9))
    assert g.transform == (5, 0, 700003.5, 0, -5, 6600001.25)
    assert (g.height, g.width) == (7, 9)
    assert g.xs()[0] == pytest.approx(700006.0) and g.ys()[0] == pytest.approx(6599998.75)


def test_grid_from_aoi_in_another_crs():
    aoi = box(2.0, 45.0, 2.1, 45.05)
    g = make_grid("EPSG:32631", 100, aoi=aoi)
    poly = transform_polygon(aoi, "EPSG:4326", "EPSG:32631")
    assert g.polygon().contains(poly)
    assert g.polygon().area < poly.buffer(250).area


def test_grid_like_an_existing_cube():
    import numpy as np
    import rioxarray  # noqa: F401
    import xarray as xr

    da = xr.DataArray(np.zeros((3, 4)), dims=("y", "x"), coords={"y": [25.0, 15.0, 5.0], "x": [5.0, 15, 25, 35]})
    da = da.rio.write_crs("EPSG:3857")
    g = make_grid(like=da)
    assert (g.width, g.height) == (4, 3)
    assert g.transform[:3] == (10, 0, 0) and g.transform[3:] == (0, -10, 30)
    with pytest.raises(InvalidArgument, match="leave out crs, resolution"):
        make_grid("EPSG:3857", 10, like=da)
    with pytest.raises(InvalidArgument, match="CRS"):
        make_grid(like=da.drop_vars("spatial_ref"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"crs": "EPSG:999999", "resolution": 10, "bounds": (0, 0, 10, 10)},
        {"crs": "EPSG:32631", "resolution": -10, "bounds": (0, 0, 10, 10)},
        {"crs": "EPSG:32631", "resolution": 0, "bounds": (0, 0, 10, 10)},
        {"crs": "EPSG:32631", "resolution": 10, "bounds": (10, 0, 0, 10)},
        {"crs": "EPSG:32631", "resolution": 10, "bounds": (0, 0, math.inf, 10)},
        {"crs": "EPSG:32631", "resolution": 10},
        {"crs": "EPSG:32631", "transform": Affine(10, 0, 0, 0, -10, 0)},
        {"crs": "EPSG:32631", "transform": Affine(10, 0, 0, 0, -10, 0), "shape": (0, 5)},
        {"crs": None, "resolution": 10, "bounds": (0, 0, 10, 10)},
        {"crs": "EPSG:32631", "resolution": 0.001, "bounds": (0, 0, 1e6, 1e6)},
    ],
)
def test_bad_grid_requests_say_what_to_do(kwargs):
    with pytest.raises(InvalidArgument) as err:
        make_grid(**kwargs)
    assert len(str(err.value)) > 20


def test_gridspec_json_round_trip():
    g = GridSpec("EPSG:32631", (20.0, 0.0, 600000.0, 0.0, -20.0, 5000000.0), 10, 20)
    assert GridSpec.from_json(g.to_json()) == g


def test_grid_from_an_aoi_across_the_antimeridian_stays_there():
    """An AOI in Pacific Mercator across 180°: a lon/lat grid running past 180°, not round the globe."""
    to_3832 = Transformer.from_crs("EPSG:4326", "EPSG:3832", always_xy=True)
    x0, y0 = to_3832.transform(179.5, 52.0)
    x1, y1 = to_3832.transform(-179.5, 52.5)
    g = make_grid("EPSG:4326", 0.01, aoi=box(x0, y0, x1, y1), aoi_crs="EPSG:3832")
    lon0, lat0, lon1, lat1 = g.bounds
    assert lon1 - lon0 == pytest.approx(1.0, abs=0.021) and lat0 <= 52.0 and lat1 >= 52.5
    assert lon0 % 360 == pytest.approx(179.5, abs=0.011)  # 179.5° .. 180.5° or -180.5° .. -179.5°


def test_rotated_output_grids_are_refused():
    """Coordinates are 1-D x/y and outlines boxes: a rotated transform, like= or plan grid says so."""
    import numpy as np
    import rioxarray  # noqa: F401
    import xarray as xr

    rotated = Affine.translation(600000, 5000000) @ Affine.rotation(30) @ Affine.scale(10, -10)
    with pytest.raises(InvalidArgument, match="cannot be rotated.*north-up"):
        make_grid("EPSG:32631", transform=rotated, shape=(10, 10))
    with pytest.raises(InvalidArgument, match="cannot be rotated"):
        make_grid("EPSG:32631", transform=Affine(10, 0.5, 0, 0, -10, 0), shape=(10, 10))  # shear
    da = xr.DataArray(np.zeros((3, 4)), dims=("y", "x")).rio.write_crs("EPSG:32631").rio.write_transform(rotated)
    with pytest.raises(InvalidArgument, match="like= is on a rotated grid"):
        make_grid(like=da)
    with pytest.raises(InvalidArgument, match="cannot be rotated"):
        GridSpec.from_json({"crs": "EPSG:32631", "transform": list(rotated)[:6], "width": 10, "height": 10})
