"""Export jobs: ``jobs.type`` may also be ``'export'`` (a cube written to a file by a job, see
:mod:`geocube_dask.exporting`).

PostgreSQL changes the CHECK constraint in place. SQLite cannot alter a constraint: the table is
rebuilt. Dropping the old ``jobs`` table would delete the rows of ``job_logs``, ``tasks`` and ``locks``
through their ``ON DELETE CASCADE`` (foreign keys are on, and cannot be turned off inside the
migration's transaction), so those rows are kept aside in temporary tables and put back.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from geocube_dask.catalog.db.coltypes import JSONText, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Uuid = sa.Uuid(as_uuid=False)
OLD = "type IN ('consolidation', 'deletion')"
NEW = "type IN ('consolidation', 'deletion', 'export')"
CHILDREN = ("job_logs", "tasks", "locks")  # the tables whose rows a DROP TABLE jobs would delete


def _jobs_columns() -> list[sa.Column]:
    """The columns of ``jobs`` (as revision 0003 made them), in the same order."""
    return [
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
    ]


def _rebuild_sqlite_jobs(check: str) -> None:
    """Recreate SQLite's ``jobs`` with the CHECK ``check``, keeping every row of it and of its children."""
    for child in CHILDREN:
        op.execute(f"CREATE TEMP TABLE keep_{child} AS SELECT * FROM {child}")
    op.create_table(
        "jobs_rebuilt",
        *_jobs_columns(),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("name", name="uq_jobs_name"),
        sa.CheckConstraint(check, name="ck_jobs_type"),
    )
    op.execute("INSERT INTO jobs_rebuilt SELECT * FROM jobs")
    op.drop_index("ix_jobs_state", table_name="jobs")
    op.drop_table("jobs")  # cascades to the children: their rows were kept aside
    op.rename_table("jobs_rebuilt", "jobs")
    op.create_index("ix_jobs_state", "jobs", ["state"])
    for child in CHILDREN:
        op.execute(f"INSERT INTO {child} SELECT * FROM keep_{child}")
        op.execute(f"DROP TABLE keep_{child}")


def _set_check(check: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_jobs(check)
    else:
        op.drop_constraint("ck_jobs_type", "jobs", type_="check")
        op.create_check_constraint("ck_jobs_type", "jobs", check)


def upgrade() -> None:
    _set_check(NEW)


def downgrade() -> None:
    op.execute("DELETE FROM jobs WHERE type = 'export'")
    _set_check(OLD)
