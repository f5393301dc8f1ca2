"""geocube_dask: a catalogue of raster images and lazy dask cubes over them."""

from .catalog.tidy import TidyReport
from .entities import (
    Aoi,
    Container,
    Dataset,
    DatasetStatus,
    DFormat,
    Grid,
    Instance,
    JobState,
    Layout,
    Palette,
    PalettePoint,
    Record,
    Variable,
)
from .errors import (
    AlreadyExists,
    AuthenticationError,
    CatalogConnectionError,
    ClusterConnectionError,
    ConsolidationWriteError,
    DependencyError,
    GeocubeError,
    IncompatibleDataset,
    InvalidArgument,
    InvalidDFormat,
    InvalidGeometry,
    InvalidName,
    JobConflict,
    MissingDependency,
    NotFound,
    PermissionDenied,
    RemoteError,
    RequestTooLarge,
    SchemaVersionError,
    SourceReadError,
    UnreadableFile,
)
from .geocube import Geocube, connect
from .graph.chunk import clear_caches
from .graph.cube import cube_from_plan
from .graph.load import load
from .graph.plan import CubePlan
from .jobs import Job

__all__ = [
    "AlreadyExists", "Aoi", "AuthenticationError", "PermissionDenied", "RemoteError", "RequestTooLarge",
    "CatalogConnectionError", "ClusterConnectionError",
    "ConsolidationWriteError", "Container", "CubePlan", "DFormat",
    "Dataset", "DatasetStatus", "DependencyError", "Geocube", "GeocubeError", "Grid", "IncompatibleDataset",
    "Instance", "InvalidArgument", "InvalidDFormat", "InvalidGeometry", "InvalidName", "Job", "JobConflict",
    "JobState", "Layout", "MissingDependency", "NotFound", "Palette", "PalettePoint", "Record", "SchemaVersionError",
    "SourceReadError", "TidyReport", "UnreadableFile", "Variable", "clear_caches", "connect", "cube_from_plan", "load",
]
