"""The sandbox: a disk limit per job, sealed secret variables, and rejected submissions.

Jobs stored before this release get the default disk limit of their time (64 MiB). Code of
schema 2 does not know secret variables (it would run such a job without them), so it may not
run on this schema: upgrade every worker together.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COMPATIBLE_FROM = 3


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("disk_bytes", sa.BigInteger, nullable=False, server_default=str(64 << 20)))
        jobs.add_column(sa.Column("secret_names", sa.JSON))
        jobs.add_column(sa.Column("secret_env", sa.Text))
    op.execute(f"UPDATE longshore_schema SET version = 3, compatible_from = {COMPATIBLE_FROM}")


def downgrade() -> None:
    raise NotImplementedError("Longshore's migrations go forward only: restore a backup to go back")
