"""Per-project quotas: each project may set its own limits on waiting jobs, jobs holding slots and API
requests per second (NULL: the installation's settings). An index finds a project's waiting jobs.

A rolling upgrade from schema 6: code of schema 6 neither reads nor writes the new columns.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COMPATIBLE_FROM = 6


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("max_queued_jobs", sa.Integer))
        batch.add_column(sa.Column("max_running_jobs", sa.Integer))
        batch.add_column(sa.Column("requests_per_second", sa.Float))
    op.create_index("ix_jobs_project_status", "jobs", ["project_id", "status"])
    op.execute(f"UPDATE longshore_schema SET version = 7, compatible_from = {COMPATIBLE_FROM}")


def downgrade() -> None:
    raise NotImplementedError("Longshore's migrations go forward only: restore a backup to go back")
