"""geocube_dask.graph.read on its own: clipped reads, per-thread handles, read errors, GDAL settings."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.env
from affine import Affine
from rasterio.io import DatasetReader
from rasterio.windows import Window

from geocube_dask.errors import GeocubeError, SourceReadError
from geocube_dask.graph import read
from geocube_dask.graph.read import (
    clear_handle_cache,
    forget_source,
    gdal_settings,
    open_source,
    read_error,
    read_window,
)
from geocube_dask.synthetic import write_raster

HEIGHT, WIDTH, BANDS = 32, 48, 3
TRANSFORM = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5000000.0)


def pattern(bands: int = BANDS, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """uint16 values that name their own position: band * 10000 + row * 100 + col + 1 (never 0)."""
    b, r, c = np.mgrid[0:bands, 0:height, 0:width]
    return (b * 10000 + r * 100 + c + 1).astype("uint16")


def write_file(path: Path, data: np.ndarray, overviews: tuple[int, ...] = (2, 4)) -> str:
    write_raster(path, data, crs="EPSG:32631", transform=TRANSFORM, nodata=0, overviews=overviews, blocksize=16)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Three small 3-band uint16 GeoTIFFs (nodata 0, overviews ×2 ×4) with distinct values."""
    root = tmp_path_factory.mktemp("read")
    data = pattern()
    data[:, :4, :6] = 0  # a nodata corner
    return {
        "a": write_file(root / "a.tif", data),
        "b": write_file(root / "b.tif", pattern() + 7),
        "c": write_file(root / "c.tif", pattern() + 11, overviews=()),
    }


@pytest.fixture(autouse=True)
def fresh_handles() -> Iterator[None]:
    """Every test starts and ends with no open handle in this thread."""
    clear_handle_cache()
    yield
    clear_handle_cache()


def cached_handles() -> dict[tuple[object, ...], DatasetReader]:
    return {key: ds for key, (ds, _sig) in read._handles().items.items()}


# --- read_window ----------------------------------------------------------------------------------------

# (row0, col0, height, width) → rows and cols of the file it covers, and the offset in the request
WINDOWS = {
    "inside": ((5, 7, 10, 12), (slice(5, 15), slice(7, 19)), (0, 0)),
    "whole": ((0, 0, HEIGHT, WIDTH), (slice(0, 32), slice(0, 48)), (0, 0)),
    "over top": ((-3, 4, 10, 5), (slice(0, 7), slice(4, 9)), (3, 0)),
    "over left": ((2, -6, 4, 10), (slice(2, 6), slice(0, 4)), (0, 6)),
    "over bottom": ((25, 1, 10, 3), (slice(25, 32), slice(1, 4)), (0, 0)),
    "over right": ((1, 40, 2, 20), (slice(1, 3), slice(40, 48)), (0, 0)),
    "over every side": ((-2, -3, 40, 60), (slice(0, 32), slice(0, 48)), (2, 3)),
    "one pixel in the bottom right corner": ((31, 47, 5, 5), (slice(31, 32), slice(47, 48)), (0, 0)),
    "one pixel in the top left corner": ((-4, -4, 5, 5), (slice(0, 1), slice(0, 1)), (4, 4)),
}


@pytest.mark.parametrize("case", list(WINDOWS))
def test_read_window_clips_to_the_dataset(files: dict[str, str], case: str) -> None:
    (row0, col0, h, w), (rows, cols), offset = WINDOWS[case]
    expected = pattern()
    expected[:, :4, :6] = 0
    with rasterio.open(files["a"]) as ds:
        got = read_window(ds, (1, 2, 3), row0, col0, h, w)
    assert got is not None
    data, off = got
    assert off == offset
    assert data.dtype == np.uint16
    np.testing.assert_array_equal(data, expected[:, rows, cols])
    # the clipped block fits in the requested window at its offset
    assert off[0] + data.shape[1] <= h and off[1] + data.shape[2] <= w


@pytest.mark.parametrize(
    "window",
    [(HEIGHT, 0, 5, 5), (-5, 0, 5, 5), (0, WIDTH, 5, 5), (0, -5, 5, 5), (100, 100, 3, 3), (-50, -50, 10, 10),
     (3, 3, 0, 4), (3, 3, 4, 0)],
)
def test_read_window_missing_the_dataset_is_none(files: dict[str, str], window: tuple[int, int, int, int]) -> None:
    with rasterio.open(files["a"]) as ds:
        assert read_window(ds, (1,), *window) is None


def test_read_window_band_subset_in_the_order_asked(files: dict[str, str]) -> None:
    data = pattern()
    with rasterio.open(files["b"]) as ds:
        got = read_window(ds, (3, 1), -1, 10, 6, 4)
    assert got is not None
    values, off = got
    assert off == (1, 0) and values.shape == (2, 5, 4)
    np.testing.assert_array_equal(values[0], data[2, 0:5, 10:14] + 7)
    np.testing.assert_array_equal(values[1], data[0, 0:5, 10:14] + 7)


def test_read_window_of_an_overview_uses_overview_pixels(files: dict[str, str]) -> None:
    ds = open_source(files["b"], "", 0, ())
    assert (ds.width, ds.height) == (WIDTH // 2, HEIGHT // 2)
    with rasterio.open(files["b"], overview_level=0) as ov:
        whole = ov.read()
    got = read_window(ds, (2,), 10, 20, 10, 10)
    assert got is not None
    values, off = got
    assert off == (0, 0) and values.shape == (1, 6, 4)
    np.testing.assert_array_equal(values[0], whole[1, 10:16, 20:24])


# --- open_source: per-thread LRU of handles ------------------------------------------------------------


def test_open_source_reuses_the_handle_of_this_thread(files: dict[str, str]) -> None:
    first = open_source(files["a"], "", -1, ())
    again = open_source(files["a"], "", -1, ())
    assert again is first and not first.closed
    assert (first.width, first.height, first.count) == (WIDTH, HEIGHT, BANDS)
    # another file, another level or other GDAL settings are other handles
    other_file = open_source(files["b"], "", -1, ())
    other_level = open_source(files["a"], "", 0, ())
    other_env = open_source(files["a"], "", -1, (("GDAL_HTTP_TIMEOUT", "3"),))
    handles = [first, other_file, other_level, other_env]
    assert len({id(h) for h in handles}) == 4
    assert len(cached_handles()) == 4


def test_open_source_gives_each_thread_its_own_handle(files: dict[str, str]) -> None:
    mine = open_source(files["a"], "", -1, ())
    seen: dict[str, object] = {}

    def work() -> None:
        try:
            theirs = open_source(files["a"], "", -1, ())
            seen["handle"] = theirs
            seen["same_twice"] = open_source(files["a"], "", -1, ()) is theirs
            seen["cached"] = len(read._handles().items)
            clear_handle_cache()
            seen["closed_after_clear"] = theirs.closed
        except BaseException as exc:  # reported to the main thread
            seen["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert "error" not in seen, seen.get("error")
    assert seen["handle"] is not mine
    assert seen["same_twice"] is True
    assert seen["cached"] == 1
    assert seen["closed_after_clear"] is True
    # the other thread's clear did not close this thread's handle under it (it may be reading), but
    # this thread closes it and opens the file again on its next read
    assert not mine.closed
    again = open_source(files["a"], "", -1, ())
    assert again is not mine and mine.closed and not again.closed


def test_a_file_rewritten_in_place_is_opened_again(files: dict[str, str], tmp_path: Path) -> None:
    """A local file rewritten under the same name (replaced, or overwritten in place) is reopened: its
    cached handle would read the old pixels."""
    path = tmp_path / "rewritten.tif"
    shutil.copyfile(files["a"], path)
    first = open_source(str(path), "", -1, ())
    before = first.read(1, window=Window(0, 0, 4, 4))
    assert open_source(str(path), "", -1, ()) is first
    with rasterio.open(files["a"]) as src:
        profile, data = src.profile, src.read()
    other = tmp_path / "other.tif"
    with rasterio.open(other, "w", **profile) as dst:
        dst.write(data // 2 + 1)
    os.replace(other, path)  # a new file under the old name
    second = open_source(str(path), "", -1, ())
    assert second is not first and first.closed
    np.testing.assert_array_equal(second.read(1, window=Window(0, 0, 4, 4)), before // 2 + 1)
    with rasterio.open(path, "r+") as dst:  # the same file, changed in place
        dst.write(data[:, :, :] // 3 + 2)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    third = open_source(str(path), "", -1, ())
    assert third is not second
    np.testing.assert_array_equal(third.read(1, window=Window(0, 0, 4, 4)), before // 3 + 2)


@pytest.mark.parametrize(("level", "shape"), [(-1, (HEIGHT, WIDTH)), (0, (HEIGHT // 2, WIDTH // 2)),
                                              (1, (HEIGHT // 4, WIDTH // 4))])
def test_open_source_opens_the_overview_level(files: dict[str, str], level: int, shape: tuple[int, int]) -> None:
    ds = open_source(files["a"], "", level, ())
    assert (ds.height, ds.width) == shape
    assert ds.count == BANDS
    # the pixels are the overview's (coarser) pixels
    kwargs = {} if level < 0 else {"overview_level": level}
    with rasterio.open(files["a"], **kwargs) as plain:
        expected = plain.read()
    np.testing.assert_array_equal(ds.read(), expected)


def test_open_source_beyond_the_last_overview_fails(files: dict[str, str]) -> None:
    with pytest.raises(rasterio.errors.RasterioIOError):
        open_source(files["c"], "", 0, ())  # c has no overviews
    assert cached_handles() == {}


def test_open_source_with_a_subdir_opens_the_sub_image(files: dict[str, str]) -> None:
    plain = open_source(files["c"], "", -1, ())
    first_image = open_source(files["c"], "GTIFF_DIR:1", -1, ())
    assert first_image is not plain
    assert first_image.name.startswith("GTIFF_DIR:1:")
    np.testing.assert_array_equal(first_image.read(1), pattern()[0] + 11)


def test_open_source_evicts_the_least_recently_used_beyond_the_limit(
    files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(read, "MAX_OPEN_PER_THREAD", 2)
    a = open_source(files["a"], "", -1, ())
    b = open_source(files["b"], "", -1, ())
    assert open_source(files["a"], "", -1, ()) is a  # a is now the most recently used
    c = open_source(files["c"], "", -1, ())
    assert b.closed, "the least recently used handle is evicted and closed"
    assert not a.closed and not c.closed
    assert {k[0] for k in cached_handles()} == {files["a"], files["c"]}
    # an evicted source opens again as a new handle, evicting the next oldest (a)
    b2 = open_source(files["b"], "", -1, ())
    assert b2 is not b and not b2.closed
    assert a.closed and not c.closed
    assert len(cached_handles()) == 2


def test_open_source_reopens_a_handle_closed_behind_its_back(files: dict[str, str]) -> None:
    a = open_source(files["a"], "", -1, ())
    a.close()
    again = open_source(files["a"], "", -1, ())
    assert again is not a and not again.closed
    assert again.read(1, window=((5, 6), (7, 8)))[0, 0] == pattern()[0, 5, 7]


def test_a_reopened_handle_counts_as_the_most_recently_used(
    files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(read, "MAX_OPEN_PER_THREAD", 2)
    a = open_source(files["a"], "", -1, ())
    b = open_source(files["b"], "", -1, ())
    a.close()
    a2 = open_source(files["a"], "", -1, ())
    open_source(files["a"], "", 0, ())  # a third handle: the least recently used (b) goes
    assert b.closed and not a2.closed


def test_forget_source_closes_every_handle_of_that_uri_only(files: dict[str, str]) -> None:
    full = open_source(files["a"], "", -1, ())
    overview = open_source(files["a"], "", 0, ())
    other = open_source(files["b"], "", -1, ())
    forget_source(files["a"])
    assert full.closed and overview.closed
    assert not other.closed
    assert list(cached_handles().values()) == [other]
    reopened = open_source(files["a"], "", -1, ())
    assert reopened is not full and not reopened.closed
    forget_source("/not/opened.tif")  # nothing to forget: no error
    assert len(cached_handles()) == 2


def test_clear_handle_cache_closes_everything(files: dict[str, str]) -> None:
    handles = [open_source(files[name], "", -1, ()) for name in ("a", "b", "c")] + [open_source(files["a"], "", 1, ())]
    assert not any(h.closed for h in handles)
    clear_handle_cache()
    assert all(h.closed for h in handles)
    assert cached_handles() == {}
    assert open_source(files["a"], "", -1, ()) is not handles[0]


# --- errors ---------------------------------------------------------------------------------------------


def test_read_error_names_the_uri_the_cause_and_on_error() -> None:
    uri = "s3://bucket/some/scene.tif"
    err = read_error(uri, OSError("No such file or directory"))
    assert isinstance(err, SourceReadError) and isinstance(err, GeocubeError)
    text = str(err)
    assert repr(uri) in text
    assert "No such file or directory" in text
    assert "on_error='nodata'" in text


def test_opening_a_missing_file_and_wrapping_the_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.tif")
    with pytest.raises(rasterio.errors.RasterioIOError) as info:
        open_source(missing, "", -1, ())
    assert cached_handles() == {}
    err = read_error(missing, info.value)
    assert missing in str(err)
    with pytest.raises(SourceReadError, match="missing.tif"):
        raise err


# --- GDAL settings --------------------------------------------------------------------------------------


def test_gdal_settings_apply_inside_and_restore_after() -> None:
    assert rasterio.env.get_gdal_config("GDAL_HTTP_TIMEOUT") is None
    with gdal_settings({"GDAL_HTTP_TIMEOUT": "7", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif"}):
        assert rasterio.env.get_gdal_config("GDAL_HTTP_TIMEOUT") == 7
        assert rasterio.env.get_gdal_config("CPL_VSIL_CURL_ALLOWED_EXTENSIONS") == ".tif"
        assert rasterio.env.getenv()["GDAL_HTTP_TIMEOUT"] == "7"
    assert rasterio.env.get_gdal_config("GDAL_HTTP_TIMEOUT") is None
    assert rasterio.env.get_gdal_config("CPL_VSIL_CURL_ALLOWED_EXTENSIONS") is None


def test_gdal_settings_restore_an_outer_environment() -> None:
    with rasterio.Env(GDAL_HTTP_TIMEOUT="3"):
        with gdal_settings({"GDAL_HTTP_TIMEOUT": "9"}):
            assert rasterio.env.get_gdal_config("GDAL_HTTP_TIMEOUT") == 9
        assert rasterio.env.get_gdal_config("GDAL_HTTP_TIMEOUT") == 3
        assert rasterio.env.getenv()["GDAL_HTTP_TIMEOUT"] == "3"
    assert rasterio.env.get_gdal_config("GDAL_HTTP_TIMEOUT") is None


def test_gdal_settings_leave_the_block_cache_alone_and_empty_settings() -> None:
    before = rasterio.env.get_gdal_config("GDAL_CACHEMAX")
    with gdal_settings({"GDAL_CACHEMAX": "37"}):  # process-wide: never changed by a task's settings
        assert rasterio.env.get_gdal_config("GDAL_CACHEMAX") == before
    assert rasterio.env.get_gdal_config("GDAL_CACHEMAX") == before
    with gdal_settings({}):
        assert not rasterio.env.hasenv()


def test_gdal_settings_are_per_thread() -> None:
    seen: dict[str, object] = {}
    inside, go, read_done = threading.Event(), threading.Event(), threading.Event()

    def other() -> None:
        try:
            with gdal_settings({"GDAL_HTTP_TIMEOUT": "21"}):
                inside.set()
                go.wait(timeout=30)  # the main thread has applied its own value meanwhile
                seen["other"] = rasterio.env.get_gdal_config("GDAL_HTTP_TIMEOUT")
        finally:
            inside.set()
            read_done.set()

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert inside.wait(timeout=30)
        with gdal_settings({"GDAL_HTTP_TIMEOUT": "5"}):
            go.set()
            assert read_done.wait(timeout=30)
            seen["main"] = rasterio.env.get_gdal_config("GDAL_HTTP_TIMEOUT")
    finally:
        go.set()
        thread.join(timeout=30)
    assert seen == {"other": 21, "main": 5}
    assert rasterio.env.get_gdal_config("GDAL_HTTP_TIMEOUT") is None
