"""PostGIS only: the spatial index of datasets also covers their instance, and tag statistics per key.

- ``find_datasets`` always filters by instance and usually by area. With a GiST index on the footprint
  alone, PostgreSQL reads every dataset of every instance in the area (ten times the rows with ten
  instances) or ANDs the spatial bitmap with a bitmap of the whole instance; a GiST index over
  ``(instance_id, footprint_4326)`` (``btree_gist`` provides the uuid part) finds exactly the
  instance's datasets in the area, and still serves area-only searches.
- Tag filters read ``record_tags`` by ``(key, value)``; planner statistics that assume key and value
  independent underestimate a tag shared by many records by the number of keys, which is enough to
  make PostgreSQL pick nested loops that run for seconds. Multivariate MCV statistics fix the estimate.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.drop_index("ix_datasets_footprint_4326", table_name="datasets")
    op.create_index(
        "ix_datasets_instance_footprint", "datasets", ["instance_id", "footprint_4326"], postgresql_using="gist"
    )
    op.execute("CREATE STATISTICS st_record_tags_key_value (mcv) ON key, value FROM record_tags")
    op.execute("ANALYZE record_tags")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP STATISTICS IF EXISTS st_record_tags_key_value")
    op.drop_index("ix_datasets_instance_footprint", table_name="datasets")
    op.create_index("ix_datasets_footprint_4326", "datasets", ["footprint_4326"], postgresql_using="gist")
