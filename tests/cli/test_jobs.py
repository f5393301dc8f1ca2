"""``geocube layout``, ``geocube consolidate`` and ``geocube job …`` run for real on SQLite and PostGIS."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from rasters import Scene, write_scene

import geocube_dask as gd

from .test_commands import as_json, error, ok, run

CRS = "EPSG:32631"
BOUNDS = (359000.0, 4826000.0, 364000.0, 4831000.0)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-jobs")
    return {
        "a": write_scene(root / "S2_20240105T103000_A.tif", Scene(CRS, 360000.0, 4830000.0, 20.0, 120, 100), seed=1),
        "b": write_scene(root / "S2_20240110T103000_B.tif", Scene(CRS, 361000.0, 4829000.0, 20.0, 120, 100), seed=2),
    }


@pytest.fixture
def catalogue(catalog_url: str, scenes: dict[str, Path], tmp_path: Path) -> tuple[str, Path, dict[str, Path]]:
    """Scenes a and b (copies) indexed, a layout 'L' of 128-pixel cells, and an empty storage folder."""
    copies = {}
    for key, path in scenes.items():
        copies[key] = tmp_path / "in" / path.name
        copies[key].parent.mkdir(exist_ok=True)
        shutil.copyfile(path, copies[key])
    ok(run(catalog_url, "variable", "create", "refl", "--dtype", "uint16", "--nodata", "0", "--min", "0", "--max",
           "10000", "--bands", "B2,B3,B4"))
    ok(run(catalog_url, "instance", "create", "refl", "master"))
    ok(run(catalog_url, "index", *copies.values(), "--instance", "refl/master"))
    made = as_json(run(catalog_url, "layout", "create", "L", "--crs", CRS, "--resolution", "20", "--cell-size", "128",
                       "--block-size", "64", "--max-records", "5", "--json"))
    assert made["pattern"] == "Z=0>T>R>B;Z=1:>R>T>B" and made["cell_size"] == 128
    return catalog_url, tmp_path / "store", copies


def cube_values(url: str) -> np.ndarray:
    with gd.connect(url) as gc:
        return gc.get_cube(gc.get_instance("refl", "master"), crs=CRS, resolution=20, bounds=BOUNDS).values


def test_layouts(catalog_url: str) -> None:
    ok(run(catalog_url, "layout", "create", "utm", "--crs", CRS, "--resolution", "10", "--pattern", "cog"))
    assert [lay["name"] for lay in as_json(run(catalog_url, "layout", "list", "--json"))] == ["utm"]
    shown = as_json(run(catalog_url, "layout", "show", "utm", "--json"))
    assert shown["pattern"] == "R>Z>T>B" and shown["resolution"] == 10 and shown["max_records"] == 1000
    assert "interlacing pattern" in ok(run(catalog_url, "layout", "show", "utm"))
    assert "utm" in ok(run(catalog_url, "layout", "list"))
    assert "regular grid needs a crs" in error(run(catalog_url, "layout", "create", "bad"))
    assert "no layout named 'nope'" in error(run(catalog_url, "layout", "show", "nope"))


def test_consolidate_then_list_and_show(catalogue) -> None:
    url, store, _ = catalogue
    before = cube_values(url)
    done = as_json(run(url, "consolidate", "refl/master", "--layout", "L", "--storage", store, "--name", "q1",
                       "--progress", "--json"))
    assert done["state"] == "DONE" and done["tasks"] == {"DONE": done["tasks"]["DONE"]} and done["tasks"]["DONE"] > 1
    assert np.array_equal(cube_values(url), before)
    assert any(store.rglob("*.tif"))
    listed = as_json(run(url, "job", "list", "--json"))
    assert [(j["name"], j["state"]) for j in listed] == [("q1", "DONE")]
    assert as_json(run(url, "job", "list", "--state", "CONSOLIDATIONFAILED", "--json")) == []
    shown = as_json(run(url, "job", "show", "q1", "--json"))
    assert all(t["state"] == "DONE" and t["uri"].startswith(str(store)) for t in shown["task_list"])
    assert shown["logs"][0]["message"].startswith("created consolidation job 'q1'")
    text = ok(run(url, "job", "show", "q1"))
    assert "DONE" in text and "log" in text
    assert "q1" in ok(run(url, "job", "list"))
    assert as_json(run(url, "job", "clean", "--json")) == {"deleted": 1}
    assert "no job named 'q1'" in error(run(url, "job", "show", "q1"))


def test_step_by_step_next_and_cancel(catalogue) -> None:
    url, store, _ = catalogue
    text = ok(run(url, "consolidate", "refl/master", "--layout", "L", "--storage", store, "--name", "s",
                  "--level", "step-by-step-critical"))
    assert "CONSOLIDATIONINDEXED (waiting: geocube job next s)" in text
    assert "locked by job 's'" in error(run(url, "consolidate", "refl/master", "--layout", "L", "--storage", store))
    assert as_json(run(url, "job", "next", "s", "--json"))["state"] == "CONSOLIDATIONEFFECTIVE"
    assert "cannot be cancelled" in error(run(url, "job", "cancel", "s"))
    assert as_json(run(url, "job", "next", "s", "--json"))["state"] == "DONE"
    assert "not waiting" in error(run(url, "job", "next", "s"))
    # a cancelled job leaves nothing behind
    files = sorted(store.rglob("*"))
    ok(run(url, "dataset", "list"))
    waiting = as_json(run(url, "consolidate", "refl/master", "--layout", "L", "--storage", store, "--name", "t",
                          "--level", "step-by-step-all", "--json"))
    assert waiting["state"] == "NEW" and waiting["waiting"]
    assert as_json(run(url, "job", "cancel", "t", "--json"))["state"] == "FAILED"
    assert sorted(store.rglob("*")) == files


def test_a_failed_job_is_retried(catalogue) -> None:
    url, store, copies = catalogue
    away = copies["b"].with_suffix(".away")
    copies["b"].rename(away)
    failed = run(url, "consolidate", "refl/master", "--layout", "L", "--storage", store, "--name", "f")
    text = ok(failed)
    assert "CONSOLIDATIONFAILED" in text and str(copies["b"]) in text and "geocube job retry f" in text
    away.rename(copies["b"])
    assert as_json(run(url, "job", "retry", "f", "--json"))["state"] == "DONE"
    assert "nothing to retry" in error(run(url, "job", "retry", "f"))


def test_create_without_running(catalogue) -> None:
    url, store, _ = catalogue
    created = as_json(run(url, "consolidate", "refl/master", "--layout", "L", "--storage", store, "--no-run",
                          "--json"))
    assert created["state"] == "NEW" and created["tasks"] == {}
    assert as_json(run(url, "job", "retry", created["name"], "--json"))["state"] == "DONE"
    assert "nothing to consolidate" in error(run(url, "consolidate", "refl/master", "--layout", "L", "--storage",
                                                 store, "--aoi", "0,0,1,1"))
    assert "no layout named" in error(run(url, "consolidate", "refl/master", "--layout", "M"))
