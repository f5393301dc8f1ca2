"""The tasks that turn record images into one consolidated file in storage: write, assemble, upload.

- :func:`write_record`: one record's image → a COG in a local staging folder;
- :func:`assemble_file`: the file's COGs → one MUCOG (or the single COG as it is), described for
  indexing (each record's subdir, grid and overviews, read back from the file with GDAL);
- :func:`upload_file`: the file → its uri (fsspec; local folders and object storage), staging removed.

None of them touches the database: the last returns what to index, and the process that owns the job
indexes it. A failure raises an error naming the file (the reads' own errors name the source). The
staging folder is ``geocube.staging-dir`` in dask's config, else the system's temporary folder; every
task of one file must see the same folder (one machine, or a shared volume).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.config
import numpy as np
import rasterio
from affine import Affine

from ..errors import ConsolidationWriteError, GeocubeError
from ..projection import crs_string
from ..storage import upload

STAGING_CONFIG = "geocube.staging-dir"


@dataclass(frozen=True)
class FileSettings:
    """How every file of a consolidation is written."""

    options: Mapping[str, str]  # GDAL COG creation options
    overview_min_size: int = -1
    overview_resampling: str = "nearest"
    pattern: str = "mucog"
    nodata: float | None = None
    staging: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "options": dict(self.options), "overview_min_size": self.overview_min_size,
            "overview_resampling": self.overview_resampling, "pattern": self.pattern,
            "nodata": "nan" if self.nodata is not None and np.isnan(self.nodata) else self.nodata,
            "staging": self.staging
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FileSettings:
        nodata = d.get("nodata")
        return cls(dict(d["options"]), int(d["overview_min_size"]), d["overview_resampling"], d["pattern"],
                   None if nodata is None else float(nodata), d.get("staging"))


def record_subdir(index: int) -> str:
    """GDAL's name of the ``index``-th record (0-based) of a MUCOG: GTIFF_DIR counts images from 1."""
    return f"GTIFF_DIR:{index + 1}"


def staging_root(settings: FileSettings) -> Path:
    """Where this worker writes temporary files (see the module docstring)."""
    configured = settings.staging or dask.config.get(STAGING_CONFIG, None)
    return Path(configured or tempfile.gettempdir()) / "geocube-staging"


def staging_dir(settings: FileSettings, job_token: str, file_key: str) -> Path:
    """The staging folder of one file of one job (a plain name made from the file key)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in file_key)
    return staging_root(settings) / job_token / safe


def write_record(image: np.ndarray, folder: str, index: int, crs: str, transform: Sequence[float],
                 settings: FileSettings, uri: str) -> str:
    """Write one record's ``(band, y, x)`` image as a COG in ``folder``; return its path."""
    from .cog import write_cog

    _block_cache_set()
    path = Path(folder) / f"record-{index:05d}.tif"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_cog(image, str(path), crs, Affine(*transform[:6]), settings.nodata, dict(settings.options),
                  overview_min_size=settings.overview_min_size, overview_resampling=settings.overview_resampling)
    except GeocubeError:
        raise
    except Exception as exc:
        raise ConsolidationWriteError(f"cannot write record {index} of {uri}: {exc}") from exc
    return str(path)


def _block_cache_set() -> None:
    """Size GDAL's (process-wide) block cache before this task writes, if no task did yet: resizing it
    later, while a COG is being written in another thread, flushes that writer's blocks under it."""
    from ..gdal_settings import set_block_cache_once
    from ..graph.chunk import gdal_cachemax

    set_block_cache_once(gdal_cachemax())


def _describe(path: str, subdirs: Sequence[str]) -> dict[str, Any]:
    """Grid, overviews and dtype of each record of the written file, as GDAL reads them."""
    out: dict[str, Any] = {"records": []}
    for subdir in subdirs:
        name = f"{subdir}:{path}" if subdir else path
        with rasterio.open(name) as src:
            overviews = [[int(w), int(h)] for w, h in _overview_sizes(src)]
            out["records"].append({
                "subdir": subdir, "crs": crs_string(src.crs), "transform": list(src.transform)[:6],
                "width": src.width, "height": src.height, "count": src.count, "dtype": src.dtypes[0],
                "overviews": overviews,
            })
    return out


def _overview_sizes(src: Any) -> list[tuple[int, int]]:
    return [(-(-src.width // f), -(-src.height // f)) for f in src.overviews(1)]


def assemble_file(cog_paths: Sequence[str], folder: str, settings: FileSettings, uri: str) -> dict[str, Any]:
    """One file from its records' COGs: the COG itself for one record, else a MUCOG; described for indexing.

    Returns ``{"path": local file, "records": [{"subdir", "crs", "transform", "width", "height", …}]}``
    with the records in the order of ``cog_paths``.
    """
    from .mucog import assemble_mucog

    _block_cache_set()
    out = Path(folder) / "file.tif"
    try:
        if len(cog_paths) == 1:
            os.replace(cog_paths[0], out)
            subdirs = [""]
        else:
            assemble_mucog(list(cog_paths), str(out), settings.pattern)
            subdirs = [record_subdir(i) for i in range(len(cog_paths))]
        described = _describe(str(out), subdirs)
    except GeocubeError:
        raise
    except Exception as exc:
        raise ConsolidationWriteError(f"cannot assemble {uri} from {len(cog_paths)} record(s): {exc}") from exc
    for p in cog_paths:
        Path(p).unlink(missing_ok=True)
    return {"path": str(out), **described}


def upload_file(assembled: Mapping[str, Any], uri: str, folder: str) -> dict[str, Any]:
    """Copy the assembled file to ``uri`` and remove the staging folder; return what to index."""
    try:
        upload(assembled["path"], uri)
    except GeocubeError:
        raise
    except Exception as exc:
        raise ConsolidationWriteError(f"cannot upload {uri}: {exc}") from exc
    shutil.rmtree(folder, ignore_errors=True)
    return {"uri": uri, "records": assembled["records"]}
