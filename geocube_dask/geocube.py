"""The user-facing handle: the catalogue plus cube, plan and timeseries requests over it.

Data flows one way: the catalogue answers which datasets a request touches, ``graph.plan`` turns
them into a :class:`CubePlan` (pure metadata), ``graph.cube`` turns the plan into a lazy cube.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import shapely.geometry
import xarray as xr

from .catalog.catalog import Catalog
from .catalog.consolidation import check_params
from .catalog.jobs import job_states
from .consolidate.interlacing import normalize_pattern
from .entities import ConsolidationParams, DFormat, Instance, JobState, Layout, Record, Variable
from .errors import InvalidArgument
from .gdal_settings import gdal_env as capture_gdal_env
from .graph.cube import cube_from_plan
from .graph.empty import drop_empty_images
from .graph.grid import GridSpec, make_grid
from .graph.plan import CubePlan, PlanRecord, Source, build_plan
from .graph.timeseries import (
    check_geometry,
    check_reduce,
    geometry_in,
    native_grid_for,
    point_grid,
    point_series,
    polygon_series,
)
from .jobs import Job
from .projection import crs_string, transform_polygon

DEFAULT_DB_ENV = "GEOCUBE_DB"
TOKEN_ENV = "GEOCUBE_TOKEN"  # the API token of an http(s):// catalogue when connect() is given none
# the grid outline and the dataset footprints in lon/lat follow their edges within 3.6e-5° each
# (projection.EDGE_TOLERANCE), not exactly: widen the catalogue search a little more than both; the
# planner then keeps only sources whose footprint really touches the grid
SEARCH_BUFFER_DEG = 1e-4


class Geocube(Catalog):
    """A catalogue connection that also answers cube, plan and timeseries requests."""

    def create_layout(self, name: str, *args: Any, pattern: str = "mucog", **kwargs: Any) -> Layout:
        """Create a layout (see :meth:`Catalog.create_layout`), its interlacing pattern checked and
        normalised by consolidation's grammar (:func:`~geocube_dask.consolidate.interlacing.normalize_pattern`)."""
        return super().create_layout(name, *args, pattern=normalize_pattern(pattern), **kwargs)

    def _resolve_instances(self, instance: Any) -> tuple[list[Instance], Variable]:
        items = list(instance) if isinstance(instance, list | tuple) else [instance]
        if not items:
            raise InvalidArgument("give at least one instance")
        instances = [i if isinstance(i, Instance) else self.get_instance(i) for i in items]
        variable_ids = {i.variable_id for i in instances}
        if len(variable_ids) > 1:
            raise InvalidArgument(
                "the instances of one cube must belong to the same variable: request each variable separately"
            )
        return instances, self.get_variable(instances[0].variable_id)

    def _plan_rows(
        self,
        instances: list[Instance],
        records: Sequence[Record | str] | None,
        tags: dict[str, str | None] | None,
        time: tuple[Any, Any] | None,
        area: Any,
    ) -> list[tuple[PlanRecord, Source]]:
        if records is not None:
            records = [r.id if isinstance(r, Record) else str(r) for r in records]
        rows = self.find_datasets(instances, records=records, tags=tags, time=time, aoi=area, footprints=False)
        return [(PlanRecord(rec.id, rec.name, rec.datetime), source_of(rec, ds)) for rec, ds in rows]

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
        """Resolve a cube request to a :class:`CubePlan` (metadata only; see :meth:`get_cube`).

        The plan carries the GDAL reading settings in force (``GDAL_HTTP_*``, ``AWS_REGION``,
        ``AWS_S3_ENDPOINT``…, see :func:`geocube_dask.gdal_settings.gdal_env`) to every task, but no
        credentials, profiles or local paths: workers read with their own identity. ``gdal_env={…}``
        adds settings explicitly, credentials included (they travel in the graph, never in the JSON)."""
        instances, variable = self._resolve_instances(instance)
        grid = make_grid(crs, resolution, bounds, transform=transform, shape=shape, aoi=aoi, aoi_crs=aoi_crs,
                         like=like)
        group_ids: list[list[str]] | None = None
        if groups is not None:
            if records is not None:
                raise InvalidArgument("give records= or groups=, not both")
            group_ids = [[r.id if isinstance(r, Record) else str(r) for r in g] for g in groups]
            records = [r for g in group_ids for r in g]
        rows = self._plan_rows(instances, records, tags, time, search_area(grid))
        return self._plan(grid, instances, variable, rows, resampling, group_by, group_ids, chunks, on_error,
                          gdal_env)

    def _plan(
        self,
        grid: GridSpec,
        instances: list[Instance],
        variable: Variable,
        rows: list[tuple[PlanRecord, Source]],
        resampling: str | None,
        group_by: None | str | Callable[[PlanRecord], Hashable],
        groups: list[list[str]] | None,
        chunks: int | Sequence[int] | None,
        on_error: str,
        settings: Mapping[str, Any] | None = None,
    ) -> CubePlan:
        return build_plan(
            grid,
            variable=variable.name,
            instances=[i.name for i in instances],
            bands=variable.bands,
            dformat=variable.dformat,
            resampling=resampling or variable.resampling,
            rows=rows,
            group_by=group_by,
            groups=groups,
            chunks=chunks,
            gdal_env=capture_gdal_env(settings),
            on_error=on_error,
        )

    def get_cube(
        self, instance: Instance | str | Sequence[Instance | str], *, drop_empty: bool = False, **request: Any
    ) -> xr.DataArray:
        """A lazy cube ``(time, band, y, x)`` of ``instance`` over an output grid.

        Records by ``records=`` (ids or Records), or ``tags=`` and ``time=(start, end)``, or explicit
        ``groups=[[…], …]``; grid by ``crs`` + ``resolution`` + ``bounds``/``aoi``, or ``crs`` +
        ``transform`` + ``shape``, or ``like=`` another cube. ``resampling`` defaults to the
        variable's; ``group_by="day"`` (or a callable) mosaics records into one image; ``chunks``
        sets the spatial chunk size. Nothing is read until the result is computed.

        Images that no source touches are left out when planning; an image whose sources are all
        nodata over the grid is kept (all nodata) unless ``drop_empty=True``: then the cube is computed
        once here, each chunk reduced to "has a valid pixel" (small memory), and the lazy cube of the
        images with one is returned: their sources are read again when you compute it.
        """
        return cube_of(self.get_cube_plan(instance, **request), drop_empty)

    def get_timeseries(
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
    ) -> xr.DataArray:
        """A timeseries at ``point`` → ``(time, band)``, or over ``geometry`` → ``(time, band)``
        reduced with ``reduce`` (or ``(time, band, pixel)`` with ``reduce=None``), computed.

        ``point``/``geometry`` are in ``crs`` (default lon/lat). Only the windows under them are read,
        one task per image, with the active dask scheduler. A point takes the value of the source pixel
        containing it (with ``resampling`` other than ``near``, the value interpolated at the point). A
        polygon is sampled on ``grid_crs``/``resolution`` if given, else on the pixel grid of the first
        source found. Images with no valid value (at the point, in the polygon) are left out.
        ``gdal_env`` as for :meth:`get_cube_plan`. The plan alone: :meth:`get_timeseries_plan`.
        """
        return timeseries_from_plan(self.get_timeseries_plan(
            instance, point=point, geometry=geometry, crs=crs, time=time, records=records, tags=tags, reduce=reduce,
            resampling=resampling, group_by=group_by, grid_crs=grid_crs, resolution=resolution, on_error=on_error,
            gdal_env=gdal_env,
        ))

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
        """What :meth:`get_timeseries` reads, resolved (metadata only): compute it with
        :func:`timeseries_from_plan`, wherever the files can be read."""
        if (point is None) == (geometry is None):
            raise InvalidArgument("give point=(x, y) or geometry=polygon (exactly one)")
        instances, variable = self._resolve_instances(instance)
        if point is not None:
            grid = point_grid(point, crs)
            rows = self._plan_rows(instances, records, tags, time, search_area(grid))
            plan = self._plan(grid, instances, variable, rows, resampling, group_by, None, 1, on_error, gdal_env)
            return TimeseriesPlan(plan)
        geom = check_geometry(geometry)
        check_reduce(reduce)
        area = geometry_in(geom, crs, "EPSG:4326", wrap=True).buffer(SEARCH_BUFFER_DEG)
        rows = self._plan_rows(instances, records, tags, time, area)
        if grid_crs is not None or resolution is not None:
            if grid_crs is None or resolution is None:
                raise InvalidArgument("give grid_crs= and resolution= together (or neither: native grid)")
            grid = make_grid(grid_crs, resolution, aoi=geom, aoi_crs=crs)
        elif rows:
            first = rows[0][1]
            grid = make_grid(**native_grid_for(geom, crs, first.crs, first.transform))
        else:
            grid = make_grid(crs, 1.0, aoi=geom, aoi_crs=crs)
        plan = self._plan(grid, instances, variable, rows, resampling, group_by, None, 1024, on_error, gdal_env)
        return TimeseriesPlan(plan, geom, crs_string(crs), reduce)

    # --- consolidation and jobs ------------------------------------------------------------------------

    def configure_consolidation(
        self,
        variable: Variable | str,
        dformat: Any = None,
        exponent: float = 1,
        compression: str = "lossless",
        max_error: float | None = None,
        creation_options: dict[str, Any] | None = None,
        resampling: str | None = None,
    ) -> ConsolidationParams:
        """How ``variable`` is stored by consolidation: ``dformat`` (default: the variable's), ``exponent``
        of the mapping, ``compression`` ``"lossless"`` (default), ``"lossy"`` (with ``max_error``, in stored
        units) or ``"custom"`` (``creation_options`` for GDAL's COG driver), and the overview
        ``resampling`` (default: from the variable's). Checked now (bad options raise InvalidArgument)."""
        from .consolidate.cog import creation_options as cog_options

        var = self.get_variable(variable)
        params = ConsolidationParams(
            var.id, var.dformat if dformat is None else DFormat.parse(dformat), exponent, compression, max_error,
            dict(creation_options or {}), resampling,
        )
        params = check_params(params)
        cog_options(params.dformat.dtype, compression=params.compression, max_error=params.max_error,
                    creation_options=dict(params.creation_options) or None, bands=len(var.bands))
        return self.set_consolidation_params(params)

    def tile_aoi(self, aoi: Any, layout: Layout | str, aoi_crs: Any = "EPSG:4326") -> list[Any]:
        """The cells of ``layout`` covering ``aoi`` (a geometry in ``aoi_crs``), each a
        :class:`~geocube_dask.consolidate.cells.CellGrid` (id, crs, transform, shape): regular cells north
        to south then west to east, a stored grid's cells by id."""
        from .consolidate.cells import regular_cells, stored_cells

        lay = layout if isinstance(layout, Layout) else self.get_layout(layout)
        if lay.grid in ("regular", "single"):
            return regular_cells(lay, aoi, area_crs=aoi_crs)
        if lay.resolution is None:
            raise InvalidArgument(f"layout {lay.name!r} has no resolution: a stored grid's cells need one")
        lonlat = transform_polygon(aoi, crs_string(aoi_crs), "EPSG:4326")
        return stored_cells(self.grid_cells(lay.grid, aoi=lonlat), lay.resolution, area=aoi, area_crs=aoi_crs)

    def consolidate(
        self,
        instance: Instance | str,
        layout: Layout | str,
        *,
        records: Sequence[Record | str] | None = None,
        tags: dict[str, str | None] | None = None,
        time: tuple[Any, Any] | None = None,
        aoi: Any = None,
        name: str | None = None,
        storage_uri: str | None = None,
        execution_level: str = "async",
    ) -> Job:
        """Create (and persist) a job consolidating the ACTIVE datasets of ``instance`` over the chosen
        records (``records=`` or ``tags=``/``time=``, within ``aoi`` in EPSG:4326) into files laid out by
        ``layout`` under ``storage_uri`` (default ``$GEOCUBE_STORAGE``, else ``./geocube-data``).

        The datasets are locked for the job: a job over a dataset another job holds is refused
        (JobConflict naming it). Nothing runs until ``job.run()``; see :mod:`geocube_dask.jobs` for the
        states and ``execution_level`` (``async``, ``step-by-step-critical|major|all``).
        """
        from . import consolidation

        info = consolidation.create(self, instance, layout, records=records, tags=tags, time=time, aoi=aoi,
                                    name=name, storage_uri=storage_uri, execution_level=execution_level)
        return Job(self, info)

    def delete_datasets_job(
        self,
        instance: Instance | str,
        *,
        records: Sequence[Record | str] | None = None,
        tags: dict[str, str | None] | None = None,
        time: tuple[Any, Any] | None = None,
        aoi: Any = None,
        name: str | None = None,
        execution_level: str = "async",
    ) -> Job:
        """Create a deletion job over the datasets of ``instance`` matching the filters (any status):
        they are locked, marked TODELETE, then deleted with the managed files they leave empty."""
        from . import deletion

        info = deletion.create(self, instance, records=records, tags=tags, time=time, aoi=aoi, name=name,
                               execution_level=execution_level)
        return Job(self, info)

    def export_job(
        self,
        plan: CubePlan,
        out: str | os.PathLike[str],
        *,
        zarr_format: int = 2,
        overwrite: bool = False,
        name: str | None = None,
        execution_level: str = "async",
    ) -> Job:
        """Create a job writing the cube of ``plan`` (:meth:`get_cube_plan`) to ``out``, a ``.zarr`` store or
        a ``.tif`` GeoTIFF, as ``geocube cube --out`` does. The job runs with ``job.run(client=…)`` or on a
        cluster with :func:`geocube_dask.submit.submit_job`; ``out`` is a path as the process running it
        sees it. See :mod:`geocube_dask.exporting` (failures, retry, cancel)."""
        from . import exporting

        info = exporting.create(self, plan, out, zarr_format=zarr_format, overwrite=overwrite, name=name,
                                execution_level=execution_level)
        return Job(self, info)

    def get_job(self, job: str) -> Job:
        """The job with this name or id. Raises NotFound."""
        return Job(self, self.load_job(job))

    def list_jobs(self, name_like: str | None = None, state: Any = None) -> list[Job]:
        """Jobs (name pattern with ``*``/``?``; a state or a list of states), oldest first."""
        return [Job(self, info) for info in self.find_jobs(name_like=name_like, state=state)]

    def clean_jobs(self, state: Any = (JobState.DONE, JobState.FAILED), name_like: str | None = None) -> int:
        """Delete finished jobs (DONE or FAILED, or those of ``state`` among them) with their logs and
        tasks; return how many. A job in any other state still holds datasets or files: finish or cancel
        it first."""
        states = job_states(state)
        unfinished = sorted({s.value for s in states} - {JobState.DONE.value, JobState.FAILED.value})
        if unfinished:
            raise InvalidArgument(
                f"only DONE and FAILED jobs can be cleaned, not {', '.join(unfinished)}: finish them (retry()) or "
                "cancel them first"
            )
        return self.delete_job_rows([j.id for j in self.find_jobs(name_like=name_like, state=states)])


def cube_of(plan: CubePlan, drop_empty: bool = False) -> xr.DataArray:
    """The lazy cube of a plan, as :meth:`Geocube.get_cube` returns it (``drop_empty`` as there)."""
    cube = cube_from_plan(plan)
    return drop_empty_images(cube, plan.dformat.nodata) if drop_empty else cube


@dataclass(frozen=True)
class TimeseriesPlan:
    """A timeseries request resolved: the cube plan to read, and for a polygon (``geometry`` in ``crs``)
    how to reduce its pixels; a point's plan is a one-pixel cube."""

    plan: CubePlan
    geometry: Any = None
    crs: str = "EPSG:4326"
    reduce: str | None = "mean"

    def to_json(self) -> dict[str, Any]:
        """As JSON data: the plan as :meth:`CubePlan.to_json` writes it (no credentials), the geometry as GeoJSON."""
        return {
            "plan": json.loads(self.plan.to_json()),
            "geometry": None if self.geometry is None else shapely.geometry.mapping(self.geometry),
            "crs": self.crs,
            "reduce": self.reduce,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TimeseriesPlan:
        """Read back what :meth:`to_json` wrote."""
        try:
            geometry = data.get("geometry")
            return cls(CubePlan.from_json(data["plan"]), None if geometry is None else shapely.geometry.shape(geometry),
                       data.get("crs", "EPSG:4326"), data.get("reduce", "mean"))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            if isinstance(exc, InvalidArgument):
                raise
            raise InvalidArgument(f"not a valid timeseries plan ({exc!r})") from None


def timeseries_from_plan(ts: TimeseriesPlan) -> xr.DataArray:
    """Compute the timeseries of a plan (as :meth:`Geocube.get_timeseries` returns it)."""
    plan = ts.plan
    cube = cube_from_plan(plan, keep_files=True)  # the next points read the same files
    if ts.geometry is None:
        return drop_empty_images(point_series(cube).compute(), plan.dformat.nodata)
    series = polygon_series(cube, ts.geometry, ts.crs, ts.reduce).compute()
    return drop_empty_images(series, plan.dformat.nodata if ts.reduce is None else math.nan)  # reduced: NaN


def search_area(grid: GridSpec) -> Any:
    """The grid's outline in EPSG:4326, slightly widened, for the catalogue's spatial filter."""
    return grid.footprint("EPSG:4326").buffer(SEARCH_BUFFER_DEG)


def source_of(record: Record, ds: Any) -> Source:
    """The plan's view of a catalogue dataset."""
    return Source(
        uri=ds.uri,
        subdir=ds.subdir,
        bands=tuple(ds.bands),
        dformat=ds.dformat,
        real_min=ds.real_min,
        real_max=ds.real_max,
        exponent=ds.exponent,
        crs=ds.crs,
        transform=tuple(ds.transform),
        width=ds.width,
        height=ds.height,
        overviews=tuple(tuple(o) for o in ds.overviews),
        dataset_id=ds.id,
        record_id=record.id,
    )


def default_url() -> str:
    """``$GEOCUBE_DB`` (a URL or a SQLite file path), else the SQLite file ``./geocube.db``."""
    value = os.environ.get(DEFAULT_DB_ENV, "geocube.db")
    if "://" in value:
        return value
    return f"sqlite:///{os.path.abspath(value)}"


def connect(url: str | None = None, *, token: str | None = None, **options: Any) -> Geocube:
    """Open (and migrate) a catalogue, or reach one served over HTTP.

    ``None`` → SQLite file ``./geocube.db`` (or ``$GEOCUBE_DB``); ``sqlite:///path`` → that file;
    ``postgresql+psycopg2://user:pw@host:port/db`` → PostGIS; ``http(s)://host:port`` → the API of
    ``geocube serve`` with bearer ``token`` (default ``$GEOCUBE_TOKEN``) (a
    :class:`~geocube_dask.client.RemoteGeocube`: the same methods; ``options`` such as ``timeout=`` go to it).
    """
    if url is not None and url.split("://", 1)[0].lower() in ("http", "https"):
        from .client import connect_remote

        return connect_remote(url, token or os.environ.get(TOKEN_ENV) or None, **options)  # type: ignore[return-value]
    if token is not None or options:
        raise InvalidArgument("token= and options are for http(s):// catalogues (geocube serve)")
    return Geocube(url or default_url())
