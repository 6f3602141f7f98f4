"""Fenced attempts, bytes for output and results, counts for the exporter, a compatibility range.

Expand only: the text columns `jobs.output` and `jobs.result` stay (unused from this
release, dropped by a later one); their contents are copied as UTF-8 bytes.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: The oldest code version that may run on this schema (code at 1 refuses anything but 1).
COMPATIBLE_FROM = 2
FINAL = ("succeeded", "failed", "timed_out", "oom_killed", "cancelled")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("output_bytes", sa.LargeBinary))
        jobs.add_column(sa.Column("result_bytes", sa.LargeBinary))
        jobs.add_column(sa.Column("requeues", sa.Integer, nullable=False, server_default="0"))
        jobs.add_column(sa.Column("not_before", sa.Float))
        jobs.add_column(sa.Column("published_by", sa.String(255)))
        jobs.create_index("ix_jobs_created_at", ["created_at"])
        jobs.create_index("ix_jobs_unpublished", ["status", "published_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE jobs SET output_bytes = convert_to(output, 'UTF8'), "
                   "result_bytes = convert_to(result, 'UTF8')")
    else:
        op.execute("UPDATE jobs SET output_bytes = CAST(output AS BLOB), result_bytes = CAST(result AS BLOB)")
    with op.batch_alter_table("attempts") as attempts:
        attempts.add_column(sa.Column("engine", sa.String(80)))
        attempts.add_column(sa.Column("claimed_at", sa.Float))
        attempts.add_column(sa.Column("progress_at", sa.Float))
        attempts.add_column(sa.Column("released_at", sa.Float))
        attempts.add_column(sa.Column("redrives", sa.Integer, nullable=False, server_default="0"))
        attempts.create_index("ix_attempts_worker_released", ["worker", "released_at"])
    op.execute("UPDATE attempts SET released_at = finished_at WHERE finished_at IS NOT NULL")
    if op.get_bind().dialect.name == "sqlite":
        # An embedded store: the first release's queued jobs were published into the memory of processes
        # that have ended. Unpublished, they are published again by the next process that runs a worker.
        op.execute("UPDATE jobs SET published_at = NULL WHERE status = 'queued'")
    with op.batch_alter_table("workers") as workers:
        workers.add_column(sa.Column("engine", sa.String(80)))
        workers.add_column(sa.Column("instance", sa.String(32)))
        workers.add_column(sa.Column("pid", sa.Integer))
    op.create_table(
        "job_counts",
        sa.Column("stack", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("current", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
    )
    final = ", ".join(f"'{status}'" for status in FINAL)
    op.execute(f"INSERT INTO job_counts (stack, status, current, total) SELECT stack, status, count(*), "
               f"CASE WHEN status IN ({final}) THEN count(*) ELSE 0 END FROM jobs GROUP BY stack, status")
    op.execute("INSERT INTO job_counts (stack, status, current, total) "
               "SELECT stack, 'submitted', 0, count(*) FROM jobs GROUP BY stack")
    with op.batch_alter_table("longshore_schema") as schema:
        schema.add_column(sa.Column("compatible_from", sa.Integer, nullable=False, server_default="1"))
    op.execute(f"UPDATE longshore_schema SET version = 2, compatible_from = {COMPATIBLE_FROM}")


def downgrade() -> None:
    raise NotImplementedError("Longshore's migrations go forward only: restore a backup to go back")
