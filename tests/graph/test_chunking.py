"""Chunking never changes a value; a process-based distributed cluster computes what threads compute."""

from __future__ import annotations

import dask
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenes import centre_in, make_plan, source_for

from geocube_dask.graph.cube import cube_from_plan
from geocube_dask.graph.grid import make_grid

METHODS = ["near", "bilinear", "cubic", "average", "mode", "q3", "cubicspline", "lanczos", "min", "max", "med", "q1"]


def threaded(cube) -> np.ndarray:
    with dask.config.set(scheduler="threads", num_workers=2):
        return cube.values


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    crs=st.sampled_from(["EPSG:32631", "EPSG:32632", "EPSG:2154", "EPSG:4326"]),
    res_factor=st.floats(0.6, 4.5),
    offset=st.tuples(st.floats(-800, 800), st.floats(-800, 800)),
    chunks=st.tuples(st.integers(7, 90), st.integers(7, 90)),
    method=st.sampled_from(METHODS),
)
def test_chunking_never_changes_a_value(scenes, crs, res_factor, offset, chunks, method):
    degrees = crs == "EPSG:4326"
    res = (0.0001 if degrees else 10.0) * res_factor
    scale = 1e-5 if degrees else 1.0
    x, y = centre_in(crs)
    x += offset[0] * scale
    y += offset[1] * scale
    half = 90 * res
    grid = make_grid(crs, res, (x - half, y - half, x + half, y + half))
    srcs = [source_for(scenes[n].path, dataset_id=i) for i, n in enumerate(["utm31", "utm32", "l93", "wgs84"])]
    plan = make_plan([srcs], grid, resampling=method, chunks=chunks)
    one = threaded(cube_from_plan(plan.with_chunks((grid.height, grid.width))))
    many = threaded(cube_from_plan(plan))
    np.testing.assert_array_equal(many, one)


@pytest.mark.slow
def test_local_cluster_with_processes_equals_threads(scenes):
    from distributed import Client, LocalCluster

    x, y = centre_in("EPSG:32631")
    grid = make_grid("EPSG:32631", 13.0, (x - 1800, y - 1500, x + 1800, y + 1500))
    images = [[source_for(scenes[n].path, dataset_id=i)] for i, n in enumerate(["utm31", "utm32", "l93", "wgs84"])]
    for method in ("near", "bilinear"):
        plan = make_plan(images, grid, resampling=method, chunks=97, gdal_env={"GDAL_CACHEMAX": "64"})
        expected = threaded(cube_from_plan(plan))
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            got = client.compute(cube_from_plan(plan).data).result()
        np.testing.assert_array_equal(got, expected)
        assert (got != 0).any()

