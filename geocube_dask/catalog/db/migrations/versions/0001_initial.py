"""Initial catalogue schema: AOIs, records and tags, palettes, variables, instances, containers,
datasets and their band claims, grids and layouts; GiST indexes on PostGIS, R*Trees on SQLite.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from geocube_dask.catalog.db.coltypes import FloatText, Geometry4326, JSONText, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Uuid = sa.Uuid(as_uuid=False)

# (table, geometry column) pairs that get a spatial index.
SPATIAL = (("aois", "geom"), ("datasets", "footprint_4326"), ("grid_cells", "geom_4326"))


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    op.create_table(
        "aois",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("geom", Geometry4326("MULTIPOLYGON"), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_aois"),
        sa.UniqueConstraint("hash", name="uq_aois_hash"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "records",
        sa.Column("id", Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("datetime", UTCDateTime, nullable=False),
        sa.Column("tags", JSONText, nullable=False),
        sa.Column("tags_hash", sa.String(64), nullable=False),
        sa.Column("aoi_id", BigId, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_records"),
        sa.ForeignKeyConstraint(["aoi_id"], ["aois.id"], name="fk_records_aoi_id_aois"),
        sa.UniqueConstraint("name", "datetime", "tags_hash", name="uq_records_identity"),
    )
    op.create_index("ix_records_datetime_id", "records", ["datetime", "id"])
    op.create_index("ix_records_aoi_id", "records", ["aoi_id"])
    op.create_table(
        "record_tags",
        sa.Column("record_id", Uuid, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("record_id", "key", name="pk_record_tags"),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], ondelete="CASCADE", name="fk_record_tags_record_id_records"
        ),
    )
    op.create_index("ix_record_tags_key_value_record", "record_tags", ["key", "value", "record_id"])

    op.create_table(
        "palettes",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("points", JSONText, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_palettes"),
    )
    op.create_table(
        "variables",
        sa.Column("id", Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("unit", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("dtype", sa.String(16), nullable=False),
        sa.Column("nodata", FloatText, nullable=False),
        sa.Column("min", sa.Double, nullable=False),
        sa.Column("max", sa.Double, nullable=False),
        sa.Column("bands", JSONText, nullable=False),
        sa.Column("palette", sa.Text, nullable=True),
        sa.Column("resampling", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_variables"),
        sa.UniqueConstraint("name", name="uq_variables_name"),
        sa.ForeignKeyConstraint(["palette"], ["palettes.name"], name="fk_variables_palette_palettes"),
    )
    op.create_index("ix_variables_palette", "variables", ["palette"])
    op.create_table(
        "instances",
        sa.Column("id", Uuid, nullable=False),
        sa.Column("variable_id", Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("metadata", JSONText, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_instances"),
        sa.ForeignKeyConstraint(
            ["variable_id"], ["variables.id"], ondelete="CASCADE", name="fk_instances_variable_id_variables"
        ),
        sa.UniqueConstraint("variable_id", "name", name="uq_instances_variable_name"),
    )

    op.create_table(
        "containers",
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("managed", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("uri", name="pk_containers"),
    )
    op.create_table(
        "datasets",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("record_id", Uuid, nullable=False),
        sa.Column("instance_id", Uuid, nullable=False),
        sa.Column("container_uri", sa.Text, nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.ForeignKeyConstraint(["record_id"], ["records.id"], name="fk_datasets_record_id_records"),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"], name="fk_datasets_instance_id_instances"),
        sa.ForeignKeyConstraint(
            ["container_uri"], ["containers.uri"], name="fk_datasets_container_uri_containers"
        ),
        sa.CheckConstraint("status IN ('ACTIVE', 'INACTIVE', 'TODELETE')", name="ck_datasets_status"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_datasets_record_instance", "datasets", ["record_id", "instance_id"])
    op.create_index("ix_datasets_instance_status", "datasets", ["instance_id", "status"])
    op.create_index("ix_datasets_container", "datasets", ["container_uri", "subdir"])
    op.create_table(
        "dataset_bands",
        sa.Column("container_uri", sa.Text, nullable=False),
        sa.Column("subdir", sa.Text, nullable=False),
        sa.Column("band", sa.Integer, nullable=False),
        sa.Column("dataset_id", BigId, nullable=False),
        sa.PrimaryKeyConstraint("container_uri", "subdir", "band", name="pk_dataset_bands"),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], ondelete="CASCADE", name="fk_dataset_bands_dataset_id_datasets"
        ),
    )
    op.create_index("ix_dataset_bands_dataset_id", "dataset_bands", ["dataset_id"])

    op.create_table(
        "grids",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_grids"),
    )
    op.create_table(
        "grid_cells",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("grid_name", sa.Text, nullable=False),
        sa.Column("cell_id", sa.Text, nullable=False),
        sa.Column("crs", sa.Text, nullable=False),
        sa.Column("wkt", sa.Text, nullable=False),
        sa.Column("geom_4326", Geometry4326("GEOMETRY"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_grid_cells"),
        sa.ForeignKeyConstraint(
            ["grid_name"], ["grids.name"], ondelete="CASCADE", name="fk_grid_cells_grid_name_grids"
        ),
        sa.UniqueConstraint("grid_name", "cell_id", name="uq_grid_cells_grid_cell"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "layouts",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("grid_kind", sa.String(16), nullable=False),
        sa.Column("grid_name", sa.Text, nullable=True),
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
        sa.PrimaryKeyConstraint("name", name="pk_layouts"),
        sa.ForeignKeyConstraint(["grid_name"], ["grids.name"], name="fk_layouts_grid_name_grids"),
        sa.CheckConstraint("grid_kind IN ('regular', 'single', 'stored')", name="ck_layouts_grid_kind"),
    )
    op.create_index("ix_layouts_grid_name", "layouts", ["grid_name"])

    for table, column in SPATIAL:
        if dialect == "postgresql":
            op.create_index(f"ix_{table}_{column}", table, [column], postgresql_using="gist")
        else:
            # Bounding boxes for the spatial prefilter; rows are added by the catalogue code with each
            # geometry and removed by this trigger (also on cascaded deletes).
            op.execute(f"CREATE VIRTUAL TABLE {table}_rtree USING rtree(id, minx, maxx, miny, maxy)")
            op.execute(
                f"CREATE TRIGGER {table}_rtree_delete AFTER DELETE ON {table} "
                f"BEGIN DELETE FROM {table}_rtree WHERE id = old.id; END"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table, _ in SPATIAL:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_rtree_delete")
            op.execute(f"DROP TABLE IF EXISTS {table}_rtree")
    for table in (
        "layouts", "grid_cells", "grids", "dataset_bands", "datasets", "containers", "instances",
        "variables", "palettes", "record_tags", "records", "aois",
    ):
        op.drop_table(table)
