"""IronWorker's job model: a priority per job, a label, the link from a manual retry to the job it retries,
and codes (named, revisioned job defaults) with the code, revision and config of each job queued for one.
Delayed jobs use the existing `not_before`.

Code of schema 3 may keep running on this schema during a rolling upgrade: it inserts jobs with
priority 0 and no label, and publishes a delayed job when it is due as it publishes a retry's; but it
does not know codes, so a schema-3 worker runs a code's job without its CONFIG_FILE and ignores the
code's pause and concurrency: upgrade workers before queueing jobs by code.

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
        jobs.add_column(sa.Column("code", sa.String(100)))
        jobs.add_column(sa.Column("code_revision", sa.Integer))
        jobs.add_column(sa.Column("config", sa.Text))
        jobs.create_index("ix_jobs_retry_of", ["retry_of"])
        jobs.create_index("ix_jobs_code", ["code"])
    op.create_table(
        "codes",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("latest", sa.Integer, nullable=False),
        sa.Column("stack", sa.String(64), nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("max_concurrency", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("deleted_at", sa.Float),
    )
    op.create_table(
        "code_revisions",
        sa.Column("name", sa.String(100), sa.ForeignKey("codes.name"), primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True),
        sa.Column("stack", sa.String(64), nullable=False),
        sa.Column("defaults", sa.JSON, nullable=False),
        sa.Column("config", sa.Text),
        sa.Column("max_concurrency", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.execute(f"UPDATE longshore_schema SET version = 4, compatible_from = {COMPATIBLE_FROM}")


def downgrade() -> None:
    raise NotImplementedError("Longshore's migrations go forward only: restore a backup to go back")
