import json
from datetime import UTC, datetime

import pytest
from affine import Affine
from pyproj import Transformer
from shapely.geometry import Point, Polygon, box

from geocube_dask.entities import DFormat
from geocube_dask.errors import InvalidArgument
from geocube_dask.gdal_settings import is_secret_key
from geocube_dask.graph.grid import GridSpec
from geocube_dask.graph.plan import CubePlan, PlanRecord, Source, build_plan
from geocube_dask.projection import crs_string

GRID = GridSpec("EPSG:32631", (20.0, 0.0, 600000.0, 0.0, -20.0, 5000000.0), 100, 100)
FMT = DFormat("uint16", 0.0, 0.0, 10000.0)


def src(x0: float, rid: str, crs: str = "EPSG:32631", ds: int = 1, y0: float = 5000000.0) -> Source:
    return Source(
        uri=f"/data/{rid}_{ds}.tif", subdir="", bands=(1, 2), dformat=FMT, real_min=0.0, real_max=1.0,
        exponent=1.0, crs=crs, transform=(10.0, 0.0, x0, 0.0, -10.0, y0), width=100, height=100,
        overviews=((50, 50), (25, 25)), dataset_id=ds, record_id=rid,
    )


def rec(rid: str, day: int, hour: int = 10) -> PlanRecord:
    return PlanRecord(rid, f"name-{rid}", datetime(2024, 1, day, hour, tzinfo=UTC))


def plan(rows, **kw) -> CubePlan:
    return build_plan(GRID, variable="refl", instances=["master"], bands=["b", "n"], dformat=FMT,
                      resampling="near", rows=rows, **kw)


def test_one_image_per_record_in_time_order_and_far_sources_dropped():
    rows = [
        (rec("b", 2), src(600000, "b")),
        (rec("a", 1), src(600500, "a")),
        (rec("c", 3), src(900000, "c")),  # 300 km away: touches nothing
    ]
    p = plan(rows)
    assert [im.record_ids for im in p.images] == [("a",), ("b",)]
    assert p.images[0].time == datetime(2024, 1, 1, 10, tzinfo=UTC)


def test_group_by_day_mosaics_in_datetime_then_id_order():
    rows = [
        (rec("r2", 1, 11), src(600000, "r2", ds=3)),
        (rec("r1", 1, 10), src(600000, "r1", ds=1)),
        (rec("r1", 1, 10), src(600100, "r1", ds=2)),
        (rec("r3", 2, 9), src(600000, "r3", ds=4)),
    ]
    p = plan(rows, group_by="day")
    assert [im.record_ids for im in p.images] == [("r1", "r2"), ("r3",)]
    assert [s.dataset_id for s in p.images[0].sources] == [1, 2, 3]
    assert p.images[0].time == datetime(2024, 1, 1, 10, tzinfo=UTC)


def test_explicit_groups_and_callable_grouping():
    rows = [(rec(r, d), src(600000, r)) for r, d in (("a", 1), ("b", 2), ("c", 3))]
    p = plan(rows, groups=[["c", "a"], ["b"]])
    assert [im.record_ids for im in p.images] == [("a", "c"), ("b",)]
    p = plan(rows, group_by=lambda r: r.datetime.day >= 2)
    assert [im.record_ids for im in p.images] == [("a",), ("b", "c")]
    with pytest.raises(InvalidArgument):
        plan(rows, group_by="week")
    with pytest.raises(InvalidArgument):
        plan(rows, group_by="day", groups=[["a"]])


def test_json_round_trip_is_exact_and_hides_secrets():
    rows = [(rec("a", 1), src(600000.123456789, "a")), (rec("b", 2), src(600000.1, "b", crs="EPSG:32631"))]
    env = {"GDAL_HTTP_TIMEOUT": "30", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_ACCESS_KEY_ID": "id"}
    p = plan(rows, gdal_env=env, chunks=(256, 512))
    p2 = CubePlan.from_json(p.to_json(include_secrets=True))
    assert p2 == p
    assert p2.token == p.token
    public = CubePlan.from_json(p.to_json())
    assert "AWS_SECRET_ACCESS_KEY" not in public.gdal_env and public.gdal_env["GDAL_HTTP_TIMEOUT"] == "30"
    assert is_secret_key("AWS_ACCESS_KEY_ID")


def test_nan_nodata_round_trips():
    fmt = DFormat("float32", float("nan"), -1.0, 1.0)
    p = build_plan(GRID, variable="ndvi", instances=["m"], bands=["ndvi"], dformat=fmt, resampling="bilinear",
                   rows=[(rec("a", 1), src(600000, "a"))])
    p2 = CubePlan.from_json(p.to_json())
    assert p2.dformat.nodata_is_nan and p2.images == p.images


@pytest.mark.parametrize("text", ["{}", "not json", '{"version": 99}', '{"version": 1, "grid": {}}'])
def test_bad_plan_json(text):
    with pytest.raises(InvalidArgument):
        CubePlan.from_json(text)


def test_token_changes_with_anything_that_changes_pixels_and_not_otherwise():
    from dataclasses import replace

    rows = [(rec("a", 1), src(600000, "a")), (rec("b", 2), src(600100, "b"))]
    p = plan(rows, gdal_env={"B": "2", "A": "1"})
    assert plan(rows, gdal_env={"A": "1", "B": "2"}).token == p.token  # option order does not matter
    image = p.images[1]
    changed_source = replace(image.sources[0], real_max=2.0)
    variants = [
        replace(p, images=(p.images[0], replace(image, sources=(changed_source,)))),
        replace(p, resampling="bilinear"),
        replace(p, chunks=(512, 512)),
        replace(p, gdal_env={"A": "1", "B": "3"}),
        replace(p, on_error="nodata"),
        replace(p, grid=GridSpec("EPSG:32631", (20.0, 0.0, 600020.0, 0.0, -20.0, 5000000.0), 100, 100)),
    ]
    tokens = {p.token} | {v.token for v in variants}
    assert len(tokens) == len(variants) + 1


def test_token_is_the_same_in_another_process():
    import subprocess
    import sys

    rows = [(rec("a", 1), src(600000.5, "a")), (rec("b", 2), src(600100, "b"))]
    p = plan(rows, gdal_env={"GDAL_HTTP_TIMEOUT": "30"})
    code = "import sys; from geocube_dask.graph.plan import CubePlan; print(CubePlan.from_json(sys.stdin.read()).token)"
    out = subprocess.run([sys.executable, "-c", code], input=p.to_json(include_secrets=True), text=True,
                         capture_output=True, check=True, env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert out.stdout.strip() == p.token


def test_source_touches_a_lonlat_grid_past_180_across_the_antimeridian():
    from geocube_dask.graph.plan import source_touches_grid

    grid = GridSpec("EPSG:4326", (0.01, 0.0, 179.4, 0.0, -0.01, 52.4), 120, 70)  # 179.4° .. 180.6°
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32601", always_xy=True).transform(-179.7, 52.2)
    east = Source("/e.tif", "", (1,), FMT, 0, 1, 1, "EPSG:32601", (100.0, 0, x, 0, -100.0, y), 200, 200)
    assert source_touches_grid(east, grid)  # at 180.3° .. 180.6°, i.e. -179.7° .. -179.4°
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32601", always_xy=True).transform(-179.3, 52.2)
    beyond = Source("/b.tif", "", (1,), FMT, 0, 1, 1, "EPSG:32601", (100.0, 0, x, 0, -100.0, y), 200, 200)
    assert not source_touches_grid(beyond, grid)


def test_source_outside_the_grid_projection_is_tested_the_other_way_round():
    from geocube_dask.graph.plan import source_touches_grid

    world = Source("/w.tif", "", (1,), FMT, 0, 1, 1, "EPSG:4326", (1.0, 0, -180.0, 0, -1.0, 90.0), 360, 180)
    ortho = crs_string("+proj=ortho +lat_0=90 +lon_0=0 +datum=WGS84")  # the northern hemisphere only
    assert source_touches_grid(world, GridSpec(ortho, (1000.0, 0, -50000.0, 0, -1000.0, 50000.0), 100, 100))
    south = Source("/s.tif", "", (1,), FMT, 0, 1, 1, "EPSG:4326", (1.0, 0, -180.0, 0, -1.0, -10.0), 360, 80)
    assert not source_touches_grid(south, GridSpec(ortho, (1000.0, 0, -50000.0, 0, -1000.0, 50000.0), 100, 100))


def test_plan_json_with_a_rotated_grid_is_refused():
    text = json.loads(plan([(rec("a", 1), src(600000, "a"))]).to_json())
    text["grid"]["transform"] = [20.0, 5.0, 600000.0, 5.0, -20.0, 5000000.0]
    with pytest.raises(InvalidArgument, match="cannot be rotated"):
        CubePlan.from_json(json.dumps(text))


def test_rotated_source_footprint_is_its_four_corners():
    from geocube_dask.graph.plan import source_touches_grid

    t = Affine.translation(600000, 5000000) @ Affine.rotation(30) @ Affine.scale(10, -10)
    rotated = Source("/r.tif", "", (1,), FMT, 0, 1, 1, "EPSG:32631", tuple(t)[:6], 100, 100)
    corners = [t @ (c, r) for c, r in ((0, 0), (100, 0), (100, 100), (0, 100))]
    assert rotated.footprint.equals(Polygon(corners))
    # a grid round a corner outside the box of the two others (what a bounding box of two corners misses)
    two = box(*Polygon([corners[0], corners[2], corners[0]]).bounds)
    x, y = next(c for c in (corners[1], corners[3]) if not two.buffer(60).contains(Point(c)))
    assert source_touches_grid(rotated, GridSpec("EPSG:32631", (10.0, 0, x - 30, 0, -10.0, y + 30), 6, 6))
