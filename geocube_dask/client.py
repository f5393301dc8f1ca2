"""The remote catalogue: the same methods as :class:`~geocube_dask.geocube.Geocube`, over the HTTP API.

``gd.connect("http://host:8000", token=…)`` returns a :class:`RemoteGeocube`. Each catalogue method is one
request to ``geocube serve``; arguments, return types and errors are the local ones (an error answered as
``{"error": "NotFound", "detail": …}`` is raised again as :class:`~geocube_dask.errors.NotFound` with the
same message). Cubes and timeseries are planned by the server and computed here (``cube_from_plan``):
pixels never pass through the server; this process's workers read the files, with this process's GDAL
settings (``gdal_env`` never leaves it). Listing methods without ``limit`` page through everything.
Jobs run on the server (``job.run()`` returns when the server's run does).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import xarray as xr

from . import errors as E
from .api import wire
from .catalog.aois import aoi_id_arg
from .catalog.consolidation import LayoutFile
from .catalog.db.filters import check_paging, check_tag_filters
from .catalog.ingest.requests import IndexRequest, NewRecord, PreparedDataset
from .catalog.ingest.stac import StacMixin
from .catalog.jobs import job_states
from .catalog.refs import dataset_ids, instance_id, name_arg, record_id, variable_key
from .catalog.tidy import TidyReport
from .entities import (
    Aoi,
    ApiToken,
    Cell,
    ConsolidationParams,
    Container,
    Dataset,
    DatasetStatus,
    DFormat,
    Grid,
    Instance,
    JobInfo,
    JobState,
    JobType,
    Layout,
    LogEntry,
    Palette,
    Record,
    Task,
    Variable,
)
from .gdal_settings import gdal_env as capture_gdal_env
from .geocube import TimeseriesPlan, cube_of, timeseries_from_plan
from .graph.grid import make_grid
from .graph.plan import CubePlan, PlanRecord
from .jobs import JobView
from .projection import crs_string

DEFAULT_TIMEOUT = 60.0


def enc(value: Any) -> Any:
    """An argument as JSON data: entities by id (layouts, grids and palettes by name), geometries as GeoJSON,
    datetimes as ISO 8601, enums by value, sequences as lists; NaN as "nan"."""
    if isinstance(value, Record | Instance | Variable | Dataset | JobInfo | ApiToken):
        return value.id
    if isinstance(value, Layout | Grid | Palette):
        return value.name
    if isinstance(value, DFormat):
        return value.to_json()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="us"))
    if isinstance(value, np.generic):
        return enc(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf": JSON has no such numbers; the catalogue reads or refuses them
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: enc(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "__geo_interface__") and not isinstance(value, Mapping):
        return dict(value.__geo_interface__)
    if isinstance(value, bytes | bytearray | memoryview):
        return wire.geometry_arg(value)
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise E.InvalidArgument(f"mapping keys must be strings, not {bad[0]!r}")
        return {k: enc(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [enc(v) for v in value.tolist()]
    if isinstance(value, Iterable):
        return [enc(v) for v in value]
    return value


def _crs(value: Any) -> Any:
    """A CRS argument as text (a pyproj/rasterio CRS object → ``EPSG:n`` or WKT)."""
    return value if value is None or isinstance(value, str | int) else crs_string(value)


def _path(value: Any) -> str:
    """A reference for a URL path (entities by id; '/' kept for the routes that take one)."""
    ref = enc(value)
    if not isinstance(ref, str | int) or isinstance(ref, bool):
        raise E.InvalidArgument(f"give a name or an id (a string), not {value!r}")
    return quote(str(ref), safe="/")


def error_from(response: httpx.Response) -> E.GeocubeError:
    """The GeocubeError an API error response stands for (same class and message)."""
    try:
        body = response.json()
        name, detail = body["error"], body["detail"]
    except (ValueError, KeyError, TypeError):
        return E.RemoteError(f"the server answered {response.status_code} to {response.request.method} "
                             f"{response.request.url.path}: {response.text[:300]}")
    cls = getattr(E, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, E.GeocubeError)):
        cls = E.RemoteError
    return cls(detail)


class RemoteGeocube(StacMixin):
    """A catalogue served by ``geocube serve``: the methods of the local :class:`Geocube`."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float | None = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self._info: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"RemoteGeocube({self.url!r})"

    def __enter__(self) -> RemoteGeocube:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    # --- requests -------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, json: Any = None, params: Any = None,
              timeout: Any = httpx.USE_CLIENT_DEFAULT) -> Any:
        try:
            response = self._http.request(method, path, json=None if json is None else enc(json),
                                          params=params, timeout=timeout)
        except httpx.TransportError as exc:
            raise E.CatalogConnectionError(
                f"cannot reach the Geocube API at {self.url} ({exc}): is `geocube serve` running there?"
            ) from None
        if response.status_code >= 400:
            raise error_from(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _get(self, tp: Any, path: str, **params: Any) -> Any:
        clean = {k: enc(v) for k, v in params.items() if v is not None}
        return wire.load(self._call("GET", path, params=clean), tp)

    def _post(self, tp: Any, path: str, body: Mapping[str, Any] | None = None, method: str = "POST") -> Any:
        data = self._call(method, path, json=dict(body or {}))
        return None if tp is None else wire.load(data, tp)

    def _all_pages(self, fetch: Callable[[int | None, int], list[Any]], limit: int | None, page: int) -> list[Any]:
        """One page, or with ``limit=None`` (and page 0) every page, in pages of the server's maximum."""
        check_paging(limit, page)  # the catalogue's own checks, so that the errors are the same
        if limit is not None or page:
            return fetch(limit, page)
        size = self.info()["max_page_size"]
        out: list[Any] = []
        n = 0
        while True:
            part = fetch(size, n)
            out.extend(part)
            if len(part) < size:
                return out
            n += 1

    def info(self) -> dict[str, Any]:
        """The server's backend, this token's scope and the maximum page size (``GET /info``)."""
        if self._info is None:
            self._info = self._call("GET", "/info")
        return self._info

    @property
    def backend(self) -> str:
        """The server's catalogue backend (``sqlite`` or ``postgresql``)."""
        return self.info()["backend"]

    # --- variables and palettes -----------------------------------------------------------------------

    def create_variable(self, name: str, dformat: Any, bands: Sequence[str], unit: str = "", description: str = "",
                        palette: str | None = None, resampling: str = "near") -> Variable:
        return self._post(Variable, "/variables", dict(name=name, dformat=dformat, bands=bands, unit=unit,
                                                       description=description, palette=palette,
                                                       resampling=resampling))

    def get_variable(self, variable: Variable | str) -> Variable:
        variable_key(variable)
        return self._get(Variable, f"/variables/{_path(variable)}")

    def list_variables(self, name: str | None = None, case_insensitive: bool = False, limit: int | None = None,
                       page: int = 0) -> list[Variable]:
        return self._all_pages(lambda lim, p: self._get(list[Variable], "/variables", name=name,
                                                        case_insensitive=case_insensitive, limit=lim, page=p),
                               limit, page)

    def update_variable(self, variable: Variable | str, *, name: str | None = None, unit: str | None = None,
                        description: str | None = None, palette: str | None = None, resampling: str | None = None,
                        **forbidden: Any) -> Variable:
        body = dict(name=name, unit=unit, description=description, palette=palette, resampling=resampling,
                    **forbidden)
        return self._post(Variable, f"/variables/{_path(variable)}", body, method="PATCH")

    def delete_variable(self, variable: Variable | str) -> None:
        self._call("DELETE", f"/variables/{_path(variable)}")

    def get_consolidation_params(self, variable: Any) -> ConsolidationParams:
        return self._get(ConsolidationParams, f"/consolidation/{_path(variable)}")

    def configure_consolidation(self, variable: Variable | str, dformat: Any = None, exponent: float = 1,
                                compression: str = "lossless", max_error: float | None = None,
                                creation_options: dict[str, Any] | None = None,
                                resampling: str | None = None) -> ConsolidationParams:
        return self._post(ConsolidationParams, f"/consolidation/{_path(variable)}", dict(
            dformat=dformat, exponent=exponent, compression=compression, max_error=max_error,
            creation_options=creation_options, resampling=resampling), method="PUT")

    def set_consolidation_params(self, params: ConsolidationParams) -> ConsolidationParams:
        """Store a variable's consolidation settings (checked by the server as by ``configure_consolidation``)."""
        if not isinstance(params, ConsolidationParams):
            raise E.InvalidArgument(f"give ConsolidationParams, not {params!r}")
        return self.configure_consolidation(
            params.variable_id, params.dformat, params.exponent, params.compression, params.max_error,
            dict(params.creation_options), params.resampling)

    def create_palette(self, name: str, points: Iterable[Any], replace: bool = False) -> Palette:
        return self._post(Palette, "/palettes", dict(name=name, points=points, replace=replace))

    def get_palette(self, name: str) -> Palette:
        return self._get(Palette, f"/palettes/{_path(name)}")

    def list_palettes(self, name: str | None = None) -> list[Palette]:
        return self._get(list[Palette], "/palettes", name=name)

    def delete_palette(self, name: str) -> None:
        self._call("DELETE", f"/palettes/{_path(name)}")

    # --- instances ------------------------------------------------------------------------------------

    def instantiate(self, variable: Variable | str, name: str, metadata: Mapping[str, str] | None = None) -> Instance:
        return self._post(Instance, "/instances", dict(variable=variable, name=name, metadata=metadata))

    def get_instance(self, instance: Instance | Variable | str, name: str | None = None) -> Instance:
        if name is None and not isinstance(instance, str):
            instance_id(instance)  # the catalogue's check: an Instance or an id (a Variable needs a name)
        return self._get(Instance, f"/instances/{_path(instance)}", name=name)

    def list_instances(self, variable: Variable | str | None = None, name: str | None = None) -> list[Instance]:
        return self._get(list[Instance], "/instances", variable=variable, name=name)

    def update_instance(self, instance: Instance | str, *, name: str | None = None,
                        add_metadata: Mapping[str, str] | None = None,
                        remove_metadata: Iterable[str] | None = None) -> Instance:
        return self._post(Instance, f"/instances/{_path(instance)}", dict(
            name=name, add_metadata=add_metadata, remove_metadata=remove_metadata), method="PATCH")

    def delete_instance(self, instance: Instance | str) -> None:
        self._call("DELETE", f"/instances/{_path(instance)}")

    # --- records and AOIs -----------------------------------------------------------------------------

    def create_record(self, name: str, datetime: Any, tags: Mapping[str, str] | None = None, aoi: Any = None,
                      exist_ok: bool = False) -> Record:
        return self._post(Record, "/records", dict(name=name, datetime=datetime, tags=tags, aoi=aoi,
                                                   exist_ok=exist_ok))

    def create_records(self, items: Sequence[Mapping[str, Any] | NewRecord], exist_ok: bool = False) -> list[Record]:
        return self._post(list[Record], "/records/batch", dict(items=items, exist_ok=exist_ok))

    def get_record(self, record: Record | str) -> Record:
        record_id(record)
        return self._get(Record, f"/records/{_path(record)}")

    def list_records(self, name: str | None = None, tags: Mapping[str, str | None] | None = None,
                     time: tuple[Any, Any] | None = None, aoi: Any = None, case_insensitive: bool = False,
                     limit: int | None = None, page: int = 0) -> list[Record]:
        if tags is not None:
            check_tag_filters(tags)
        return self._all_pages(lambda lim, p: self._post(list[Record], "/records/search", dict(
            name=name, tags=tags, time=time, aoi=aoi, case_insensitive=case_insensitive, limit=lim, page=p)),
            limit, page)

    def get_record_aoi(self, record: Record | str) -> Any:
        return wire.geometry_in(self._call("GET", f"/records/{_path(record)}/aoi")["geometry"])

    def add_record_tags(self, record: Record | str, tags: Mapping[str, str]) -> Record:
        return self._post(Record, f"/records/{_path(record)}/tags", dict(tags=tags))

    def remove_record_tags(self, record: Record | str, keys: Iterable[str]) -> Record:
        return self._post(Record, f"/records/{_path(record)}/tags/remove", dict(keys=keys))

    def delete_records(self, ids: Iterable[Record | str], no_fail: bool = False) -> list[str]:
        return self._post(list[str], "/records/delete", dict(ids=ids, no_fail=no_fail))

    def create_aoi(self, geometry: Any) -> int:
        return self._post(dict, "/aois", dict(geometry=geometry))["id"]

    def get_aoi(self, aoi_id: int) -> Aoi:
        aoi_id_arg(aoi_id)
        data = self._call("GET", f"/aois/{_path(aoi_id)}")
        return Aoi(data["id"], wire.geometry_in(data["geometry"]))

    def list_aois(self, aoi: Any = None, limit: int | None = None, page: int = 0) -> list[Aoi]:
        def fetch(lim: int | None, p: int) -> list[Aoi]:
            data = self._call("POST", "/aois/search", json=dict(aoi=aoi, limit=lim, page=p))
            return [Aoi(d["id"], wire.geometry_in(d["geometry"])) for d in data]

        return self._all_pages(fetch, limit, page)

    def delete_aoi(self, aoi_id: int) -> None:
        aoi_id_arg(aoi_id)
        self._call("DELETE", f"/aois/{_path(aoi_id)}")

    # --- datasets and containers ----------------------------------------------------------------------

    def index_dataset(self, uri: str, record: Record | str | NewRecord, instance: Instance | str,
                      bands: Sequence[int] | None = None, dformat: Any = None, real_min: float | None = None,
                      real_max: float | None = None, exponent: float = 1.0, subdir: str = "") -> Dataset:
        return self._post(Dataset, "/datasets/index", dict(
            uri=uri, record=record, instance=instance, bands=bands, dformat=dformat, real_min=real_min,
            real_max=real_max, exponent=exponent, subdir=subdir))

    def index_datasets(self, requests: Iterable[IndexRequest], progress: Any = None) -> list[Dataset]:
        if isinstance(requests, IndexRequest) or not isinstance(requests, Iterable):
            raise E.InvalidArgument("index_datasets takes a list of IndexRequest")
        reqs = list(requests)
        if progress is not None and not callable(progress):
            raise E.InvalidArgument("progress must be a callable(n_done, n_total) or None")
        out = self._post(list[Dataset], "/datasets/index-batch", dict(requests=reqs))
        if progress is not None:  # the server read every file: report them all, in order
            for n in range(len(reqs)):
                progress(n + 1, len(reqs))
        return out

    def add_datasets(self, items: Sequence[tuple[Record | str, Instance | str, PreparedDataset]],
                     status: DatasetStatus | str = DatasetStatus.ACTIVE, managed: bool = False) -> list[Dataset]:
        from .catalog.ingest.prepared import check_all_prepared

        rows = list(items)
        check_all_prepared([row[2] for row in rows if isinstance(row, tuple | list) and len(row) == 3])
        return self._post(list[Dataset], "/datasets", dict(items=rows, status=status, managed=managed))

    def get_dataset(self, dataset: Dataset | int) -> Dataset:
        dataset_ids([dataset])
        return self._get(Dataset, f"/datasets/{_path(dataset)}")

    def list_datasets(self, instance: Instance | str | None = None, records: Iterable[Record | str] | None = None,
                      status: Any = None, uri: str | None = None, aoi: Any = None, limit: int | None = None,
                      page: int = 0) -> list[Dataset]:
        return self._all_pages(lambda lim, p: self._post(list[Dataset], "/datasets/search", dict(
            instance=instance, records=records, status=status, uri=uri, aoi=aoi, limit=lim, page=p)), limit, page)

    def find_datasets(self, instances: Any, *, records: Iterable[Record | str] | None = None, tags: Any = None,
                      time: Any = None, aoi: Any = None, status: Any = DatasetStatus.ACTIVE,
                      case_insensitive: bool = False, name: str | None = None,
                      footprints: bool = True) -> list[tuple[Record, Dataset]]:
        data = self._call("POST", "/datasets/find", json=dict(
            instances=instances, records=records, tags=tags, time=time, aoi=aoi, status=status,
            case_insensitive=case_insensitive, name=name, footprints=footprints))
        return [(wire.load(d["record"], Record), wire.load(d["dataset"], Dataset)) for d in data]

    def set_datasets_status(self, ids: Iterable[Dataset | int], status: DatasetStatus | str) -> None:
        self._call("POST", "/datasets/status", json=dict(ids=ids, status=status))

    def delete_datasets(self, ids: Iterable[Dataset | int]) -> list[str]:
        return self._post(list[str], "/datasets/delete", dict(ids=ids))

    def get_container(self, uri: str) -> Container:
        return self._get(Container, "/container", uri=uri)

    def list_containers(self, uri: str | None = None, managed: bool | None = None, limit: int | None = None,
                        page: int = 0) -> list[Container]:
        return self._all_pages(lambda lim, p: self._get(list[Container], "/containers", uri=uri, managed=managed,
                                                        limit=lim, page=p), limit, page)

    def update_dataset_mapping(self, datasets: Iterable[Dataset | int] | None = None, *,
                               instance: Instance | str | None = None, records: Iterable[Record | str] | None = None,
                               dformat: Any = None, real_min: float | None = None, real_max: float | None = None,
                               exponent: float | None = None) -> list[Dataset]:
        return self._post(list[Dataset], "/datasets/mapping", dict(
            datasets=datasets, instance=instance, records=records, dformat=dformat, real_min=real_min,
            real_max=real_max, exponent=exponent))

    def tidy(self, dry_run: bool = False, *, aois: bool = True, records: bool = True, containers: bool = True,
             instances: bool = False, variables: bool = False, layouts: bool = False,
             grids: bool = False) -> TidyReport:
        return self._post(TidyReport, "/tidy", dict(
            dry_run=dry_run, aois=aois, records=records, containers=containers, instances=instances,
            variables=variables, layouts=layouts, grids=grids))

    # --- layouts and grids ----------------------------------------------------------------------------

    def create_layout(self, name: str, grid: str = "regular", crs: Any = None, resolution: float | None = None,
                      cell_size: int = 4096, origin: tuple[float, float] = (0.0, 0.0), block_size: int = 256,
                      max_records: int = 1000, overview_min_size: int = -1, pattern: str = "mucog",
                      compression: str = "zstd") -> Layout:
        return self._post(Layout, "/layouts", dict(
            name=name, grid=grid, crs=_crs(crs), resolution=resolution, cell_size=cell_size, origin=origin,
            block_size=block_size, max_records=max_records, overview_min_size=overview_min_size, pattern=pattern,
            compression=compression))

    def get_layout(self, name: str) -> Layout:
        return self._get(Layout, f"/layouts/{_path(name_arg(name, 'layout'))}")

    def list_layouts(self, name: str | None = None) -> list[Layout]:
        return self._get(list[Layout], "/layouts", name=name)

    def delete_layout(self, name: str) -> None:
        self._call("DELETE", f"/layouts/{_path(name_arg(name, 'layout'))}")

    def create_grid(self, name: str, cells: Iterable[Any], description: str = "") -> Grid:
        if not isinstance(cells, str | Mapping) and isinstance(cells, Iterable):
            cells = [[c[0], _crs(c[1]), c[2]] if isinstance(c, tuple | list) and len(c) == 3 else c for c in cells]
        return self._post(Grid, "/grids", dict(name=name, cells=cells, description=description))

    def get_grid(self, name: str) -> Grid:
        return self._get(Grid, f"/grids/{_path(name_arg(name, 'grid'))}")

    def list_grids(self, name: str | None = None) -> list[Grid]:
        return self._get(list[Grid], "/grids", name=name)

    def delete_grid(self, name: str) -> None:
        self._call("DELETE", f"/grids/{_path(name_arg(name, 'grid'))}")

    def grid_cells(self, name: str, aoi: Any = None) -> list[Cell]:
        return self._post(list[Cell], "/grid-cells", dict(name=name, aoi=aoi))

    def tile_aoi(self, aoi: Any, layout: Layout | str, aoi_crs: Any = "EPSG:4326") -> list[Any]:
        from affine import Affine

        from .consolidate.cells import CellGrid

        data = self._call("POST", "/layout-cells", json=dict(aoi=aoi, layout=layout, aoi_crs=_crs(aoi_crs)))
        return [CellGrid(d["id"], d["crs"], Affine(*d["transform"]), tuple(d["shape"])) for d in data]

    def layout_files(self, layout: str, instance: Instance | str, cells: Iterable[str] | None = None
                     ) -> list[LayoutFile]:
        return self._post(list[LayoutFile], "/layout-files", dict(layout=layout, instance=instance, cells=cells))

    # --- cubes and timeseries -------------------------------------------------------------------------

    def get_cube_plan(
        self,
        instance: Instance | str | Sequence[Instance | str],
        *,
        records: Sequence[Record | str] | None = None,
        tags: dict[str, str | None] | None = None,
        time: tuple[Any, Any] | None = None,
        groups: Sequence[Sequence[Record | str]] | None = None,
        crs: Any = None,
        resolution: float | Sequence[float] | None = None,
        bounds: Sequence[float] | None = None,
        transform: Any = None,
        shape: tuple[int, int] | None = None,
        aoi: Any = None,
        aoi_crs: Any = "EPSG:4326",
        like: Any = None,
        resampling: str | None = None,
        group_by: None | str | Callable[[PlanRecord], Hashable] = None,
        chunks: int | Sequence[int] | None = 1024,
        on_error: str = "raise",
        gdal_env: Mapping[str, Any] | None = None,
    ) -> CubePlan:
        """The server's plan of a cube (see :meth:`Geocube.get_cube_plan`), carrying this process's GDAL
        settings (``gdal_env`` stays here). ``like=`` is resolved here to its grid."""
        _check_group_by(group_by)
        if like is not None:
            grid = make_grid(crs, resolution, bounds, transform=transform, shape=shape, aoi=aoi, aoi_crs=aoi_crs,
                             like=like)
            crs, transform, shape = grid.crs, grid.transform, (grid.height, grid.width)
        env = capture_gdal_env(gdal_env)  # checked before asking the server, as locally
        if transform is not None and hasattr(transform, "a"):
            transform = tuple(transform)[:6]
        data = self._call("POST", "/cube/plan", json=dict(
            instance=instance, records=records, tags=tags, time=time, groups=groups, crs=_crs(crs),
            resolution=resolution, bounds=bounds, transform=transform, shape=shape, aoi=aoi, aoi_crs=_crs(aoi_crs),
            resampling=resampling, group_by=group_by, chunks=chunks, on_error=on_error))
        return dataclasses.replace(CubePlan.from_json(data), gdal_env=env)

    def get_cube(self, instance: Instance | str | Sequence[Instance | str], *, drop_empty: bool = False,
                 **request: Any) -> xr.DataArray:
        """A lazy cube planned by the server and read by this process's workers (see :meth:`Geocube.get_cube`)."""
        return cube_of(self.get_cube_plan(instance, **request), drop_empty)

    def get_timeseries_plan(
        self,
        instance: Instance | str | Sequence[Instance | str],
        *,
        point: tuple[float, float] | None = None,
        geometry: Any = None,
        crs: Any = "EPSG:4326",
        time: tuple[Any, Any] | None = None,
        records: Sequence[Record | str] | None = None,
        tags: dict[str, str | None] | None = None,
        reduce: str | None = "mean",
        resampling: str | None = None,
        group_by: None | str | Callable[[PlanRecord], Hashable] = None,
        grid_crs: Any = None,
        resolution: float | Sequence[float] | None = None,
        on_error: str = "raise",
        gdal_env: Mapping[str, Any] | None = None,
    ) -> TimeseriesPlan:
        """The server's plan of a timeseries (see :meth:`Geocube.get_timeseries_plan`), with this process's
        GDAL settings."""
        _check_group_by(group_by)
        env = capture_gdal_env(gdal_env)
        data = self._call("POST", "/timeseries", json=dict(
            instance=instance, point=point, geometry=geometry, crs=_crs(crs), time=time, records=records, tags=tags,
            reduce=reduce, resampling=resampling, group_by=group_by, grid_crs=_crs(grid_crs), resolution=resolution,
            on_error=on_error))
        ts = TimeseriesPlan.from_json(data)
        return dataclasses.replace(ts, plan=dataclasses.replace(ts.plan, gdal_env=env))

    def get_timeseries(self, instance: Instance | str | Sequence[Instance | str], **request: Any) -> xr.DataArray:
        """A timeseries planned by the server and read here (see :meth:`Geocube.get_timeseries`)."""
        return timeseries_from_plan(self.get_timeseries_plan(instance, **request))

    # --- jobs -----------------------------------------------------------------------------------------

    def consolidate(self, instance: Instance | str, layout: Layout | str, *,
                    records: Sequence[Record | str] | None = None, tags: dict[str, str | None] | None = None,
                    time: tuple[Any, Any] | None = None, aoi: Any = None, name: str | None = None,
                    storage_uri: str | None = None, execution_level: str = "async") -> RemoteJob:
        """Create a consolidation job on the server (it runs there: ``job.run()``)."""
        info = self._post(JobInfo, "/jobs/consolidation", dict(
            instance=instance, layout=layout, records=records, tags=tags, time=time, aoi=aoi, name=name,
            storage_uri=storage_uri, execution_level=execution_level))
        return RemoteJob(self, info)

    def delete_datasets_job(self, instance: Instance | str, *, records: Sequence[Record | str] | None = None,
                            tags: dict[str, str | None] | None = None, time: tuple[Any, Any] | None = None,
                            aoi: Any = None, name: str | None = None, execution_level: str = "async") -> RemoteJob:
        """Create a deletion job on the server."""
        info = self._post(JobInfo, "/jobs/deletion", dict(
            instance=instance, records=records, tags=tags, time=time, aoi=aoi, name=name,
            execution_level=execution_level))
        return RemoteJob(self, info)

    def load_job(self, ref: JobInfo | str) -> JobInfo:
        return self._get(JobInfo, f"/jobs/{_path(ref)}")

    def get_job(self, job: str) -> RemoteJob:
        return RemoteJob(self, self.load_job(job))

    def find_jobs(self, name_like: str | None = None, state: Any = None, type: JobType | str | None = None
                  ) -> list[JobInfo]:
        states = None if state is None else [s.value for s in job_states(state)]
        return self._get(list[JobInfo], "/jobs", name_like=name_like, state=states, type=type)

    def list_jobs(self, name_like: str | None = None, state: Any = None) -> list[RemoteJob]:
        return [RemoteJob(self, info) for info in self.find_jobs(name_like=name_like, state=state)]

    def clean_jobs(self, state: Any = (JobState.DONE, JobState.FAILED), name_like: str | None = None) -> int:
        return self._post(dict, "/jobs/clean", dict(state=state, name_like=name_like))["count"]

    def job_logs(self, job: JobInfo | str) -> list[LogEntry]:
        return self._get(list[LogEntry], f"/jobs/{_path(job)}/logs")

    def job_tasks(self, job: JobInfo | str, state: Any = None) -> list[Task]:
        states = None if state is None else [s.value for s in job_states(state)]
        return self._get(list[Task], f"/jobs/{_path(job)}/tasks", state=states)

    def job_locks(self, job: JobInfo | str) -> list[int]:
        return self._get(list[int], f"/jobs/{_path(job)}/locks")

    def _job_action(self, job_id: str, action: str, **body: Any) -> JobInfo:
        return wire.load(self._call("POST", f"/jobs/{_path(job_id)}/{action}", json=body, timeout=None), JobInfo)

    # --- tokens (admin) -------------------------------------------------------------------------------

    def create_token(self, scope: str, name: str = "") -> tuple[ApiToken, str]:
        data = self._call("POST", "/tokens", json=dict(scope=scope, name=name))
        return wire.load(data["token"], ApiToken), data["secret"]

    def list_tokens(self, include_revoked: bool = False) -> list[ApiToken]:
        return self._get(list[ApiToken], "/tokens", include_revoked=include_revoked)

    def revoke_token(self, token_id: str) -> ApiToken:
        return wire.load(self._call("DELETE", f"/tokens/{_path(token_id)}"), ApiToken)


def _check_group_by(group_by: Any) -> None:
    if callable(group_by):
        raise E.InvalidArgument("a remote catalogue takes group_by by name (e.g. 'day'), not a callable: "
                                "group the images of the cube it returns yourself")


class RemoteJob(JobView):
    """A job of a remote catalogue: the properties and controls of :class:`geocube_dask.jobs.Job`; it runs on
    the server (``run``/``next``/``retry`` return when the server's run stops)."""

    _gc: RemoteGeocube

    def _server_side(self, client: Any, progress: Any) -> None:
        if client is not None or progress is not None:
            raise E.InvalidArgument("a remote job runs on the server's cluster: call it without client= and "
                                    "progress= (follow it with job.state and job.logs)")

    def run(self, client: Any = None, progress: Any = None) -> RemoteJob:
        self._server_side(client, progress)
        self._info = self._gc._job_action(self.id, "run")
        return self

    def next(self, client: Any = None, progress: Any = None) -> RemoteJob:
        self._server_side(client, progress)
        self._info = self._gc._job_action(self.id, "next")
        return self

    def retry(self, force: bool = False, client: Any = None, progress: Any = None) -> RemoteJob:
        self._server_side(client, progress)
        self._info = self._gc._job_action(self.id, "retry", force=force)
        return self

    def cancel(self, force: bool = False) -> RemoteJob:
        self._info = self._gc._job_action(self.id, "cancel", force=force)
        return self


def connect_remote(url: str, token: str | None = None, **kwargs: Any) -> RemoteGeocube:
    """A :class:`RemoteGeocube` at ``url`` (``http://host:port``), checked: the server is reached and the
    token accepted now (else CatalogConnectionError, AuthenticationError)."""
    gc = RemoteGeocube(url, token, **kwargs)
    try:
        gc.info()
    except BaseException:
        gc.close()
        raise
    return gc
