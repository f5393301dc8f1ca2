"""How values travel between the API and its client: JSON through pydantic's TypeAdapter.

Entities are stdlib dataclasses: :func:`dump` writes one (or a list, a tuple…) as JSON-able data given
its type, :func:`load` reads it back, validated. Geometries travel as GeoJSON mappings (a WKT string is
also accepted on input). Shared by :mod:`geocube_dask.api.routes` and :mod:`geocube_dask.client`.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import UTC, datetime
from typing import Annotated, Any

import shapely
import shapely.geometry
from pydantic import BaseModel, ConfigDict, TypeAdapter, WithJsonSchema

# a geometry on the wire: a GeoJSON geometry mapping (in), WKT also accepted
GEOJSON_SCHEMA = {"type": "object", "description": "a GeoJSON geometry", "required": ["type"],
                  "properties": {"type": {"type": "string"}}}
GeoJSON = Annotated[dict[str, Any], WithJsonSchema(GEOJSON_SCHEMA)]
GeometryIn = Annotated[dict[str, Any] | str, WithJsonSchema(
    {"anyOf": [GEOJSON_SCHEMA, {"type": "string", "description": "WKT"}]})]


@functools.cache
def adapter(tp: Any) -> TypeAdapter[Any]:
    """The (cached) TypeAdapter of a type."""
    return TypeAdapter(tp)


def dump(value: Any, tp: Any) -> Any:
    """``value`` (of type ``tp``) as JSON-able data."""
    return adapter(tp).dump_python(value, mode="json")


def load(data: Any, tp: Any) -> Any:
    """JSON data read back as ``tp`` (validated); datetimes in ``datetime.UTC``, as the catalogue gives them."""
    return _utc(adapter(tp).validate_python(data))


def _utc(value: Any) -> Any:
    """``value`` with every aware datetime in it (in dataclasses, lists, tuples, dicts) in ``datetime.UTC``
    (pydantic gives its own fixed-offset tzinfo)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _utc(getattr(value, f.name)) for f in dataclasses.fields(value)
                   if isinstance(getattr(value, f.name), datetime | list | tuple | dict)
                   or dataclasses.is_dataclass(getattr(value, f.name))}
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, list):
        return [_utc(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_utc(v) for v in value)
    if isinstance(value, dict):
        return {k: _utc(v) for k, v in value.items()}
    return value


def geometry_out(geom: Any) -> dict[str, Any] | None:
    """A shapely geometry as a GeoJSON mapping (None stays None)."""
    return None if geom is None else shapely.geometry.mapping(geom)


def geometry_in(value: Any) -> Any:
    """A GeoJSON mapping (or anything ``shapely.geometry.shape`` reads) as a shapely geometry; None stays None."""
    return None if value is None else shapely.geometry.shape(value)


def geometry_arg(value: Any) -> Any:
    """A geometry argument for the wire: shapely (or anything with ``__geo_interface__``) → GeoJSON;
    strings (WKT), mappings and None as they are."""
    if value is None or isinstance(value, str | dict):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return shapely.from_wkb(bytes(value)).wkt
    if hasattr(value, "__geo_interface__"):
        return dict(value.__geo_interface__)
    return value


def loose(schema: dict[str, Any]) -> Any:
    """A request field documented by ``schema`` but handed to the catalogue as sent: the catalogue checks
    it and raises the same error (class and message) as for a Python caller."""
    return Annotated[Any, WithJsonSchema(schema)]


STR = {"type": "string"}
Str = loose(STR)
OptStr = loose({"anyOf": [STR, {"type": "null"}]})
Bool = loose({"type": "boolean"})
Number = loose({"type": "number"})
OptNumber = loose({"anyOf": [{"type": "number"}, {"type": "null"}]})
StrList = loose({"type": "array", "items": STR})
IntList = loose({"type": "array", "items": {"type": "integer"}})
StrMap = loose({"type": "object", "additionalProperties": STR})
OptStrMap = loose({"anyOf": [{"type": "object", "additionalProperties": STR}, {"type": "null"}]})
TagFilter = loose({"anyOf": [{"type": "object", "additionalProperties": {"anyOf": [STR, {"type": "null"}]}},
                             {"type": "null"}]})
TimeRange = loose({"anyOf": [{"type": "array", "items": {"anyOf": [STR, {"type": "null"}]}, "minItems": 2,
                              "maxItems": 2}, {"type": "null"}]})
OptGeometry = loose({"anyOf": [GEOJSON_SCHEMA, {"type": "string", "description": "WKT"}, {"type": "null"}]})
Geometry = loose({"anyOf": [GEOJSON_SCHEMA, {"type": "string", "description": "WKT"}]})
DFormatIn = loose({"anyOf": [{"type": "object", "properties": {
    "dtype": STR, "nodata": {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]},
    "min": {"type": "number"}, "max": {"type": "number"}}, "required": ["dtype", "min", "max"]},
    {"type": "array", "minItems": 4, "maxItems": 4}]})
OptDFormatIn = loose({"anyOf": [DFormatIn.__metadata__[0].json_schema, {"type": "null"}]})
Anything = loose({})


class Body(BaseModel):
    """A request body: unknown fields are refused; :meth:`args` gives the fields sent, as keyword
    arguments for the catalogue method (the ones left out take the method's defaults)."""

    model_config = ConfigDict(extra="forbid")

    def args(self, *skip: str) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.model_fields_set if k not in skip}
