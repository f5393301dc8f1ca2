"""Errors a user can cause.

Every failure a caller can provoke raises a subclass of :class:`GeocubeError`. The message says what was
wrong and what to do about it. A catalogue operation that raises leaves the catalogue as it was.
"""

from __future__ import annotations


class GeocubeError(Exception):
    """Base class of every error geocube_dask raises on purpose."""


class InvalidArgument(GeocubeError, ValueError):
    """An argument has a wrong value or type."""


class InvalidName(InvalidArgument):
    """A name does not follow the naming rule of its entity."""


class InvalidDFormat(InvalidArgument):
    """A data format (dtype, nodata, min, max) is inconsistent."""


class InvalidGeometry(InvalidArgument):
    """A geometry is empty, invalid, of the wrong type or outside lon/lat bounds."""


class NotFound(GeocubeError, LookupError):
    """The entity asked for does not exist."""


class AlreadyExists(GeocubeError):
    """An entity with the same identity already exists."""


class DependencyError(GeocubeError):
    """The entity is still used by another one (e.g. a record referred to by datasets)."""


class IncompatibleDataset(InvalidArgument):
    """A file cannot be indexed as asked (band out of range, mixed dtypes, range mismatch…)."""


class UnreadableFile(GeocubeError):
    """A file is missing, is not a raster, or is truncated/corrupt."""


class SourceReadError(GeocubeError):
    """A source could not be read while computing a cube (names the uri)."""


class SchemaVersionError(GeocubeError):
    """The catalogue database was written by a newer geocube_dask than this one."""


class CatalogConnectionError(GeocubeError):
    """The catalogue database cannot be reached or opened."""


class ClusterConnectionError(GeocubeError, ConnectionError):
    """The dask scheduler to run on cannot be reached, or did not take the work."""


class JobConflict(GeocubeError):
    """A job cannot do what was asked now: another job holds its datasets, another process changed it,
    or it is in a state where the operation makes no sense."""


class ConsolidationWriteError(GeocubeError):
    """A consolidated file could not be written, assembled or uploaded (names the file)."""


class MissingDependency(GeocubeError, ImportError):
    """An optional dependency needed for what was asked is not installed (the message says which extra)."""


class AuthenticationError(GeocubeError):
    """The HTTP API got no valid token: give one with ``connect(url, token=…)`` (``geocube token create``)."""


class PermissionDenied(GeocubeError):
    """The HTTP API token's scope does not allow the operation (read < write < admin)."""


class RequestTooLarge(InvalidArgument):
    """An HTTP API request body or page is larger than the server accepts."""


class RemoteError(GeocubeError):
    """The HTTP API server failed unexpectedly or answered something that is not the API (see the message)."""
