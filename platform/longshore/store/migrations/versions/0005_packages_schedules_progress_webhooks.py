"""IronWorker's job model, second part: code archives (zip packages stored once by digest, a revision
naming its archive and entry file), schedules (each occurrence makes exactly one job: a unique index on
the job's schedule and occurrence), a job's progress, and signed webhooks (a durable outbox of deliveries,
in order per job).

Code of schema 4 may keep running on this schema during a rolling upgrade: it never sees a schedule or a
webhook, and shows no progress; but a schema-4 worker runs an archive code's job without its files (the
job fails in its own words): upgrade workers before uploading archive codes.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COMPATIBLE_FROM = 4


def upgrade() -> None:
    op.create_table(
        "code_archives",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("unpacked_bytes", sa.BigInteger, nullable=False),
        sa.Column("files", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    with op.batch_alter_table("code_revisions") as revisions:
        revisions.add_column(sa.Column("archive_sha256", sa.String(64)))
        revisions.add_column(sa.Column("entry", sa.String(255)))
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("label", sa.String(100)),
        sa.Column("start_at", sa.Float, nullable=False),
        sa.Column("run_every", sa.Float),
        sa.Column("run_times", sa.Integer),
        sa.Column("end_at", sa.Float),
        sa.Column("next_occurrence", sa.Integer),
        sa.Column("next_at", sa.Float),
        sa.Column("runs", sa.Integer, nullable=False, server_default="0"),
        sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_run_at", sa.Float),
        sa.Column("last_job_id", sa.String(64)),
        sa.Column("last_error", sa.Text),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("deleted_at", sa.Float),
        sa.Index("ix_schedules_next_at", "next_at"),
    )
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("schedule_id", sa.String(64)))
        jobs.add_column(sa.Column("schedule_occurrence", sa.Integer))
        jobs.add_column(sa.Column("progress", sa.Integer))
        jobs.add_column(sa.Column("progress_message", sa.Text))
        jobs.add_column(sa.Column("progress_at", sa.Float))
        jobs.add_column(sa.Column("webhook", sa.Text))
        jobs.create_index("ix_jobs_schedule", ["schedule_id", "schedule_occurrence"], unique=True)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("last_status", sa.Integer),
        sa.Column("delivered_at", sa.Float),
        sa.Column("abandoned_at", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Index("ix_webhook_deliveries_job", "job_id", "id"),
        sa.Index("ix_webhook_deliveries_pending", "delivered_at", "abandoned_at", "next_at"),
    )
    op.execute(f"UPDATE longshore_schema SET version = 5, compatible_from = {COMPATIBLE_FROM}")


def downgrade() -> None:
    raise NotImplementedError("Longshore's migrations go forward only: restore a backup to go back")
