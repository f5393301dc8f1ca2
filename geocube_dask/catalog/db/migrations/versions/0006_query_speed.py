"""Indexes for the searches behind cubes: datasets by instance, area and date; records by AOI and date.

- ``datasets.record_datetime``: a copy of the record's datetime (records' datetimes never change). On
  PostgreSQL the GiST index of the datasets becomes ``(instance_id, footprint_4326, record_datetime)``: a
  cube request over a time window used to read, from the table, every dataset of the area whatever its
  date (ten times the rows it returns for a year out of ten), then look up each one's record for its date.
  The index now drops the other dates itself. SQLite (whose R*Tree holds only the bounding boxes) tests
  the column on the dataset row, before looking the record up.
- ``records (aoi_id, datetime)`` replaces ``records (aoi_id)``: ``list_records(aoi=…)`` finds the AOIs in
  the area, then the records of each one in the time window; with the AOI alone the index hands over every
  record of the AOI (a tile revisited every few days for years has hundreds), each read to test its date.
  It serves the AOI-only lookups (foreign key checks, AOI clean-up) as the old one did.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from geocube_dask.catalog.db.coltypes import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.add_column("datasets", sa.Column("record_datetime", UTCDateTime, nullable=True))
        op.execute(
            "UPDATE datasets SET record_datetime = records.datetime FROM records WHERE records.id = datasets.record_id"
        )
        op.alter_column("datasets", "record_datetime", nullable=False)
        op.drop_index("ix_datasets_instance_footprint", table_name="datasets")
        op.create_index(
            "ix_datasets_instance_footprint_datetime", "datasets", ["instance_id", "footprint_4326", "record_datetime"],
            postgresql_using="gist",
        )
    else:  # SQLite adds a NOT NULL column only with a default, which every insert overrides
        op.add_column(
            "datasets",
            sa.Column("record_datetime", UTCDateTime, nullable=False, server_default="1970-01-01 00:00:00.000000"),
        )
        op.execute(
            "UPDATE datasets SET record_datetime = (SELECT datetime FROM records WHERE records.id = datasets.record_id)"
        )
    op.create_index("ix_records_aoi_id_datetime", "records", ["aoi_id", "datetime"])
    op.drop_index("ix_records_aoi_id", table_name="records")


def downgrade() -> None:
    op.create_index("ix_records_aoi_id", "records", ["aoi_id"])
    op.drop_index("ix_records_aoi_id_datetime", table_name="records")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_datasets_instance_footprint_datetime", table_name="datasets")
        op.create_index(
            "ix_datasets_instance_footprint", "datasets", ["instance_id", "footprint_4326"], postgresql_using="gist"
        )
    op.drop_column("datasets", "record_datetime")
