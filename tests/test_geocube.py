"""Cubes, plans and timeseries through the catalogue, on SQLite and PostGIS, against the plain reference."""

from __future__ import annotations

import os
import uuid

import dask
import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from reference import RefGrid, RefSource, reference_image
from scenes import CENTRE, centre_in
from shapely.geometry import Point, box

import geocube_dask as gd
from geocube_dask.catalog.ingest.requests import NewRecord
from geocube_dask.entities import DatasetStatus
from geocube_dask.errors import InvalidArgument
from geocube_dask.graph.plan import CubePlan
from geocube_dask.synthetic import write_raster

BANDS = ["B2", "B3", "B4", "B8"]
# scene name → (record datetime, constellation tag); utm31 and utm31b fall on the same day
DATES = {
    "utm31": ("2024-03-01T10:00:00Z", "s2"),
    "utm31b": ("2024-03-01T10:05:00Z", "s2"),
    "utm32": ("2024-03-02T10:00:00Z", "s2"),
    "l93": ("2024-03-03T11:00:00Z", "spot"),
    "wgs84": ("2024-03-04T09:00:00Z", "landsat"),
}


def compute(obj):
    with dask.config.set(scheduler="threads", num_workers=2):
        return obj.compute()


@pytest.fixture
def indexed(gc, scenes):
    """The five 4-band scenes indexed as one record each (instance 'master' of 'reflectance')."""
    var = gc.create_variable("reflectance", dformat=("uint16", 0, 0, 10000), bands=BANDS, resampling="near")
    inst = gc.instantiate(var, "master")
    for name, (when, constellation) in DATES.items():
        gc.index_dataset(scenes[name].path, record=NewRecord(name, when, {"constellation": constellation}),
                         instance=inst)
    return gc, inst


def ref(scenes, names: list[str]) -> list[RefSource]:
    return [RefSource(scenes[n].path, (1, 2, 3, 4), 0.0, 10000.0, 0.0, 10000.0) for n in names]


def grid_of(cube) -> RefGrid:
    return RefGrid(cube.rio.crs.to_string(), cube.rio.transform(), cube.sizes["x"], cube.sizes["y"])


def test_cube_by_tags_and_time_matches_reference(indexed, scenes):
    gc, inst = indexed
    x, y = centre_in("EPSG:32631")
    cube = gc.get_cube(inst, tags={"constellation": "s2"}, time=("2024-03-01", "2024-03-03"),
                       crs="EPSG:32631", resolution=20, bounds=(x - 1500, y - 1500, x + 1500, y + 1500), chunks=64)
    assert list(cube.record_names.values) == ["utm31", "utm31b", "utm32"]
    values = compute(cube).values
    grid = grid_of(cube)
    for i, name in enumerate(["utm31", "utm31b", "utm32"]):
        want = reference_image(ref(scenes, [name]), grid, "uint16", 0, "near", 4)
        assert np.array_equal(values[i], want)


def test_group_by_day_paints_later_records_over_earlier(indexed, scenes):
    gc, inst = indexed
    x, y = centre_in("EPSG:32631")
    bounds = (x - 1500, y - 1500, x + 1500, y + 1500)
    cube = gc.get_cube(inst, tags={"constellation": "s2"}, crs="EPSG:32631", resolution=10, bounds=bounds,
                       group_by="day")
    assert cube.sizes["time"] == 2
    assert cube.record_names.values[0] == "utm31,utm31b"
    want = reference_image(ref(scenes, ["utm31", "utm31b"]), grid_of(cube), "uint16", 0, "near", 4)
    assert np.array_equal(compute(cube).values[0], want)


def test_explicit_groups_and_records(indexed, scenes):
    gc, inst = indexed
    recs = {r.name: r for r in gc.list_records()}
    x, y = centre_in("EPSG:32632")
    kw = {"crs": "EPSG:32632", "resolution": 30, "bounds": (x - 2000, y - 2000, x + 2000, y + 2000)}
    cube = gc.get_cube(inst, groups=[[recs["l93"], recs["utm32"]], [recs["wgs84"].id]], **kw)
    assert list(cube.record_names.values) == ["utm32,l93", "wgs84"]
    want = reference_image(ref(scenes, ["utm32", "l93"]), grid_of(cube), "uint16", 0, "near", 4)
    assert np.array_equal(compute(cube).values[0], want)
    only = gc.get_cube(inst, records=[recs["wgs84"]], **kw)
    assert np.array_equal(compute(only).values[0], compute(cube).values[1])


def test_aoi_in_any_crs_and_output_in_lonlat(indexed, scenes):
    gc, inst = indexed
    x, y = centre_in("EPSG:2154")
    aoi = box(x - 1000, y - 800, x + 1000, y + 800)
    cube = gc.get_cube(inst, aoi=aoi, aoi_crs="EPSG:2154", crs="EPSG:4326", resolution=0.0002)
    lon0, lat0, lon1, lat1 = cube.rio.bounds()
    corners = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True).transform(
        [x - 1000, x + 1000], [y - 800, y + 800])
    assert lon0 <= min(corners[0]) and lon1 >= max(corners[0]) and lat0 <= min(corners[1])
    assert lon0 % 0.0002 == pytest.approx(0, abs=1e-9) or lon0 % 0.0002 == pytest.approx(0.0002, abs=1e-9)
    values = compute(cube).values
    for i, name in enumerate(cube.record_names.values):
        assert np.array_equal(values[i], reference_image(ref(scenes, [name]), grid_of(cube), "uint16", 0, "near", 4))


def test_nothing_intersects_gives_an_empty_cube(indexed):
    gc, inst = indexed
    cube = gc.get_cube(inst, crs="EPSG:32631", resolution=10, bounds=(300000, 4000000, 301000, 4001000))
    assert cube.sizes["time"] == 0 and compute(cube).shape == (0, 4, 100, 100)


def test_inactive_datasets_are_not_read(indexed):
    gc, inst = indexed
    x, y = centre_in("EPSG:32631")
    kw = {"crs": "EPSG:32631", "resolution": 40, "bounds": (x - 900, y - 900, x + 900, y + 900)}
    before = gc.get_cube(inst, **kw)
    rec = next(r for r in gc.list_records() if r.name == "utm32")
    ds = gc.list_datasets(records=[rec])
    gc.set_datasets_status([d.id for d in ds], DatasetStatus.INACTIVE)
    after = gc.get_cube(inst, **kw)
    assert "utm32" in before.record_names.values and "utm32" not in after.record_names.values


def test_instances_of_different_variables_are_refused(indexed):
    gc, inst = indexed
    other = gc.instantiate(gc.create_variable("ndvi", dformat=("float32", "nan", -1, 1), bands=["ndvi"]), "v1")
    with pytest.raises(InvalidArgument, match="same variable"):
        gc.get_cube([inst, other], crs="EPSG:32631", resolution=10, bounds=(0, 0, 10, 10))


def test_several_instances_of_one_variable(gc, scenes):
    var = gc.create_variable("refl", dformat=("uint16", 0, 0, 10000), bands=BANDS)
    a, b = gc.instantiate(var, "a"), gc.instantiate(var, "b")
    gc.index_dataset(scenes["utm31"].path, record=NewRecord("r1", "2024-01-01"), instance=a)
    gc.index_dataset(scenes["utm32"].path, record=NewRecord("r2", "2024-01-02"), instance=b)
    x, y = centre_in("EPSG:32631")
    cube = gc.get_cube([a, b], crs="EPSG:32631", resolution=50, bounds=(x - 900, y - 900, x + 900, y + 900))
    assert list(cube.record_names.values) == ["r1", "r2"]
    assert cube.attrs["instance"] == "a,b"


def test_dataset_mapping_and_exponent_from_the_catalogue(gc, scenes):
    var = gc.create_variable("ndvi", dformat=("int16", -32768, -1000, 1000), bands=["ndvi"])
    inst = gc.instantiate(var, "m")
    gc.index_dataset(scenes["ndvi"].path, record=NewRecord("n", "2024-01-01"), instance=inst,
                     dformat=("int16", -10001, -10000, 10000), real_min=-1000, real_max=1000, exponent=0.5)
    x, y = centre_in("EPSG:32631")
    cube = gc.get_cube(inst, crs="EPSG:32631", resolution=10, bounds=(x - 1000, y - 1000, x + 1000, y + 1000))
    src = RefSource(scenes["ndvi"].path, (1,), -10000, 10000, -1000, 1000, 0.5, -10001)
    want = reference_image([src], grid_of(cube), "int16", -32768, "near", 1)
    got = compute(cube).values[0]
    assert np.array_equal(got, want) and (got == -32768).any() and (got > 0).any()


def test_plan_json_round_trip_builds_the_same_cube_without_a_database(indexed, tmp_path):
    gc, inst = indexed
    x, y = centre_in("EPSG:32631")
    kw = {"crs": "EPSG:32631", "resolution": 25, "bounds": (x - 1500, y - 1500, x + 1500, y + 1500),
          "resampling": "bilinear", "chunks": 50}
    plan = gc.get_cube_plan(inst, **kw)
    direct = compute(gc.get_cube(inst, **kw))
    text = plan.to_json()
    gc.close()
    rebuilt = CubePlan.from_json(text)
    assert rebuilt.images == plan.images and rebuilt.grid == plan.grid
    cube = gd.cube_from_plan(rebuilt)
    assert np.array_equal(compute(cube).values, direct.values)
    assert list(cube.record_ids.values) == list(direct.record_ids.values)


def pixel_at(path: str, lon: float, lat: float) -> list[int]:
    with rasterio.open(path) as ds:
        x, y = Transformer.from_crs("EPSG:4326", ds.crs, always_xy=True).transform(lon, lat)
        col, row = (~ds.transform) @ (x, y)
        c, r = int(np.floor(col + 1e-10)), int(np.floor(row + 1e-10))
        return ds.read(window=((r, r + 1), (c, c + 1)))[:, 0, 0].tolist()


def test_point_timeseries(indexed, scenes):
    gc, inst = indexed
    lon, lat = CENTRE[0] + 0.0031, CENTRE[1] - 0.0017
    ts = gc.get_timeseries(inst, point=(lon, lat))
    assert ts.dims == ("time", "band")
    values = compute(ts).values
    assert list(ts.record_names.values) == list(DATES)
    for i, name in enumerate(DATES):
        assert values[i].tolist() == pixel_at(scenes[name].path, lon, lat), name
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32632", always_xy=True).transform(lon, lat)
    in_utm = compute(gc.get_timeseries(inst, point=(x, y), crs="EPSG:32632", time=("2024-03-02", "2024-03-03")))
    assert in_utm.values.tolist() == [values[2].tolist()]


def test_timeseries_keep_their_files_open_for_the_next_points(indexed, monkeypatch):
    """A point's cube is one chunk per image: as a cube's, it would close every file it read, and the next
    point over the same files would open them again."""
    from geocube_dask.graph import cube as cube_module

    closed: list[str] = []
    monkeypatch.setattr(cube_module, "forget_source", closed.append)
    gc, inst = indexed
    for dx in (0.0, 0.001, 0.002):
        ts = compute(gc.get_timeseries(inst, point=(CENTRE[0] + dx, CENTRE[1])))
        assert ts.sizes["time"] >= 2
    x, y = centre_in("EPSG:32631")
    compute(gc.get_timeseries(inst, geometry=Point(x, y).buffer(300), crs="EPSG:32631"))
    assert closed == []


def test_polygon_timeseries(indexed, scenes):
    gc, inst = indexed
    x, y = centre_in("EPSG:32631")
    poly = Point(x, y).buffer(400)
    mean = compute(gc.get_timeseries(inst, geometry=poly, crs="EPSG:32631", tags={"constellation": "s2"}))
    assert mean.dims == ("time", "band") and mean.sizes["time"] == 3
    per_pixel = compute(gc.get_timeseries(inst, geometry=poly, crs="EPSG:32631", reduce=None,
                                          tags={"constellation": "s2"}))
    # the native grid of the first source (utm31, 10 m): every pixel centre inside the circle
    assert per_pixel.sizes["pixel"] == pytest.approx(np.pi * 40**2, rel=0.02)
    v = per_pixel.values[0].astype("float64")
    v[v == 0] = np.nan
    np.testing.assert_allclose(mean.values[0], np.nanmean(v, axis=1))
    with pytest.raises(InvalidArgument):
        gc.get_timeseries(inst, point=(1, 2), geometry=poly)


def test_cube_over_http_and_s3(gc, scenes, http_server, s3_server, s3_env):
    var = gc.create_variable("reflectance", dformat=("uint16", 0, 0, 10000), bands=BANDS)
    inst = gc.instantiate(var, "remote")
    folder = uuid.uuid4().hex
    url = http_server.put(scenes["utm31"].path, f"{folder}/utm31.tif")
    bucket = f"b-{folder[:12]}"
    s3_server.create_bucket(bucket)
    s3 = s3_server.upload(scenes["utm32"].path, bucket, "scenes/utm32.tif")
    gc.index_dataset(url, record=NewRecord("over-http", "2024-01-01"), instance=inst)
    gc.index_dataset(s3, record=NewRecord("over-s3", "2024-01-02"), instance=inst)
    x, y = centre_in("EPSG:32631")
    cube = gc.get_cube(inst, crs="EPSG:32631", resolution=20, bounds=(x - 1500, y - 1500, x + 1500, y + 1500))
    values = compute(cube).values
    grid = grid_of(cube)
    assert np.array_equal(values[0], reference_image(ref(scenes, ["utm31"]), grid, "uint16", 0, "near", 4))
    assert np.array_equal(values[1], reference_image(ref(scenes, ["utm32"]), grid, "uint16", 0, "near", 4))


@pytest.mark.slow
def test_gdal_settings_travel_to_process_workers(gc, scenes, http_server):
    """A header only the plan knows (given with gdal_env=) reaches worker processes."""
    from distributed import Client, LocalCluster
    from servers import PRIVATE_HEADER, PRIVATE_TOKEN

    var = gc.create_variable("reflectance", dformat=("uint16", 0, 0, 10000), bands=BANDS)
    inst = gc.instantiate(var, "private")
    url = http_server.put(scenes["utm31"].path, f"private/{uuid.uuid4().hex}/utm31.tif")
    header = f"{PRIVATE_HEADER}: {PRIVATE_TOKEN}"
    x, y = centre_in("EPSG:32631")
    kw = {"crs": "EPSG:32631", "resolution": 20, "bounds": (x - 1500, y - 1500, x + 1500, y + 1500)}
    with rasterio.Env(GDAL_HTTP_HEADERS=header):
        gc.index_dataset(url, record=NewRecord("private", "2024-01-01"), instance=inst)
    cube = gc.get_cube(inst, **kw, gdal_env={"GDAL_HTTP_HEADERS": header})  # a credential: given explicitly
    assert cube.sizes["time"] == 1
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        got = client.compute(cube.data).result()
    want = reference_image(ref(scenes, ["utm31"]), grid_of(cube), "uint16", 0, "near", 4)
    assert np.array_equal(got[0], want)
    # without the setting the same plan cannot be read: the header is what made it work
    plan = gc.get_cube_plan(inst, **kw)
    assert "GDAL_HTTP_HEADERS" not in plan.gdal_env
    with pytest.raises(gd.SourceReadError, match="private"):
        compute(gd.cube_from_plan(plan))


def test_no_credential_travels_in_a_graph_unless_given(gc, scenes, s3_server, monkeypatch):
    """With secrets and a profile in the client's environment, none of their values is in the pickled
    graph; credentials given with gdal_env= travel, and read from S3 with nothing in the environment."""
    import cloudpickle

    var = gc.create_variable("reflectance", dformat=("uint16", 0, 0, 10000), bands=BANDS)
    inst = gc.instantiate(var, "s3")
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    s3 = s3_server.upload(scenes["utm32"].path, bucket, "scenes/utm32.tif")
    settings = s3_server.gdal_env()
    with s3_server.env():
        gc.index_dataset(s3, record=NewRecord("over-s3", "2024-01-02"), instance=inst)
    assert "AWS_SECRET_ACCESS_KEY" not in os.environ
    x, y = centre_in("EPSG:32631")
    kw = {"crs": "EPSG:32631", "resolution": 20, "bounds": (x - 1500, y - 1500, x + 1500, y + 1500)}
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "client-secret-never-shipped")
    monkeypatch.setenv("AWS_PROFILE", "client-profile-never-shipped")
    cube = gc.get_cube(inst, **kw)
    pickled = cloudpickle.dumps(dict(cube.__dask_graph__()))
    assert b"client-secret-never-shipped" not in pickled and b"client-profile-never-shipped" not in pickled
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_PROFILE")
    given = gc.get_cube(inst, **kw, gdal_env=settings)
    assert settings["AWS_SECRET_ACCESS_KEY"].encode() in cloudpickle.dumps(dict(given.__dask_graph__()))
    assert "AWS_SECRET_ACCESS_KEY" not in gc.get_cube_plan(inst, **kw, gdal_env=settings).to_json()
    want = reference_image(ref(scenes, ["utm32"]), grid_of(given), "uint16", 0, "near", 4)
    assert np.array_equal(compute(given).values[0], want)


def test_affine_transform_and_shape_request(indexed):
    gc, inst = indexed
    x, y = centre_in("EPSG:32631")
    t = Affine(12.5, 0, x - 600, 0, -12.5, y + 600)
    cube = gc.get_cube(inst, crs="EPSG:32631", transform=t, shape=(96, 80))
    assert cube.shape[1:] == (4, 96, 80) and cube.rio.transform() == t


def test_like_another_cube_gives_its_grid_and_the_reference_pixels(indexed, scenes):
    gc, inst = indexed
    x, y = centre_in("EPSG:32632")
    first = gc.get_cube(inst, records=gc.list_records(name="utm32"), crs="EPSG:32632", resolution=25,
                        bounds=(x - 1000, y - 800, x + 1000, y + 800))
    # another record on the grid of the first cube: same CRS, transform and shape, exact pixels
    second = gc.get_cube(inst, records=gc.list_records(name="l93"), like=first)
    assert second.rio.crs == first.rio.crs and second.rio.transform() == first.rio.transform()
    assert (second.sizes["y"], second.sizes["x"]) == (first.sizes["y"], first.sizes["x"])
    np.testing.assert_array_equal(second.x.values, first.x.values)
    want = reference_image(ref(scenes, ["l93"]), grid_of(first), "uint16", 0, "near", 4)
    assert np.array_equal(gd.load(second).values[0], want)
    with pytest.raises(InvalidArgument):
        gc.get_cube(inst, like=first, crs="EPSG:4326", resolution=0.001)


# --- images with no valid pixel -------------------------------------------------------------------------


def write_swath(path, scene, nodata) -> None:
    """A copy of ``scene`` whose western half (columns < 200) is all nodata."""
    with rasterio.open(scene.path) as ds:
        data, crs, transform = ds.read(), ds.crs, ds.transform
    data[:, :, :200] = nodata
    write_raster(path, data, crs=crs, transform=transform, nodata=nodata, overviews=(2,))


def west_half(path: str, margin: float = 200.0) -> tuple[float, float, float, float]:
    """Bounds inside the all-nodata western half of a swath file (``margin`` metres inside)."""
    with rasterio.open(path) as ds:
        left, bottom, _, top = ds.bounds
        xmid = left + 200 * ds.transform.a
    return left + margin, bottom + margin, xmid - margin, top - margin


@pytest.fixture
def swath(gc, scenes, tmp_path):
    """Records 'valid' (scene utm31) and 'swath' (utm31 with its western half nodata, a day later)."""
    var = gc.create_variable("reflectance", dformat=("uint16", 0, 0, 10000), bands=BANDS, resampling="near")
    inst = gc.instantiate(var, "master")
    path = tmp_path / "swath.tif"
    write_swath(path, scenes["utm31"], 0)
    gc.index_dataset(scenes["utm31"].path, record=NewRecord("valid", "2024-03-01T10:00:00Z"), instance=inst)
    gc.index_dataset(str(path), record=NewRecord("swath", "2024-03-02T10:00:00Z"), instance=inst)
    return gc, inst, str(path)


def test_cube_keeps_all_nodata_images_unless_drop_empty(swath, scenes):
    gc, inst, path = swath
    kw = {"crs": "EPSG:32631", "resolution": 20, "bounds": west_half(path), "chunks": 32}
    lazy = gc.get_cube(inst, **kw)
    assert list(lazy.record_names.values) == ["valid", "swath"]  # default: planned images, lazy
    values = compute(lazy).values
    assert (values[1] == 0).all() and (values[0] != 0).any()
    dropped = gc.get_cube(inst, drop_empty=True, **kw)
    assert list(dropped.record_names.values) == ["valid"] and dropped.chunks is not None  # still lazy
    want = reference_image(ref(scenes, ["utm31"]), grid_of(dropped), "uint16", 0, "near", 4)
    assert np.array_equal(compute(dropped).values[0], want)
    # over the whole file both images have valid pixels: nothing dropped
    with rasterio.open(path) as ds:
        whole = gc.get_cube(inst, drop_empty=True, crs="EPSG:32631", resolution=40, bounds=tuple(ds.bounds))
    assert list(whole.record_names.values) == ["valid", "swath"]


def test_drop_empty_with_nan_nodata(gc, scenes, tmp_path):
    var = gc.create_variable("refl", dformat=("float32", "nan", 0, 1), bands=BANDS, resampling="near")
    inst = gc.instantiate(var, "f")
    path = tmp_path / "swath-nan.tif"
    write_swath(path, scenes["float"], np.nan)
    gc.index_dataset(scenes["float"].path, record=NewRecord("valid", "2024-03-01"), instance=inst)
    gc.index_dataset(str(path), record=NewRecord("swath", "2024-03-02"), instance=inst)
    kw = {"crs": "EPSG:32631", "resolution": 20, "bounds": west_half(path)}
    lazy = gc.get_cube(inst, **kw)
    assert list(lazy.record_names.values) == ["valid", "swath"] and np.isnan(compute(lazy).values[1]).all()
    assert list(gc.get_cube(inst, drop_empty=True, **kw).record_names.values) == ["valid"]


def test_timeseries_leave_out_images_without_a_valid_value(swath, scenes):
    gc, inst, path = swath
    left, bottom, right, top = west_half(path)
    # a point in the nodata half where 'valid' has data (read plainly)
    to_lonlat = Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)
    candidates = [to_lonlat.transform(left + f * (right - left), bottom + g * (top - bottom))
                  for f in (0.2, 0.4, 0.6, 0.8) for g in (0.3, 0.5, 0.7)]
    lon, lat = next(p for p in candidates if any(pixel_at(scenes["utm31"].path, *p)))
    assert not any(pixel_at(path, lon, lat))
    ts = gc.get_timeseries(inst, point=(lon, lat))
    assert list(ts.record_names.values) == ["valid"]
    assert ts.values[0].tolist() == pixel_at(scenes["utm31"].path, lon, lat)
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32631", always_xy=True).transform(lon, lat)
    poly = Point(x, y).buffer(100)
    for reduce in ("mean", None):
        series = gc.get_timeseries(inst, geometry=poly, crs="EPSG:32631", reduce=reduce)
        assert list(series.record_names.values) == ["valid"], reduce
    # in the eastern half (the same data in both files) both are kept
    with rasterio.open(path) as ds:
        east = [to_lonlat.transform(*(ds.transform @ (col + 0.5, row + 0.5)))
                for col in (250, 300, 350) for row in (80, 160, 240)]
    p = next(p for p in east if any(pixel_at(path, *p)))
    assert list(gc.get_timeseries(inst, point=p).record_names.values) == ["valid", "swath"]
