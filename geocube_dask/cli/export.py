"""Writing cubes and plans to files, streaming: memory is bounded by chunks, not by the cube.

- **Zarr** (``*.zarr``): ``xarray.Dataset.to_zarr`` of the cube under its variable name, one zarr
  chunk per cube chunk (1 image × all bands × chunk × chunk). The default is **Zarr format 2**: its
  fixed-length string arrays hold the ``record_ids``/``record_names``/``band`` coordinates natively and
  every zarr reader (zarr-python 2 and 3, GDAL, older xarray) opens it; metadata is consolidated.
  Format 3 is available (``zarr_format=3``): string coordinates are then stored as variable-length
  strings (Zarr 3's ``string`` type; fixed-length unicode has no Zarr 3 specification yet) and the
  metadata is not consolidated (not part of the Zarr 3 specification). The cube's nodata becomes the
  ``_FillValue`` *encoding* (a CF reader masks it); the CRS is the ``spatial_ref`` grid-mapping
  variable. Read back with ``xr.open_zarr(path, decode_coords="all")`` (add ``mask_and_scale=False`` to
  keep the stored dtype and nodata of an integer cube).
- **GeoTIFF** (``*.tif``/``*.tiff``): one band per (image, band), in time-major order, each band's
  description ``<time ISO>/<band name>``; tiled (blocks dividing the chunk size), band-interleaved so
  each chunk's write fills whole blocks, deflate-compressed, BigTIFF when needed, nodata set. Chunks are
  written window by window as they are computed (``rio.to_raster`` with a lock).

Outputs are written under a temporary name beside the target and renamed when complete, so a failed or
interrupted export never leaves a half-written file under the requested name. An export job (see
:mod:`geocube_dask.exporting`) names its temporary after the job, so that its retry removes what a dead
driver left.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import AlreadyExists, InvalidArgument, NotFound
from ..graph.plan import CubePlan
from .output import fmt_time

ZARR_FORMATS = (2, 3)
TIFF_BLOCKS = (512, 256, 128, 64, 32, 16)
Compute = Callable[[Any], Any]


def output_format(path: str | os.PathLike[str]) -> str:
    """``"zarr"`` or ``"tif"`` from the file name; anything else is refused."""
    suffix = Path(path).suffix.lower()
    if suffix == ".zarr":
        return "zarr"
    if suffix in (".tif", ".tiff"):
        return "tif"
    raise InvalidArgument(f"--out {os.fspath(path)!r}: name a .zarr store or a .tif/.tiff file")


def _is_zarr_store(path: Path) -> bool:
    return any((path / name).exists() for name in ("zarr.json", ".zgroup", ".zattrs"))


def check_target(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing output unless asked; never replace a directory that is not a zarr store."""
    if not path.exists() and not path.is_symlink():
        if not path.parent.is_dir():
            raise NotFound(f"cannot write {str(path)!r}: directory {str(path.parent)!r} does not exist")
        return
    if not overwrite:
        raise AlreadyExists(f"{str(path)!r} already exists: pass --overwrite to replace it")
    if path.is_dir() and not _is_zarr_store(path):
        raise InvalidArgument(f"{str(path)!r} is a directory but not a zarr store: not replacing it")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _replace(tmp: Path, target: Path) -> None:
    if target.exists() or target.is_symlink():
        _remove(target)
    os.replace(tmp, target)


def temporary(target: Path, tag: str | None = None) -> Path:
    """The hidden name beside ``target`` an output is written under until complete (``tag``: a fixed
    one, else random)."""
    return target.with_name(f".{target.name}.{tag or uuid.uuid4().hex[:8]}.part{target.suffix}")


def remove(path: Path) -> None:
    """Delete a file, a symlink or a directory tree (nothing if absent)."""
    _remove(path)


def _write_atomically(target: Path, overwrite: bool, write: Callable[[Path], None], tag: str | None = None) -> None:
    check_target(target, overwrite)
    tmp = temporary(target, tag)
    _remove(tmp)  # a fixed name: what an interrupted earlier attempt left
    try:
        write(tmp)
        _replace(tmp, target)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


def zarr_dataset(cube: xr.DataArray, zarr_format: int = 2) -> xr.Dataset:
    """The cube as a Dataset ready for ``to_zarr``: nodata as encoding, strings storable in the format."""
    if zarr_format not in ZARR_FORMATS:
        raise InvalidArgument(f"--zarr-format {zarr_format}: choose 2 or 3")
    name = cube.name or "cube"
    ds = cube.to_dataset(name=name)
    var = ds[name]
    fill = var.attrs.pop("_FillValue", None)
    if fill is not None:
        var.encoding["_FillValue"] = fill
    if zarr_format == 3:
        for coord in ("record_ids", "record_names", "band"):
            if coord in ds.coords and ds[coord].dtype.kind == "U":
                ds = ds.assign_coords({coord: (ds[coord].dims, ds[coord].values.astype(object))})
    return ds


def write_zarr(
    cube: xr.DataArray, path: Path, *, zarr_format: int = 2, overwrite: bool = False, compute: Compute,
    tag: str | None = None,
) -> None:
    """Stream the cube into a zarr store (see the module docstring; ``tag`` names the temporary)."""
    ds = zarr_dataset(cube, zarr_format)

    def write(tmp: Path) -> None:
        delayed = ds.to_zarr(tmp, mode="w-", zarr_format=zarr_format, consolidated=zarr_format == 2, compute=False)
        compute(delayed)

    _write_atomically(path, overwrite, write, tag)


def band_descriptions(cube: xr.DataArray) -> list[str]:
    """``<time>/<band>`` for each (image, band) of the cube, time-major."""
    return [f"{fmt_time(t)}/{b}" for t in cube.time.values for b in cube.band.values]


def tiff_block(chunks: tuple[int, int]) -> int | None:
    """The largest TIFF block size dividing both spatial chunk sizes (None: rechunk needed)."""
    for size in TIFF_BLOCKS:
        if chunks[0] % size == 0 and chunks[1] % size == 0:
            return size
    return None


def geotiff_array(cube: xr.DataArray) -> tuple[xr.DataArray, int]:
    """The cube flattened to ``(time × band, y, x)`` with band descriptions, and the TIFF block size."""
    t, b, h, w = cube.shape
    if t == 0:
        raise InvalidArgument("the cube has no image: a GeoTIFF needs at least one band")
    data = cube.data
    first = (data.chunks[2][0], data.chunks[3][0])
    block = tiff_block(first)
    if block is None:  # partial-block writes would rewrite compressed blocks: realign the chunks
        block = 256
        data = data.rechunk({2: max(block, first[0] // block * block), 3: max(block, first[1] // block * block)})
    flat = data.reshape(t * b, h, w)
    out = xr.DataArray(
        flat, dims=("band", "y", "x"),
        coords={"band": np.arange(1, t * b + 1), "y": cube.y.values, "x": cube.x.values},
        attrs={"long_name": tuple(band_descriptions(cube))},
        name=cube.name,
    )
    out = out.rio.write_crs(cube.rio.crs).rio.write_transform(cube.rio.transform())
    nodata = cube.rio.nodata if cube.rio.nodata is not None else cube.attrs.get("_FillValue")
    return out.rio.write_nodata(nodata, encoded=False), block


def write_geotiff(
    cube: xr.DataArray, path: Path, *, overwrite: bool = False, compute: Compute, lock: Any = None,
    tag: str | None = None,
) -> None:
    """Stream the cube into a tiled GeoTIFF (see the module docstring). ``lock`` serialises the window
    writes: a ``threading.Lock`` by default, a ``distributed.Lock`` when worker processes write."""
    arr, block = geotiff_array(cube)

    def write(tmp: Path) -> None:
        delayed = arr.rio.to_raster(
            tmp, driver="GTiff", tiled=True, blockxsize=block, blockysize=block, compress="deflate",
            interleave="band", BIGTIFF="IF_SAFER", lock=threading.Lock() if lock is None else lock, compute=False,
        )
        compute(delayed)

    _write_atomically(path, overwrite, write, tag)


def write_plan(plan: CubePlan, path: Path, *, overwrite: bool = False) -> None:
    """Write ``plan.to_json()`` (GDAL credentials left out) to ``path``."""
    text = plan.to_json(indent=1)
    _write_atomically(path, overwrite, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def read_plan(path: Path) -> CubePlan:
    """The CubePlan stored in ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"no plan file {str(path)!r}: write one with 'geocube cube … --plan FILE'") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"{str(path)!r} is not a plan (not JSON text)") from None
    return CubePlan.from_json(text)


def cube_info(cube: xr.DataArray) -> dict[str, Any]:
    """Shape, grid and images of a cube (for summaries)."""
    transform = cube.rio.transform()
    return {
        "dims": list(cube.dims),
        "shape": list(cube.shape),
        "dtype": str(cube.dtype),
        "nbytes": int(cube.nbytes),
        "crs": str(cube.rio.crs.to_string()) if cube.rio.crs is not None else None,
        "resolution": [abs(transform.a), abs(transform.e)],
        "bounds": list(cube.rio.bounds()),
        "bands": [str(b) for b in cube.band.values],
        "times": [fmt_time(t) for t in cube.time.values],
        "record_names": [str(n).split(",") for n in cube.record_names.values],
        "chunks": [int(cube.data.chunks[2][0]), int(cube.data.chunks[3][0])] if cube.shape[0] else None,
    }
