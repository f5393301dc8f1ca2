"""Jobs: jobs, their logs and tasks, dataset locks, per-variable consolidation settings, and the files
consolidation wrote for each layout.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from geocube_dask.catalog.db.coltypes import FloatText, JSONText, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Uuid = sa.Uuid(as_uuid=False)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("execution_level", sa.String(32), nullable=False),
        sa.Column("waiting", sa.Boolean, nullable=False),
        sa.Column("payload", JSONText, nullable=False),
        sa.Column("owner", sa.Text, nullable=True),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("name", name="uq_jobs_name"),
        sa.CheckConstraint("type IN ('consolidation', 'deletion')", name="ck_jobs_type"),
    )
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_table(
        "job_logs",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("job_id", Uuid, nullable=False),
        sa.Column("time", UTCDateTime, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job_logs"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE", name="fk_job_logs_job_id_jobs"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_job_logs_job_id_id", "job_logs", ["job_id", "id"])
    op.create_table(
        "tasks",
        sa.Column("job_id", Uuid, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("plan", JSONText, nullable=False),
        sa.Column("result", JSONText, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("job_id", "key", name="pk_tasks"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE", name="fk_tasks_job_id_jobs"),
        sa.CheckConstraint("state IN ('NEW', 'DONE', 'FAILED', 'CANCELLED')", name="ck_tasks_state"),
    )
    op.create_table(
        "locks",
        sa.Column("dataset_id", BigId, nullable=False),
        sa.Column("job_id", Uuid, nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", name="pk_locks"),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], ondelete="CASCADE", name="fk_locks_dataset_id_datasets"
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE", name="fk_locks_job_id_jobs"),
    )
    op.create_index("ix_locks_job_id", "locks", ["job_id"])
    op.create_table(
        "consolidation_params",
        sa.Column("variable_id", Uuid, nullable=False),
        sa.Column("dtype", sa.String(16), nullable=False),
        sa.Column("nodata", FloatText, nullable=False),
        sa.Column("min", sa.Double, nullable=False),
        sa.Column("max", sa.Double, nullable=False),
        sa.Column("exponent", sa.Double, nullable=False),
        sa.Column("compression", sa.String(16), nullable=False),
        sa.Column("max_error", sa.Double, nullable=True),
        sa.Column("creation_options", JSONText, nullable=False),
        sa.Column("resampling", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("variable_id", name="pk_consolidation_params"),
        sa.ForeignKeyConstraint(
            ["variable_id"], ["variables.id"], ondelete="CASCADE", name="fk_consolidation_params_variable_id_variables"
        ),
        sa.CheckConstraint(
            "compression IN ('lossless', 'lossy', 'none', 'custom')", name="ck_consolidation_params_compression"
        ),
    )
    op.create_table(
        "layout_files",
        sa.Column("container_uri", sa.Text, nullable=False),
        sa.Column("layout_name", sa.Text, nullable=False),
        sa.Column("instance_id", Uuid, nullable=False),
        sa.Column("cell_id", sa.Text, nullable=False),
        sa.Column("signature", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("container_uri", name="pk_layout_files"),
        sa.ForeignKeyConstraint(
            ["container_uri"], ["containers.uri"], ondelete="CASCADE", name="fk_layout_files_container_uri_containers"
        ),
        sa.ForeignKeyConstraint(
            ["layout_name"], ["layouts.name"], ondelete="CASCADE", name="fk_layout_files_layout_name_layouts"
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.id"], ondelete="CASCADE", name="fk_layout_files_instance_id_instances"
        ),
    )
    op.create_index(
        "ix_layout_files_layout_instance_cell", "layout_files", ["layout_name", "instance_id", "cell_id"]
    )


def downgrade() -> None:
    for table in ("layout_files", "consolidation_params", "locks", "tasks", "job_logs", "jobs"):
        op.drop_table(table)
