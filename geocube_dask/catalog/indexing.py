"""Read a raster file's header and turn it into the fields of a Dataset row (no database here).

``read_file_info`` opens the file with rasterio (local path, file://, http(s)://, s3:// through
GDAL's /vsicurl/ and /vsis3/) and returns what the catalogue stores about it. ``prepare_dataset``
checks an indexing request against the file and the variable and returns a ``PreparedDataset``
ready to insert. Both raise ``GeocubeError`` subclasses whose messages say what to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from datetime import datetime
from typing import Any

from ..entities import DFormat, Instance, Record, Variable


@dataclass(frozen=True)
class NewRecord:
    """Fields of a record to create (or reuse, if identical) while indexing a file.

    With ``aoi=None`` the record's AOI is the file's footprint in EPSG:4326.
    """

    name: str
    datetime: datetime | str
    tags: dict[str, str] | None = None
    aoi: Any = None  # shapely geometry in EPSG:4326, or None


@dataclass(frozen=True)
class IndexRequest:
    """One file (or subdir) to index as a dataset of ``record`` for ``instance``."""

    uri: str
    record: Record | str | NewRecord  # a Record, a record id, or a record to create from the file
    instance: Instance | str  # an Instance or an instance id
    bands: tuple[int, ...] | None = None  # 1-based; default: 1..number of variable bands
    dformat: DFormat | tuple[Any, ...] | None = None  # internal dformat; default from the file
    real_min: float | None = None
    real_max: float | None = None
    exponent: float = 1.0
    subdir: str = ""


@dataclass(frozen=True)
class FileInfo:
    """What the header of one raster (one subdir of a file) says."""

    uri: str  # as given by the user (normalised: local paths made absolute, file:// kept as path)
    subdir: str  # "" or e.g. "GTIFF_DIR:3"
    crs: str  # "EPSG:xxxx" when it has an authority code, else WKT
    transform: tuple[float, float, float, float, float, float]  # affine a, b, c, d, e, f
    width: int
    height: int
    count: int
    dtypes: tuple[str, ...]  # per band, numpy names
    nodatas: tuple[float | None, ...]  # per band
    overviews: tuple[tuple[int, int], ...]  # (width, height) of each overview level, finest first
    footprint_wkt: str  # file bounds polygon in the file CRS
    footprint_4326_wkt: str  # the same, densified and transformed to EPSG:4326 (lon, lat)


@dataclass(frozen=True)
class PreparedDataset:
    """Every field of a Dataset row except its id, record, instance and status."""

    uri: str
    subdir: str
    bands: tuple[int, ...]
    dformat: DFormat
    real_min: float
    real_max: float
    exponent: float
    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int
    overviews: tuple[tuple[int, int], ...]
    footprint_wkt: str
    footprint_4326_wkt: str


def read_file_info(uri: str, subdir: str = "") -> FileInfo:
    """Open ``uri`` (and ``subdir``) with rasterio and describe it. Raises ``UnreadableFile``."""
    raise NotImplementedError


def prepare_dataset(
    info: FileInfo,
    variable: Variable,
    bands: Sequence[int] | None = None,
    dformat: DFormat | Sequence[object] | None = None,
    real_min: float | None = None,
    real_max: float | None = None,
    exponent: float = 1.0,
) -> PreparedDataset:
    """Validate an indexing request against the file and the variable. Raises ``GeocubeError``s."""
    raise NotImplementedError
