"""Streaming cube exports and plan files (geocube_dask.cli.export), on cubes built in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine

from geocube_dask.cli import export as ex
from geocube_dask.errors import AlreadyExists, InvalidArgument, NotFound


def fake_cube(dtype: str = "uint16", nodata: float = 0, chunk: int = 16, times: int = 2) -> xr.DataArray:
    """A cube shaped like the engine's: (time, band, y, x), rio CRS/transform/nodata, record coords."""
    shape = (times, 3, 40, 48)
    values = (np.arange(np.prod(shape)) % 1000).reshape(shape).astype(dtype)
    values[:, :, :5, :] = nodata
    data = da.from_array(values, chunks=(1, 3, chunk, chunk))
    t = np.array(["2024-01-05T10:30", "2024-01-10T10:30", "2024-01-15T10:30"][:times], dtype="datetime64[ns]")
    cube = xr.DataArray(
        data, dims=("time", "band", "y", "x"), name="refl",
        coords={"time": t, "band": ["B2", "B3", "B4"], "y": 5000000 - 20 * (np.arange(40) + 0.5),
                "x": 700000 + 20 * (np.arange(48) + 0.5),
                "record_ids": ("time", np.array(["id-a,id-b", "id-c", "id-d"][:times])),
                "record_names": ("time", np.array(["a,b", "c", "d"][:times]))},
        attrs={"variable": "refl", "instance": "master"},
    )
    cube = cube.rio.write_crs("EPSG:32631").rio.write_transform(Affine(20, 0, 700000, 0, -20, 5000000))
    return cube.rio.write_nodata(nodata, encoded=False)


def compute(delayed: Any) -> None:
    delayed.compute()


def test_output_format_and_targets(tmp_path: Path) -> None:
    assert ex.output_format("a/b.zarr") == "zarr" and ex.output_format("x.TIF") == "tif"
    with pytest.raises(InvalidArgument, match=".zarr"):
        ex.output_format("x.nc")
    ex.check_target(tmp_path / "new.tif", overwrite=False)
    (tmp_path / "old.tif").write_text("")
    with pytest.raises(AlreadyExists, match="--overwrite"):
        ex.check_target(tmp_path / "old.tif", overwrite=False)
    ex.check_target(tmp_path / "old.tif", overwrite=True)
    (tmp_path / "folder.zarr").mkdir()
    with pytest.raises(InvalidArgument, match="not a zarr store"):
        ex.check_target(tmp_path / "folder.zarr", overwrite=True)
    with pytest.raises(NotFound, match="does not exist"):
        ex.check_target(tmp_path / "no" / "x.zarr", overwrite=False)


def test_zarr_dataset_moves_fill_value_to_encoding() -> None:
    ds = ex.zarr_dataset(fake_cube())
    assert "_FillValue" not in ds["refl"].attrs and ds["refl"].encoding["_FillValue"] == 0
    v3 = ex.zarr_dataset(fake_cube(), zarr_format=3)
    assert v3.record_names.dtype == object and v3.band.dtype == object
    with pytest.raises(InvalidArgument, match="2 or 3"):
        ex.zarr_dataset(fake_cube(), zarr_format=4)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_write_zarr_round_trip(tmp_path: Path, zarr_format: int) -> None:
    cube = fake_cube()
    out = tmp_path / "c.zarr"
    ex.write_zarr(cube, out, zarr_format=zarr_format, compute=compute)
    raw = xr.open_zarr(out, mask_and_scale=False, consolidated=zarr_format == 2)
    np.testing.assert_array_equal(raw["refl"].values, cube.values)
    assert raw["refl"].encoding["chunks"] == (1, 3, 16, 16)
    assert [str(n) for n in raw.record_names.values] == ["a,b", "c"]
    decoded = xr.open_zarr(out, decode_coords="all", consolidated=zarr_format == 2)
    assert decoded["refl"].rio.crs.to_epsg() == 32631
    assert decoded.rio.transform() == cube.rio.transform()
    assert np.isnan(decoded["refl"].values[:, :, :5]).all()
    with pytest.raises(AlreadyExists):
        ex.write_zarr(cube, out, zarr_format=zarr_format, compute=compute)
    ex.write_zarr(fake_cube(times=3), out, zarr_format=zarr_format, overwrite=True, compute=compute)
    assert xr.open_zarr(out, consolidated=zarr_format == 2).sizes["time"] == 3


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    def broken(delayed: Any) -> None:
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        ex.write_zarr(fake_cube(), tmp_path / "c.zarr", compute=broken)
    with pytest.raises(RuntimeError):
        ex.write_geotiff(fake_cube(), tmp_path / "c.tif", compute=broken)
    assert list(tmp_path.iterdir()) == []


def test_tiff_blocks() -> None:
    assert ex.tiff_block((1024, 1024)) == 512 and ex.tiff_block((256, 96)) == 32 and ex.tiff_block((24, 24)) is None
    arr, block = ex.geotiff_array(fake_cube(chunk=24))
    assert block == 256 and arr.data.chunks[1] == (40,)
    arr, block = ex.geotiff_array(fake_cube(chunk=16))
    assert block == 16 and arr.shape == (6, 40, 48)
    assert arr.data.chunks == ((3, 3), (16, 16, 8), (16, 16, 16))  # one chunk per image and tile, as in the cube
    assert arr.attrs["long_name"][:2] == ("2024-01-05T10:30:00Z/B2", "2024-01-05T10:30:00Z/B3")
    with pytest.raises(InvalidArgument, match="no image"):
        ex.geotiff_array(fake_cube().isel(time=slice(0, 0)))


@pytest.mark.parametrize(("dtype", "nodata"), [("uint16", 0), ("float32", float("nan"))])
def test_write_geotiff_round_trip(tmp_path: Path, dtype: str, nodata: float) -> None:
    cube = fake_cube(dtype, nodata)
    out = tmp_path / "c.tif"
    ex.write_geotiff(cube, out, compute=compute)
    with rasterio.open(out) as src:
        assert src.count == 6 and src.dtypes[0] == dtype and src.block_shapes[0] == (16, 16)
        assert src.profile["interleave"] == "band" and src.profile["compress"] == "deflate"
        assert (src.nodata == nodata) or (np.isnan(src.nodata) and np.isnan(nodata))
        assert src.descriptions[-1] == "2024-01-10T10:30:00Z/B4"
        assert src.transform == cube.rio.transform() and src.crs.to_epsg() == 32631
        np.testing.assert_array_equal(src.read().reshape(cube.shape), cube.values)


def test_plan_files(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no plan file"):
        ex.read_plan(tmp_path / "none.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidArgument):
        ex.read_plan(tmp_path / "bin.json")
    (tmp_path / "v9.json").write_text('{"version": 9}')
    with pytest.raises(InvalidArgument, match="version"):
        ex.read_plan(tmp_path / "v9.json")


def test_cube_info() -> None:
    info = ex.cube_info(fake_cube())
    assert info["shape"] == [2, 3, 40, 48] and info["crs"] == "EPSG:32631" and info["resolution"] == [20.0, 20.0]
    assert info["bounds"] == [700000.0, 4999200.0, 700960.0, 5000000.0]
    assert info["record_names"] == [["a", "b"], ["c"]] and info["chunks"] == [16, 16]
    assert info["times"][0] == "2024-01-05T10:30:00Z"
