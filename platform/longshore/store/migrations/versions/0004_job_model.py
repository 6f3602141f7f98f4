"""IronWorker's job model, first part: a priority per job, a label, and the link from a manual retry to the
job it retries. Delayed jobs use the existing `not_before`.

Code of schema 3 may keep running on this schema during a rolling upgrade: it inserts jobs with
priority 0 and no label, and publishes a delayed job when it is due as it publishes a retry's.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COMPATIBLE_FROM = 3


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("priority", sa.Integer, nullable=False, server_default="0"))
        jobs.add_column(sa.Column("label", sa.String(100)))
        jobs.add_column(sa.Column("retry_of", sa.String(64)))
        jobs.create_index("ix_jobs_label", ["label"])
        jobs.create_index("ix_jobs_retry_of", ["retry_of"])
    op.execute(f"UPDATE longshore_schema SET version = 4, compatible_from = {COMPATIBLE_FROM}")


def downgrade() -> None:
    raise NotImplementedError("Longshore's migrations go forward only: restore a backup to go back")
