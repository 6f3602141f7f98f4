"""The schema of the first release (be077c2): jobs, attempts, workers and the schema version.

A store made by that release has these tables and no `alembic_version`; `longshore db
upgrade` stamps it at this revision and upgrades from here.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("stack", sa.String(64), nullable=False, index=True),
        sa.Column("image", sa.Text, nullable=False),
        sa.Column("command", sa.JSON, nullable=True),
        sa.Column("env", sa.JSON, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("timeout_seconds", sa.Float, nullable=False),
        sa.Column("memory_bytes", sa.BigInteger, nullable=False),
        sa.Column("cpus", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("retries", sa.Integer, nullable=False),
        sa.Column("retries_used", sa.Integer, nullable=False),
        sa.Column("retry_delay_seconds", sa.Float, nullable=False),
        sa.Column("published_at", sa.Float),
        sa.Column("exit_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("result", sa.Text),
        sa.Column("output", sa.Text),
        sa.Column("output_truncated", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
    )
    op.create_table(
        "attempts",
        sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("worker", sa.Text),
        sa.Column("host", sa.Text),
        sa.Column("container_id", sa.String(80)),
        sa.Column("container_name", sa.Text),
        sa.Column("exit_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("reaped_at", sa.Float),
        sa.Column("pull_seconds", sa.Float),
        sa.Column("create_seconds", sa.Float),
        sa.Column("start_seconds", sa.Float),
        sa.Column("wait_seconds", sa.Float),
        sa.Column("reap_seconds", sa.Float),
        sa.Column("infra_retries", sa.Integer, nullable=False),
        sa.Column("redeliveries", sa.Integer, nullable=False),
    )
    op.create_table(
        "workers",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("stacks", sa.JSON, nullable=False),
        sa.Column("slots", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("engine_down_from", sa.Float),
        sa.Column("engine_down_until", sa.Float),
    )
    op.create_table("longshore_schema", sa.Column("version", sa.Integer, nullable=False))
    op.execute("INSERT INTO longshore_schema (version) VALUES (1)")


def downgrade() -> None:
    for table in ("longshore_schema", "workers", "attempts", "jobs"):
        op.drop_table(table)
