"""XYZ tiles over HTTP (``GET /tiles/…``), on SQLite and PostGIS, against the plain reference of tile_reference.py:
the tile's pixels are the cube the Python API gives over the same Web-Mercator grid, painted in order and
coloured by the rules written out in the reference."""

from __future__ import annotations

import dask
import numpy as np
import pytest
from fastapi.testclient import TestClient
from scenes import CENTRE
from tile_reference import decode, lonlat_tile, paint, palette_colours, rgb_colours, tile_transform

from geocube_dask.api import create_app
from geocube_dask.api import tiles as tiles_module
from geocube_dask.catalog.ingest.requests import NewRecord

BANDS = ["B2", "B3", "B4", "B8"]
# scene → (record datetime, constellation); utm31 and utm31b overlap and fall on the same day
DATES = {
    "utm31": ("2024-03-01T10:00:00Z", "s2"),
    "utm31b": ("2024-03-01T10:05:00Z", "s2"),
    "l93": ("2024-03-03T11:00:00Z", "spot"),
    "wgs84": ("2024-03-04T09:00:00Z", "landsat"),
}
Z = 13
X, Y = lonlat_tile(*CENTRE, Z)
# awkward numbers, so that no colour lands on a rounding tie
PALETTE = [(0.0, 13, 40, 201, 255), (0.37, 250, 251, 17, 230), (1.0, 7, 131, 77, 255)]
NDVI_RANGE = (-7321.0, 9133.0)


@pytest.fixture
def tiled(gc, scenes):
    """The scenes indexed (instance 'master' of 'reflectance', 'ndvi' of a one-band variable with a palette),
    a read token and a test client of the app."""
    var = gc.create_variable("reflectance", dformat=("uint16", 0, 0, 10000), bands=BANDS)
    inst = gc.instantiate(var, "master")
    for name, (when, constellation) in DATES.items():
        gc.index_dataset(scenes[name].path, record=NewRecord(name, when, {"constellation": constellation}),
                         instance=inst)
    gc.create_palette("ndvi-ramp", PALETTE)
    nvar = gc.create_variable("ndvi", dformat=("int16", -10001, -10000, 10000), bands=["ndvi"], palette="ndvi-ramp")
    ninst = gc.instantiate(nvar, "ndvi")
    gc.index_dataset(scenes["ndvi"].path, record=NewRecord("ndvi", "2024-03-05T10:00:00Z"), instance=ninst)
    _, token = gc.create_token("read")
    with TestClient(create_app(gc)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield gc, inst, ninst, client


def cube_values(gc, inst, z, x, y, bands, nodata=0.0, **filters) -> np.ndarray:
    """The Python API's cube over tile z/x/y's grid (one image per record), painted here: (band, y, x)."""
    cube = gc.get_cube(inst, crs="EPSG:3857", transform=tile_transform(z, x, y), shape=(256, 256), **filters)
    with dask.config.set(scheduler="threads", num_workers=2):
        images = cube.sel(band=bands).values
    assert images.shape[0] >= 1
    return paint(images, nodata)


def tile(client, inst, z=Z, x=X, y=Y, **params):
    return client.get(f"/tiles/{inst.id}/{z}/{x}/{y}.png", params=params)


def test_rgb_tile_is_the_painted_cube(tiled):
    gc, inst, _, client = tiled
    response = tile(client, inst, min=0, max=3000)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    got = decode(response.content)
    want = rgb_colours(cube_values(gc, inst, Z, X, Y, ["B2", "B3", "B4"]), 0, 0.0, 3000.0)
    assert (want[..., 3] == 0).any() and (want[..., 3] == 255).any()  # nodata and data in this tile
    assert np.array_equal(got, want)


def test_rgb_tile_defaults_to_the_first_three_bands_and_the_variables_range(tiled):
    gc, inst, _, client = tiled
    got = decode(tile(client, inst).content)
    want = rgb_colours(cube_values(gc, inst, Z, X, Y, ["B2", "B3", "B4"]), 0, 0.0, 10000.0)
    assert np.array_equal(got, want)


def test_other_bands_in_another_order(tiled):
    gc, inst, _, client = tiled
    got = decode(tile(client, inst, bands="B8,B4,B3", min=200, max=4000).content)
    want = rgb_colours(cube_values(gc, inst, Z, X, Y, ["B8", "B4", "B3"]), 0, 200.0, 4000.0)
    assert np.array_equal(got, want)


def test_one_band_goes_through_the_palette_and_nodata_is_transparent(tiled):
    gc, _, ninst, client = tiled
    z, x, y = 14, *lonlat_tile(*CENTRE, 14)
    got = decode(tile(client, ninst, z, x, y, min=NDVI_RANGE[0], max=NDVI_RANGE[1]).content)
    values = cube_values(gc, ninst, z, x, y, ["ndvi"], -10001)
    want = palette_colours(values[0], -10001, *NDVI_RANGE, PALETTE)
    assert (values[0] == -10001).any() and (values[0] != -10001).any()
    assert np.array_equal(got, want)
    assert (got[values[0] == -10001] == 0).all()
    assert ((got[..., 3] > 0) & (got[..., 3] < 255)).any()  # the palette's alpha is drawn


def test_one_band_without_palette_is_grey(tiled):
    gc, inst, _, client = tiled
    got = decode(tile(client, inst, bands="B8", min=100, max=5000).content)
    values = cube_values(gc, inst, Z, X, Y, ["B8"])
    want = rgb_colours(values[[0, 0, 0]], 0, 100.0, 5000.0)
    assert (want[..., 3] == 0).any() and (want[..., 3] == 255).any()
    assert np.array_equal(got, want)


def test_records_time_and_tag_filters(tiled):
    gc, inst, _, client = tiled
    records = {r.name: r.id for r in gc.list_records()}
    cases = [
        ({"records": records["utm31b"]}, {"records": [records["utm31b"]]}),
        ({"start": "2024-03-01T00:00:00Z", "end": "2024-03-02T00:00:00Z"},
         {"time": ("2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z")}),
        ({"tag": "constellation=spot"}, {"tags": {"constellation": "spot"}}),
    ]
    full = decode(tile(client, inst).content)
    for params, filters in cases:
        got = decode(tile(client, inst, **params).content)
        want = rgb_colours(cube_values(gc, inst, Z, X, Y, ["B2", "B3", "B4"], **filters), 0, 0.0, 10000.0)
        assert np.array_equal(got, want), params
        assert not np.array_equal(got, full), params  # the filter changed the tile


def test_tile_outside_the_data_is_transparent_without_reading(tiled, monkeypatch):
    gc, inst, _, client = tiled

    def no_reading(*args, **kwargs):
        raise AssertionError("a tile that no dataset touches must not read")

    monkeypatch.setattr(tiles_module, "cube_from_plan", no_reading)
    for z, x, y in [(Z, X + 3, Y), (Z, X, Y - 3), (10, 100, 200)]:
        response = tile(client, inst, z, x, y)
        assert response.status_code == 200
        assert (decode(response.content)[..., 3] == 0).all()
    # a filter that matches nothing: transparent too
    response = tile(client, inst, tag="constellation=none")
    assert (decode(response.content)[..., 3] == 0).all()


def test_tiles_keep_their_files_open_for_the_next_tiles(tiled, monkeypatch):
    """A tile is one chunk: as a cube's, it would close every file it read; the next tile over the same
    files would open them again."""
    from geocube_dask.graph import cube as cube_module

    closed: list[str] = []
    monkeypatch.setattr(cube_module, "forget_source", closed.append)
    _, inst, _, client = tiled
    for z, x, y in [(Z, X, Y), (Z + 1, 2 * X, 2 * Y), (Z + 1, 2 * X + 1, 2 * Y)]:
        response = tile(client, inst, z, x, y, min=0, max=3000)
        assert response.status_code == 200 and (decode(response.content)[..., 3] == 255).any()
    assert closed == []


@pytest.mark.parametrize("path", ["25/0/0", "3/8/0", "3/0/8", "3/-1/0", "-1/0/0", "3/a/0", "3/0/0.5"])
def test_tiles_that_do_not_exist_are_json_4xx(tiled, path):
    _, inst, _, client = tiled
    response = client.get(f"/tiles/{inst.id}/{path}.png")
    assert 400 <= response.status_code < 500
    body = response.json()
    assert body["error"] == "InvalidArgument" and body["detail"]


@pytest.mark.parametrize("params", [{"bands": "B2,B3"}, {"bands": "B9"}, {"min": 5, "max": 1}, {"max": "nan"},
                                    {"tag": "=x"}, {"start": "yesterday"}, {"records": ","}])
def test_bad_tile_parameters_are_json_4xx(tiled, params):
    _, inst, _, client = tiled
    response = tile(client, inst, **params)
    assert 400 <= response.status_code < 500, response.content[:200]
    assert response.json()["error"] == "InvalidArgument"


def test_unknown_instance_and_missing_token(tiled):
    _, inst, _, client = tiled
    assert client.get(f"/tiles/{'0' * 8}-0000-0000-0000-{'0' * 12}/1/0/0.png").json()["error"] == "NotFound"
    response = client.get(f"/tiles/{inst.id}/1/0/0.png", headers={"Authorization": ""})
    assert response.status_code == 401 and response.json()["error"] == "AuthenticationError"


def test_etag_answers_304_and_changes_with_the_datasets_and_the_query(tiled, scenes):
    gc, inst, _, client = tiled
    first = tile(client, inst)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"]
    again = tile(client, inst)
    assert again.headers["ETag"] == etag and again.content == first.content
    cached = client.get(f"/tiles/{inst.id}/{Z}/{X}/{Y}.png", headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["ETag"] == etag
    listed = client.get(f"/tiles/{inst.id}/{Z}/{X}/{Y}.png", headers={"If-None-Match": f'"other", W/{etag}'})
    assert listed.status_code == 304
    assert tile(client, inst, bands="B4,B3,B2").headers["ETag"] != etag
    assert tile(client, inst, min=1).headers["ETag"] != etag
    # a dataset added under the tile: a new ETag, the old one no longer matches, and a new picture
    gc.index_dataset(scenes["utm32"].path, record=NewRecord("utm32", "2024-03-06T10:00:00Z"), instance=inst)
    changed = client.get(f"/tiles/{inst.id}/{Z}/{X}/{Y}.png", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert not np.array_equal(decode(changed.content), decode(first.content))


def test_etag_changes_when_a_local_file_is_rewritten_in_place(gc, scenes, tmp_path):
    """The same catalogue, the same query, but the file under the tile rewritten under the same name (other
    pixels): the old ETag no longer matches and the tile shows the new pixels, not the ones of a handle
    opened before."""
    import shutil

    import rasterio
    import rasterio.enums

    path = tmp_path / "rewritten.tif"
    shutil.copy(scenes["utm31"].path, path)
    var = gc.create_variable("reflectance", dformat=("uint16", 0, 0, 10000), bands=BANDS)
    inst = gc.instantiate(var, "master")
    gc.index_dataset(str(path), record=NewRecord("utm31", DATES["utm31"][0]), instance=inst)
    _, token = gc.create_token("read")
    with TestClient(create_app(gc)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        first = tile(client, inst, max=3000)
        etag = first.headers["ETag"]
        assert tile(client, inst, max=3000).headers["ETag"] == etag
        with rasterio.open(path) as src:
            profile, pixels = src.profile, src.read()
            factors = src.overviews(1)
        darker = tmp_path / "darker.tif"
        with rasterio.open(darker, "w", **{**profile, "driver": "GTiff"}) as dst:
            dst.write(np.where(pixels > 0, np.maximum(pixels // 2, 1), 0).astype(pixels.dtype))
            dst.build_overviews(factors, rasterio.enums.Resampling.average)
        shutil.copyfile(darker, path)  # in place: the same name and inode, other content
        changed = client.get(f"/tiles/{inst.id}/{Z}/{X}/{Y}.png", params={"max": 3000},
                             headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["ETag"] != etag
        want = rgb_colours(cube_values(gc, inst, Z, X, Y, ["B2", "B3", "B4"]), 0, 0.0, 3000.0)
        assert np.array_equal(decode(changed.content), want)
        assert not np.array_equal(decode(changed.content), decode(first.content))


def test_tile_from_a_real_server_is_the_painted_cube(api, scenes):
    """Through uvicorn in a child process (the bounded pool, real sockets), on both backends."""
    import httpx

    import geocube_dask as gd

    with gd.connect(api.db_url) as gc:
        var = gc.create_variable("reflectance", dformat=("uint16", 0, 0, 10000), bands=BANDS)
        inst = gc.instantiate(var, "master")
        for name, (when, _) in DATES.items():
            gc.index_dataset(scenes[name].path, record=NewRecord(name, when), instance=inst)
        want = rgb_colours(cube_values(gc, inst, Z, X, Y, ["B4", "B3", "B2"]), 0, 0.0, 2500.0)
    headers = {"Authorization": f"Bearer {api.tokens['read']}"}
    url = f"{api.url}/tiles/{inst.id}/{Z}/{X}/{Y}.png"
    response = httpx.get(url, params={"bands": "B4,B3,B2", "max": 2500}, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    assert np.array_equal(decode(response.content), want)
    again = httpx.get(url, params={"bands": "B4,B3,B2", "max": 2500}, timeout=60,
                      headers={**headers, "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
