"""A container made afresh: an attempt says when its owner began making its container again (`remade_at`), after
an engine that went down in the middle of its start refused every later start of it. While the attempt has no
container id and this is set, its container is being made again: a wait or a start that finds no container
finishes the remake instead of calling the attempt lost; an attempt's container is made again once at most.

A rolling upgrade from schema 8: code of schema 8 neither reads nor writes the new column.

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
    if "remade_at" not in {column["name"] for column in sa.inspect(op.get_bind()).get_columns("attempts")}:
        with op.batch_alter_table("attempts") as batch:
            batch.add_column(sa.Column("remade_at", sa.Float))
    op.execute(f"UPDATE longshore_schema SET version = 9, compatible_from = {COMPATIBLE_FROM}")


def downgrade() -> None:
    raise NotImplementedError("Longshore's migrations go forward only: restore a backup to go back")
