"""``/viewer``: its files and footprints route, and the page itself in a real headless Chromium.

Chromium is Debian's (``scripts/test.sh`` installs it), driven by Playwright for Python through its
``executable_path`` (Playwright's own browser download is not used). The page runs against a real
API server in a child process: it loads, draws the footprints, its tiles render (the map's
screenshot is not blank), the date selector changes the tiles, and nothing is requested from anywhere
but the server.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from PIL import Image
from playwright.sync_api import sync_playwright
from servers import api_server

from geocube_dask.api import create_app
from geocube_dask.api.routes import viewer as viewer_routes
from geocube_dask.catalog.ingest.requests import NewRecord

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BANDS = ["B2", "B3", "B4", "B8"]
# two days whose records cover different parts of the map, and a third
RECORDS = {
    "utm31": "2024-03-01T10:00:00Z",
    "utm31b": "2024-03-01T10:05:00Z",
    "l93": "2024-03-03T11:00:00Z",
    "wgs84": "2024-03-04T09:00:00Z",
}
BACKGROUND = (0xDD, 0xE3, 0xEA)  # #map's background in viewer.css


@pytest.fixture(scope="module")
def built_viewer() -> Path:
    """The built viewer (scripts/build-viewer.sh, which scripts/test.sh runs; run here if it was not)."""
    if not (viewer_routes.STATIC / "index.html").is_file():
        subprocess.run(["bash", str(REPO / "scripts" / "build-viewer.sh")], check=True, cwd=REPO)
    return viewer_routes.STATIC


def index_scenes(gc, scenes):
    var = gc.create_variable("reflectance", dformat=("uint16", 0, 0, 10000), bands=BANDS)
    inst = gc.instantiate(var, "master")
    for name, when in RECORDS.items():
        gc.index_dataset(scenes[name].path, record=NewRecord(name, when), instance=inst)
    return inst


def test_viewer_says_how_to_build_it_when_it_is_not_built(gc, tmp_path, monkeypatch):
    monkeypatch.setattr(viewer_routes, "STATIC", tmp_path / "nothing")
    client = TestClient(create_app(gc))
    response = client.get("/viewer")
    assert response.status_code == 503
    assert "scripts/build-viewer.sh" in response.text and "npm" in response.text
    assert client.get("/viewer/static/leaflet.js").json()["error"] == "NotFound"


def test_viewer_files_and_nothing_outside_them(gc, built_viewer):
    client = TestClient(create_app(gc))
    page = client.get("/viewer")
    assert page.status_code == 200 and "viewer/static/leaflet.js" in page.text
    assert client.get("/viewer/static/leaflet.js").content == (built_viewer / "leaflet.js").read_bytes()
    assert client.get("/viewer/static/images/layers.png").headers["content-type"] == "image/png"
    for name in ["../routes/viewer.py", "..%2f..%2ftiles.py", "%2e%2e/%2e%2e/app.py", "/etc/passwd", "nope.js"]:
        response = client.get(f"/viewer/static/{name}")
        assert response.status_code == 404 and response.json()["error"] == "NotFound", name
    assert client.get("/viewer/?instance=x", follow_redirects=False).headers["location"].endswith("/viewer?instance=x")


def test_footprints_are_the_records_datasets(gc, scenes):
    inst = index_scenes(gc, scenes)
    _, token = gc.create_token("read")
    client = TestClient(create_app(gc))
    assert client.get(f"/viewer/footprints/{inst.id}").status_code == 401
    client.headers["Authorization"] = f"Bearer {token}"
    doc = client.get(f"/viewer/footprints/{inst.id}").json()
    assert doc["type"] == "FeatureCollection" and not doc["truncated"]
    assert [f["properties"]["name"] for f in doc["features"]] == list(RECORDS)
    records = {r.name: r for r in gc.list_records()}
    for feature in doc["features"]:
        record = records[feature["properties"]["name"]]
        assert feature["id"] == record.id and feature["properties"]["datetime"] == RECORDS[record.name]
        (dataset,) = gc.list_datasets(instance=inst, records=[record])
        assert shapely.geometry.shape(feature["geometry"]).equals_exact(dataset.footprint_4326, 1e-9)
    last = client.get(f"/viewer/footprints/{inst.id}", params={"limit": 2}).json()
    assert last["truncated"] and [f["properties"]["name"] for f in last["features"]] == ["l93", "wgs84"]
    assert client.get("/viewer/footprints/nope").json()["error"] == "NotFound"


def map_pixels(page) -> np.ndarray:
    with Image.open(io.BytesIO(page.locator("#map").screenshot())) as im:
        return np.asarray(im.convert("RGB"))


def drawn(pixels: np.ndarray) -> np.ndarray:
    """Pixels that are neither the map's background nor a footprint's outline colours (tile pixels)."""
    return (np.abs(pixels.astype(int) - BACKGROUND).sum(axis=-1) > 12)


def test_viewer_in_headless_chromium(tmp_path, scenes, built_viewer):
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), "install Debian's chromium (scripts/test.sh does)"
    import geocube_dask as gd

    db = f"sqlite:///{tmp_path / 'viewer.db'}"
    gc = gd.connect(db)
    inst = index_scenes(gc, scenes)
    gc.close()
    with api_server(db) as server, sync_playwright() as pw:
        token = server.tokens["read"]
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 700})
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{server.url}/viewer?instance={inst.id}&token={token}")
            state = "window.geocubeViewer"
            page.wait_for_function(f"{state}.loads >= 1 && !{state}.loading", timeout=60_000)
            assert token not in page.url  # taken out of the address bar
            assert page.evaluate(f"{state}.tileErrors") == 0, page.inner_text("#status")
            assert page.evaluate(f"{state}.dates") == ["2024-03-01", "2024-03-03", "2024-03-04"]
            assert page.locator("path.leaflet-interactive").count() == len(RECORDS)  # the footprints
            before = map_pixels(page)
            assert drawn(before).mean() > 0.05, "the map shows no tile"
            assert len(np.unique(before.reshape(-1, 3), axis=0)) > 100  # a picture, not a flat colour

            loads = page.evaluate(f"{state}.loads")
            page.select_option("#date", "2024-03-03")
            page.wait_for_function(f"{state}.loads > {loads} && !{state}.loading", timeout=60_000)
            assert "start=2024-03-03" in page.evaluate(f"{state}.lastTileUrl")
            after = map_pixels(page)
            assert drawn(after).mean() > 0.005, "the date shows no tile"
            changed = np.abs(after.astype(int) - before.astype(int)).sum(axis=-1) > 12
            assert changed.mean() > 0.05, "changing the date did not change the tiles"
            assert page.evaluate(f"{state}.tileErrors") == 0, page.inner_text("#status")
            assert not errors, errors
            outside = [u for u in requested if not u.startswith(server.url) and not u.startswith("blob:")]
            assert not outside, f"the page asked for something elsewhere: {outside}"
        finally:
            browser.close()
