"""Records are found per AOI and time window: the index on ``records.aoi_id`` becomes ``(aoi_id, datetime)``.

``list_records(aoi=…)`` finds the AOIs in the area through their spatial index, then the records of each
AOI in the time window. With the AOI alone the index hands over every record of the AOI (a tile revisited
every few days for years has hundreds), each read from the table to test its date; with the datetime
next to it the index keeps only those of the window. The new index serves the AOI-only lookups (foreign
key checks, AOI clean-up) as the old one did.

Revision ID: 0005_query_speed
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0005_query_speed"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_records_aoi_id_datetime", "records", ["aoi_id", "datetime"])
    op.drop_index("ix_records_aoi_id", table_name="records")


def downgrade() -> None:
    op.create_index("ix_records_aoi_id", "records", ["aoi_id"])
    op.drop_index("ix_records_aoi_id_datetime", table_name="records")
