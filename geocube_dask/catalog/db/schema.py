"""The catalogue tables (SQLAlchemy Core), identical on SQLite and PostGIS except for spatial indexing.

The tables are *created* by the Alembic migrations in ``migrations/versions``; this module describes
them for queries, and a test checks that the migrated database and this description agree.

Spatial search:

- PostgreSQL: geometry columns are PostGIS ``geometry(…, 4326)`` with GiST indexes; the datasets' one is
  over ``(instance_id, footprint_4326, record_datetime)`` (``btree_gist``), as every cube query filters the
  instance and the area, and most a time window: ``datasets.record_datetime`` is a copy of its record's
  datetime (which never changes), so that the index drops the datasets of other dates before the table
  is read.
- SQLite (no SpatiaLite): geometry columns are WKB blobs; each has an R*Tree virtual table
  ``<table>_rtree(id, minx, maxx, miny, maxy)`` keyed by the row id (:data:`RTREES`). The catalogue
  code inserts R*Tree rows with the geometries; ``AFTER DELETE`` triggers remove them. Queries use the
  R*Tree as a bounding-box prefilter, then an exact shapely test (see :mod:`.spatial`).

Other representation choices:

- Record tags are in ``record_tags (record_id, key, value)`` so tag filters are plain SQL with an index
  on ``(key, value, record_id)``; a copy as sorted JSON in ``records.tags`` is what reads return, and
  ``records.tags_hash`` (sha256 of that JSON) makes ``(name, datetime, tags)`` a unique constraint.
- Data-format nodata values are text (:class:`.coltypes.FloatText`) so NaN survives SQLite.
- ``dataset_bands (container_uri, subdir, band) → dataset_id`` has one row per indexed band of a file:
  its primary key is what makes "one dataset per file band" hold under concurrent indexing.
"""

from __future__ import annotations

import sqlalchemy as sa

from .coltypes import FloatText, Geometry4326, JSONText, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Integer primary keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Uuid = sa.Uuid(as_uuid=False)

aois = sa.Table(
    "aois",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("geom", Geometry4326("MULTIPOLYGON"), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sqlite_autoincrement=True,
)

records = sa.Table(
    "records",
    metadata,
    sa.Column("id", Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("datetime", UTCDateTime, nullable=False),
    sa.Column("tags", JSONText, nullable=False),
    sa.Column("tags_hash", sa.String(64), nullable=False),
    sa.Column("aoi_id", BigId, sa.ForeignKey("aois.id"), nullable=True),
    sa.UniqueConstraint("name", "datetime", "tags_hash", name="uq_records_identity"),
    sa.Index("ix_records_datetime_id", "datetime", "id"),
    sa.Index("ix_records_aoi_id_datetime", "aoi_id", "datetime"),
)

record_tags = sa.Table(
    "record_tags",
    metadata,
    sa.Column("record_id", Uuid, sa.ForeignKey("records.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index("ix_record_tags_key_value_record", "key", "value", "record_id"),
)

palettes = sa.Table(
    "palettes",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("points", JSONText, nullable=False),
)

variables = sa.Table(
    "variables",
    metadata,
    sa.Column("id", Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("dtype", sa.String(16), nullable=False),
    sa.Column("nodata", FloatText, nullable=False),
    sa.Column("min", sa.Double, nullable=False),
    sa.Column("max", sa.Double, nullable=False),
    sa.Column("bands", JSONText, nullable=False),
    sa.Column("palette", sa.Text, sa.ForeignKey("palettes.name"), nullable=True),
    sa.Column("resampling", sa.String(16), nullable=False),
    sa.Index("ix_variables_palette", "palette"),
)

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("id", Uuid, primary_key=True),
    sa.Column("variable_id", Uuid, sa.ForeignKey("variables.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("metadata", JSONText, nullable=False),
    sa.UniqueConstraint("variable_id", "name", name="uq_instances_variable_name"),
)

containers = sa.Table(
    "containers",
    metadata,
    sa.Column("uri", sa.Text, primary_key=True),
    sa.Column("managed", sa.Boolean, nullable=False),
)

DATASET_STATUSES = ("ACTIVE", "INACTIVE", "TODELETE")

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("record_id", Uuid, sa.ForeignKey("records.id"), nullable=False),
    sa.Column("instance_id", Uuid, sa.ForeignKey("instances.id"), nullable=False),
    sa.Column("container_uri", sa.Text, sa.ForeignKey("containers.uri"), nullable=False),
    sa.Column("subdir", sa.Text, nullable=False),
    sa.Column("bands", JSONText, nullable=False),
    sa.Column("dtype", sa.String(16), nullable=False),
    sa.Column("nodata", FloatText, nullable=True),
    sa.Column("min", sa.Double, nullable=False),
    sa.Column("max", sa.Double, nullable=False),
    sa.Column("real_min", sa.Double, nullable=False),
    sa.Column("real_max", sa.Double, nullable=False),
    sa.Column("exponent", sa.Double, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("crs", sa.Text, nullable=False),
    sa.Column("transform", JSONText, nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("overviews", JSONText, nullable=False),
    sa.Column("footprint_wkt", sa.Text, nullable=False),
    sa.Column("footprint_4326", Geometry4326("GEOMETRY"), nullable=False),
    sa.Column("record_datetime", UTCDateTime, nullable=False),  # the record's (never changes), for the index
    sa.CheckConstraint("status IN ('ACTIVE', 'INACTIVE', 'TODELETE')", name="status"),
    sa.Index("ix_datasets_record_instance", "record_id", "instance_id"),
    sa.Index("ix_datasets_instance_status", "instance_id", "status"),
    sa.Index("ix_datasets_container", "container_uri", "subdir"),
    sqlite_autoincrement=True,
)

dataset_bands = sa.Table(
    "dataset_bands",
    metadata,
    sa.Column("container_uri", sa.Text, primary_key=True),
    sa.Column("subdir", sa.Text, primary_key=True),
    sa.Column("band", sa.Integer, primary_key=True),
    sa.Column("dataset_id", BigId, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    sa.Index("ix_dataset_bands_dataset_id", "dataset_id"),
)

grids = sa.Table(
    "grids",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
)

grid_cells = sa.Table(
    "grid_cells",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("grid_name", sa.Text, sa.ForeignKey("grids.name", ondelete="CASCADE"), nullable=False),
    sa.Column("cell_id", sa.Text, nullable=False),
    sa.Column("crs", sa.Text, nullable=False),
    sa.Column("wkt", sa.Text, nullable=False),
    sa.Column("geom_4326", Geometry4326("GEOMETRY"), nullable=False),
    sa.UniqueConstraint("grid_name", "cell_id", name="uq_grid_cells_grid_cell"),
    sqlite_autoincrement=True,
)

layouts = sa.Table(
    "layouts",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("grid_kind", sa.String(16), nullable=False),
    sa.Column("grid_name", sa.Text, sa.ForeignKey("grids.name"), nullable=True),
    sa.Column("crs", sa.Text, nullable=True),
    sa.Column("resolution", sa.Double, nullable=True),
    sa.Column("cell_size", sa.Integer, nullable=False),
    sa.Column("origin_x", sa.Double, nullable=False),
    sa.Column("origin_y", sa.Double, nullable=False),
    sa.Column("block_size", sa.Integer, nullable=False),
    sa.Column("max_records", sa.Integer, nullable=False),
    sa.Column("overview_min_size", sa.Integer, nullable=False),
    sa.Column("pattern", sa.Text, nullable=False),
    sa.Column("compression", sa.String(32), nullable=False),
    sa.CheckConstraint("grid_kind IN ('regular', 'single', 'stored')", name="grid_kind"),
    sa.Index("ix_layouts_grid_name", "grid_name"),
)

JOB_TYPES = ("consolidation", "deletion", "export")
TASK_STATES = ("NEW", "DONE", "FAILED", "CANCELLED")

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("execution_level", sa.String(32), nullable=False),
    sa.Column("waiting", sa.Boolean, nullable=False),
    sa.Column("payload", JSONText, nullable=False),
    sa.Column("owner", sa.Text, nullable=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.CheckConstraint(f"type IN ({', '.join(repr(t) for t in JOB_TYPES)})", name="type"),
    sa.Index("ix_jobs_state", "state"),
)

job_logs = sa.Table(
    "job_logs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("job_id", Uuid, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("time", UTCDateTime, nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_job_logs_job_id_id", "job_id", "id"),
    sqlite_autoincrement=True,
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("job_id", Uuid, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("plan", JSONText, nullable=False),
    sa.Column("result", JSONText, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.CheckConstraint("state IN ('NEW', 'DONE', 'FAILED', 'CANCELLED')", name="state"),
)

# A dataset is locked by at most one job: the primary key says so.
locks = sa.Table(
    "locks",
    metadata,
    sa.Column("dataset_id", BigId, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("job_id", Uuid, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Index("ix_locks_job_id", "job_id"),
)

consolidation_params = sa.Table(
    "consolidation_params",
    metadata,
    sa.Column("variable_id", Uuid, sa.ForeignKey("variables.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("dtype", sa.String(16), nullable=False),
    sa.Column("nodata", FloatText, nullable=False),
    sa.Column("min", sa.Double, nullable=False),
    sa.Column("max", sa.Double, nullable=False),
    sa.Column("exponent", sa.Double, nullable=False),
    sa.Column("compression", sa.String(16), nullable=False),
    sa.Column("max_error", sa.Double, nullable=True),
    sa.Column("creation_options", JSONText, nullable=False),
    sa.Column("resampling", sa.String(16), nullable=True),
    sa.CheckConstraint("compression IN ('lossless', 'lossy', 'none', 'custom')", name="compression"),
)

# The files consolidation wrote for a layout: which cell of which instance, and with which settings
# (``signature``), so that a later consolidation leaves an unchanged file alone. Removed with its container.
layout_files = sa.Table(
    "layout_files",
    metadata,
    sa.Column("container_uri", sa.Text, sa.ForeignKey("containers.uri", ondelete="CASCADE"), primary_key=True),
    sa.Column("layout_name", sa.Text, sa.ForeignKey("layouts.name", ondelete="CASCADE"), nullable=False),
    sa.Column("instance_id", Uuid, sa.ForeignKey("instances.id", ondelete="CASCADE"), nullable=False),
    sa.Column("cell_id", sa.Text, nullable=False),
    sa.Column("signature", sa.String(64), nullable=False),
    sa.Index("ix_layout_files_layout_instance_cell", "layout_name", "instance_id", "cell_id"),
)

# Bearer tokens of the HTTP API: only the sha256 of the secret is stored; ``revoked`` set = no longer valid.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("scope", sa.String(8), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("revoked", UTCDateTime, nullable=True),
    sa.CheckConstraint("scope IN ('read', 'write', 'admin')", name="scope"),
)

# Spatially indexed geometry columns: table → (geometry column, R*Tree table used on SQLite).
GEOMETRY_COLUMNS: dict[str, str] = {"aois": "geom", "datasets": "footprint_4326", "grid_cells": "geom_4326"}

# SQLite R*Tree tables (virtual tables, created by the migrations, not part of ``metadata``).
rtree_metadata = sa.MetaData()


def _rtree(name: str) -> sa.Table:
    return sa.Table(
        name,
        rtree_metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("minx", sa.Float),
        sa.Column("maxx", sa.Float),
        sa.Column("miny", sa.Float),
        sa.Column("maxy", sa.Float),
    )


RTREES: dict[str, sa.Table] = {table: _rtree(f"{table}_rtree") for table in GEOMETRY_COLUMNS}
