"""The error hierarchy of ``geocube_dask.errors``: one base class, and the standard bases callers may catch."""

from __future__ import annotations

import inspect

import pytest

import geocube_dask
from geocube_dask import errors

# every exception class errors.py defines (read from the module, so a new class is checked too)
PUBLIC = sorted(
    (obj for name, obj in vars(errors).items()
     if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__
     and not name.startswith("_")),
    key=lambda cls: cls.__name__,
)

VALUE_ERRORS = ["InvalidArgument", "InvalidName", "InvalidDFormat", "InvalidGeometry", "IncompatibleDataset"]
LOOKUP_ERRORS = ["NotFound"]


def test_the_module_defines_the_documented_classes() -> None:
    names = {cls.__name__ for cls in PUBLIC}
    assert names == {
        "GeocubeError", "InvalidArgument", "InvalidName", "InvalidDFormat", "InvalidGeometry", "NotFound",
        "AlreadyExists", "DependencyError", "IncompatibleDataset", "UnreadableFile", "SourceReadError",
        "SchemaVersionError", "CatalogConnectionError", "ClusterConnectionError", "JobConflict",
        "ConsolidationWriteError", "MissingDependency", "AuthenticationError", "PermissionDenied", "RequestTooLarge",
        "RemoteError",
    }


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda cls: cls.__name__)
def test_every_error_is_a_geocube_error_exported_by_the_package(cls: type[Exception]) -> None:
    assert issubclass(cls, errors.GeocubeError)
    assert getattr(geocube_dask, cls.__name__) is cls
    assert cls.__name__ in geocube_dask.__all__
    with pytest.raises(errors.GeocubeError, match="what to fix"):
        raise cls("what to fix")


@pytest.mark.parametrize("name", VALUE_ERRORS)
def test_invalid_arguments_are_value_errors(name: str) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, errors.InvalidArgument)
    with pytest.raises(ValueError, match="bad value"):
        raise cls("bad value")


@pytest.mark.parametrize("name", LOOKUP_ERRORS)
def test_not_found_is_a_lookup_error(name: str) -> None:
    with pytest.raises(LookupError, match="no such"):
        raise getattr(errors, name)("no such thing")

