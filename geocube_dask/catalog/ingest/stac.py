"""Index STAC Items: each item becomes a record, each chosen asset a dataset of a chosen instance.

:func:`stac_index_requests` is a pure conversion (no database, no file opened): STAC Items → the
:class:`~geocube_dask.catalog.ingest.requests.IndexRequest` list that ``index_datasets`` takes.
:class:`StacMixin` adds ``index_stac`` to the catalogue, indexing them all in one transaction.

How an item becomes a record:

- **name**: the item id with every character other than a letter, a digit, ``-``, ``:`` or ``_``
  (``.``, ``/``, spaces…) replaced by ``_``: ``S2A_MSIL2A_20240105T103331_N0510.SAFE`` →
  ``S2A_MSIL2A_20240105T103331_N0510_SAFE``.
- **datetime**: the item's ``datetime``, else its ``start_datetime``.
- **tags** (``tags_from_properties=True``): ``collection`` = the item's collection id (if any), then
  every property except ``datetime`` (it is the record's datetime), ``created`` and ``updated`` (STAC
  bookkeeping that changes with every catalogue update and would defeat the records' de-duplication),
  and null values. Strings are kept as they are; numbers, booleans, lists and objects are JSON-encoded
  (``12``, ``12.5``, ``true``, ``["msi"]``, ``{"a":1}``). ``*`` and ``?`` — reserved for tag search
  patterns — are removed from keys and values.
- **aoi**: the item geometry (made valid, polygonal part, clipped to lon/lat bounds); ``None`` (the file
  footprint is used) when the item has no polygonal geometry.

How an asset becomes a dataset: uri = the asset's absolute href (relative hrefs are resolved against
the item's self link, else against the ItemCollection/Item file it was read from). When the asset
describes its bands (``raster:bands`` of the raster extension v1, or STAC 1.1 ``bands`` with
``data_type``, ``nodata``, ``raster:scale``/``raster:offset`` — asset-level fields apply to every
band), the internal dformat is ``(data_type, nodata, min, max)`` and the stored value ``v`` means
``v * scale + offset``, so ``real_min``/``real_max`` = ``min * scale + offset``/``max * scale + offset``
(a negative scale gives ``real_min > real_max``, a decreasing mapping). ``[min, max]``:

- integer data types: the full range of the data type (exact; the mapping is linear, any two points
  define it);
- float data types: the values that map onto the variable's ``[min, max]`` when the variable is known
  (``variables``); otherwise, with no scale/offset and no nodata, no dformat (the file's header
  decides), else ``[0, 1]`` (the mapping is still exact, but the real range checked against the variable
  is then ``[offset, offset + scale]``).

A missing ``nodata`` means "no nodata" when a dformat is built from the STAC metadata.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pystac
import shapely
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from ... import storage
from ...entities import DTYPES, DFormat, Instance, Variable, check_name, dtype_range
from ...errors import GeocubeError, IncompatibleDataset, InvalidArgument
from .requests import IndexRequest, NewRecord

if TYPE_CHECKING:
    from ...entities import Dataset

InstanceRef = Instance | str
AssetSpec = InstanceRef | tuple[InstanceRef, Sequence[int] | None] | None
VariableLookup = Mapping[str, Variable] | Callable[[str], Variable]

_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9\-:_]")
_SKIPPED_PROPERTIES = frozenset({"datetime", "created", "updated"})


# --- items in -------------------------------------------------------------------------------------


def _load(value: Any) -> tuple[list[pystac.Item], str | None]:
    """Items from any accepted form, and the href they were read from (to resolve relative hrefs)."""
    if isinstance(value, pystac.Item):
        return [value], None
    if isinstance(value, pystac.ItemCollection):
        return list(value.items), None
    if isinstance(value, Mapping):
        return _from_dict(dict(value)), None
    if isinstance(value, str | os.PathLike):
        href = os.fspath(value)
        if "://" not in href or href.startswith("file:"):
            href = storage.normalize_uri(href)
        try:
            data = pystac.StacIO.default().read_json(href)
        except (OSError, ValueError, pystac.STACError) as exc:
            raise InvalidArgument(f"cannot read STAC JSON from {href!r}: {exc}") from None
        return _from_dict(data, href), href
    if isinstance(value, Iterable):
        items: list[pystac.Item] = []
        for element in value:
            if isinstance(element, pystac.Item):
                items.append(element)
            elif isinstance(element, Mapping):
                items.extend(_from_dict(dict(element)))
            else:
                raise InvalidArgument(f"expected pystac Items (or their dicts), got {type(element).__name__}")
        return items, None
    raise InvalidArgument(
        f"cannot read STAC items from {type(value).__name__}: give a pystac Item, ItemCollection, list of "
        "Items, or the path/URL/dict of an Item or ItemCollection JSON"
    )


def _from_dict(data: dict[str, Any], href: str | None = None) -> list[pystac.Item]:
    kind = data.get("type")
    try:
        if kind == "FeatureCollection":
            return list(pystac.ItemCollection.from_dict(data, preserve_dict=False).items)
        if kind == "Feature":
            item = pystac.Item.from_dict(data, href=href, preserve_dict=False)
            return [item]
    except (KeyError, ValueError, TypeError, pystac.STACError) as exc:
        raise InvalidArgument(f"not a valid STAC Item/ItemCollection{f' ({href})' if href else ''}: {exc}") from None
    raise InvalidArgument(
        f"STAC JSON of type {kind!r}{f' ({href})' if href else ''}: give an Item (Feature) or an "
        "ItemCollection (FeatureCollection)"
    )


# --- records --------------------------------------------------------------------------------------


def record_name(item_id: str) -> str:
    """The record name for a STAC item id (see the module docstring)."""
    name = _INVALID_NAME_CHARS.sub("_", item_id or "")
    return check_name(name, f"record name made from item id {item_id!r}")


def _tag_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _clean(text: str) -> str:
    return text.replace("*", "").replace("?", "")


def record_tags(item: pystac.Item, from_properties: bool = True) -> dict[str, str]:
    """The record tags for ``item`` (see the module docstring)."""
    tags: dict[str, str] = {}
    if not from_properties:
        return tags
    if item.collection_id:
        tags["collection"] = _clean(item.collection_id)
    for key, value in item.properties.items():
        if key in _SKIPPED_PROPERTIES or value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        name = _clean(str(key))
        if name:
            tags[name] = _clean(_tag_text(value))
    return tags


def _item_datetime(item: pystac.Item) -> datetime:
    if item.datetime is not None:
        return item.datetime
    start = item.common_metadata.start_datetime
    if start is None:
        raise InvalidArgument(f"STAC item {item.id!r} has neither datetime nor start_datetime")
    return start


def _item_aoi(item: pystac.Item) -> BaseGeometry | None:
    if not item.geometry:
        return None
    try:
        geom = shapely.make_valid(shape(item.geometry))
    except (ValueError, TypeError, AttributeError, shapely.errors.ShapelyError) as exc:
        raise InvalidArgument(f"STAC item {item.id!r} has an unreadable geometry: {exc}") from None
    geom = shapely.force_2d(geom).intersection(box(-180.0, -90.0, 180.0, 90.0))
    polys = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type in ("Polygon", "MultiPolygon") and g.area > 0]
    if not polys:
        return None
    return polys[0] if len(polys) == 1 else shapely.union_all(polys)


def new_record(item: pystac.Item, tags_from_properties: bool = True) -> NewRecord:
    """The record ``item`` stands for."""
    return NewRecord(
        name=record_name(item.id),
        datetime=_item_datetime(item),
        tags=record_tags(item, tags_from_properties),
        aoi=_item_aoi(item),
    )


# --- assets ---------------------------------------------------------------------------------------


def _asset_specs(
    assets: Mapping[str, AssetSpec] | Sequence[str], instance: InstanceRef | None
) -> list[tuple[str, InstanceRef, tuple[int, ...] | None]]:
    if isinstance(assets, str):
        assets = [assets]
    if isinstance(assets, Mapping):
        pairs = list(assets.items())
    elif isinstance(assets, Sequence):
        pairs = [(key, None) for key in assets]
    else:
        raise InvalidArgument("assets must map asset keys to instances, or list asset keys (with instance=…)")
    if not pairs:
        raise InvalidArgument("no asset chosen: give assets={'asset key': instance, …}")
    specs = []
    for key, spec in pairs:
        bands: Sequence[int] | None = None
        if isinstance(spec, tuple):
            if len(spec) != 2:
                raise InvalidArgument(f"asset {key!r}: give an instance or (instance, bands), not {spec!r}")
            spec, bands = spec
        if spec is None:
            spec = instance
        if spec is None:
            raise InvalidArgument(f"asset {key!r} has no instance: map it to one, or pass instance=…")
        if not isinstance(spec, Instance | str):
            raise InvalidArgument(f"asset {key!r}: the instance must be an Instance or an instance id, not {spec!r}")
        if bands is not None:
            if isinstance(bands, str) or not all(
                isinstance(b, numbers.Integral) and not isinstance(b, bool) for b in bands
            ):
                raise InvalidArgument(f"asset {key!r}: bands must be 1-based integers, not {bands!r}")
            bands = tuple(int(b) for b in bands)
        specs.append((key, spec, bands))
    return specs


def _instance_id(instance: InstanceRef) -> str:
    return instance.id if isinstance(instance, Instance) else instance


def _lookup(variables: VariableLookup | None, instance: InstanceRef) -> Variable | None:
    if variables is None:
        return None
    key = _instance_id(instance)
    if isinstance(variables, Mapping):
        return variables.get(key)
    return variables(key)


def _absolute_href(item: pystac.Item, key: str, asset: pystac.Asset, base: str | None) -> str:
    href = asset.href
    if not pystac.utils.is_absolute_href(href):
        self_href = item.get_self_href() or base
        if self_href is None:
            raise InvalidArgument(
                f"asset {key!r} of STAC item {item.id!r} has the relative href {href!r} and the item has no self "
                "link to resolve it against: give the item a self link (item.set_self_href) or absolute hrefs"
            )
        href = pystac.utils.make_absolute_href(href, self_href)
    return storage.normalize_uri(href)


def _band_fields(asset: pystac.Asset) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Asset-level raster fields and the per-band list (raster:bands or STAC 1.1 bands)."""
    extra = asset.extra_fields
    per_band = extra.get("raster:bands") or extra.get("bands") or []
    if not isinstance(per_band, list):
        per_band = []
    level = {k: extra[k] for k in ("data_type", "nodata", "raster:scale", "raster:offset") if k in extra}
    return level, [b if isinstance(b, dict) else {} for b in per_band]


def _norm_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``data_type``, ``nodata``, ``scale``, ``offset`` of one band, whatever the extension version."""
    out = {
        "data_type": fields.get("data_type"),
        "nodata": fields.get("nodata"),
        "scale": fields.get("scale", fields.get("raster:scale")),
        "offset": fields.get("offset", fields.get("raster:offset")),
    }
    return out


def _nodata_value(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value.lower() == "nan":
            return math.nan
        raise IncompatibleDataset(f"{where}: nodata {value!r} cannot be stored in a dformat (give a number or nan)")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IncompatibleDataset(f"{where}: nodata must be a number, not {value!r}")
    return float(value)


def _number(value: Any, default: float, what: str, where: str) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise IncompatibleDataset(f"{where}: {what} must be a finite number, not {value!r}")
    return float(value)


def raster_mapping(
    asset: pystac.Asset,
    bands: tuple[int, ...] | None,
    variable: Variable | None,
    where: str,
) -> tuple[DFormat | None, float | None, float | None]:
    """(internal dformat, real_min, real_max) from an asset's raster metadata (see the module docstring).

    ``(None, None, None)`` when the asset does not describe its bands: the file's header decides.
    """
    level, per_band = _band_fields(asset)
    if not level and not per_band:
        return None, None, None
    if bands is not None:
        indexes = list(bands)
    elif variable is not None:
        indexes = list(range(1, len(variable.bands) + 1))
    else:
        indexes = list(range(1, max(len(per_band), 1) + 1))
    described = [_norm_fields({**level, **(per_band[i - 1] if i - 1 < len(per_band) else {})}) for i in indexes]
    first = described[0]
    for other in described[1:]:
        if json.dumps(other, default=str) != json.dumps(first, default=str):
            raise IncompatibleDataset(
                f"{where}: the chosen bands {indexes} have different data types, nodata, scales or offsets in "
                "the STAC metadata, and one dataset has one value mapping: index them as separate assets/bands"
            )
    scale = _number(first["scale"], 1.0, "scale", where)
    offset = _number(first["offset"], 0.0, "offset", where)
    if scale == 0:
        raise IncompatibleDataset(f"{where}: a raster scale of 0 maps every value to the offset")
    nodata = _nodata_value(first["nodata"], where)
    data_type = first["data_type"]
    identity = scale == 1.0 and offset == 0.0
    if data_type is None:
        if identity:
            return None, None, None
        raise IncompatibleDataset(
            f"{where}: the STAC metadata gives a scale/offset but no data_type, so the stored range is unknown: "
            "add data_type to the asset's raster:bands"
        )
    if data_type not in DTYPES:
        raise IncompatibleDataset(
            f"{where}: data_type {data_type!r} cannot be indexed: geocube_dask maps {', '.join(DTYPES)}"
        )
    if data_type.startswith(("int", "uint")):
        lo, hi = dtype_range(data_type)
    elif variable is not None:
        a = (variable.dformat.min - offset) / scale
        b = (variable.dformat.max - offset) / scale
        lo, hi = min(a, b), max(a, b)
    elif identity and nodata is None:
        return None, None, None
    else:
        lo, hi = 0.0, 1.0
    try:
        fmt = DFormat(data_type, nodata, lo, hi)
    except GeocubeError as exc:
        raise IncompatibleDataset(f"{where}: the STAC raster metadata gives no valid dformat ({exc})") from None
    return fmt, lo * scale + offset, hi * scale + offset


# --- the conversion -------------------------------------------------------------------------------


def stac_index_requests(
    items: Any,
    assets: Mapping[str, AssetSpec] | Sequence[str],
    *,
    instance: InstanceRef | None = None,
    tags_from_properties: bool = True,
    variables: VariableLookup | None = None,
) -> list[IndexRequest]:
    """One IndexRequest per (item, chosen asset), all the assets of an item sharing one new record.

    ``items``: a pystac Item, ItemCollection or list of Items, or the path/URL/dict of an Item or
    ItemCollection JSON. ``assets``: asset key → instance (an Instance or an instance id), or → (instance,
    bands) to choose the file's bands (1-based); or a list of asset keys, all for ``instance``.
    ``variables`` (instance id → Variable, a mapping or a function) lets float assets map onto the
    variable's range (see the module docstring). An item lacking a chosen asset is an error.
    """
    loaded, base = _load(items)
    specs = _asset_specs(assets, instance)
    requests: list[IndexRequest] = []
    for item in loaded:
        record = new_record(item, tags_from_properties)
        for key, inst, bands in specs:
            asset = item.assets.get(key)
            if asset is None:
                raise InvalidArgument(
                    f"STAC item {item.id!r} has no asset {key!r} (it has {', '.join(sorted(item.assets)) or 'none'})"
                )
            where = f"asset {key!r} of STAC item {item.id!r}"
            fmt, real_min, real_max = raster_mapping(asset, bands, _lookup(variables, inst), where)
            requests.append(
                IndexRequest(
                    uri=_absolute_href(item, key, asset, base),
                    record=record,
                    instance=inst,
                    bands=bands,
                    dformat=fmt,
                    real_min=real_min,
                    real_max=real_max,
                )
            )
    return requests


class StacMixin:
    """Adds :meth:`index_stac` to a catalogue that has ``index_datasets`` (and, optionally,
    ``get_instance``/``get_variable`` so float assets map onto their variable's range)."""

    def index_stac(
        self,
        items: Any,
        assets: Mapping[str, AssetSpec] | Sequence[str],
        progress: Any = None,
        *,
        instance: InstanceRef | None = None,
        tags_from_properties: bool = True,
    ) -> list[Dataset]:
        """Index STAC items (see :func:`stac_index_requests`) in one transaction; return the datasets."""
        requests = stac_index_requests(
            items, assets, instance=instance, tags_from_properties=tags_from_properties,
            variables=catalogue_variables(self),
        )
        return self.index_datasets(requests, progress=progress)  # type: ignore[attr-defined]


def catalogue_variables(catalogue: Any) -> Callable[[str], Variable] | None:
    """An instance id → Variable lookup through ``catalogue.get_instance``/``get_variable`` (cached per call)."""
    get_instance = getattr(catalogue, "get_instance", None)
    get_variable = getattr(catalogue, "get_variable", None)
    if get_instance is None or get_variable is None:
        return None
    cache: dict[str, Variable] = {}

    def lookup(instance_id: str) -> Variable:
        if instance_id not in cache:
            cache[instance_id] = get_variable(get_instance(instance_id).variable_id)
        return cache[instance_id]

    return lookup
