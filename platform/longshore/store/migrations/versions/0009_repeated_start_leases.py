"""A start tried again, under a lease: an attempt says when its owner's repeated start began its work on the
attempt's container (`repair_at`: one start at a time; a lease older than the worker's redrive time is taken
over), and which refused container it made afresh (`remade_from`: once per attempt). While a lease is held, a
wait that finds no container sends the start again rather than calling the attempt lost.

A rolling upgrade from schema 8: code of schema 8 neither reads nor writes the new columns.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COMPATIBLE_FROM = 8


def upgrade() -> None:
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("attempts")}
    with op.batch_alter_table("attempts") as batch:
        if "repair_at" not in present:
            batch.add_column(sa.Column("repair_at", sa.Float))
        if "remade_from" not in present:
            batch.add_column(sa.Column("remade_from", sa.String(80)))
    op.execute(f"UPDATE longshore_schema SET version = 9, compatible_from = {COMPATIBLE_FROM}")


def downgrade() -> None:
    raise NotImplementedError("Longshore's migrations go forward only: restore a backup to go back")
