"""Retention and lists at scale. A job whose output, result, payload, config and env the janitor deleted
(LONGSHORE_RETENTION_OUTPUT_DAYS) says when (`erased_at`); an index holds the ended jobs not yet erased, by
when they ended, so each pass finds the next ones without reading those done before.

The indexes behind filtered lists gain the list's order: a page of a status, a label or a code (of a project
or of all) is read in created_at order from its cursor, instead of every match being read and sorted (at a
million jobs a deep page of a code's jobs took 90 ms, and grew with the store). Each replaces the index that
was its prefix, so inserts maintain as many indexes as before. The jobs table takes no writes while they are
built: about 20 s at a million jobs on two busy cores.

A rolling upgrade from schema 7: code of schema 7 neither reads nor writes `erased_at`, and uses the new
indexes as it used the old.

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COMPATIBLE_FROM = 7
#: The indexes replaced: old name → (new name, columns).
LIST_INDEXES = {
    "ix_jobs_status": ("ix_jobs_status_created", ["status", "created_at"]),
    "ix_jobs_project_status": ("ix_jobs_project_status_created", ["project_id", "status", "created_at"]),
    "ix_jobs_label": ("ix_jobs_label_project_created", ["label", "project_id", "created_at"]),
    "ix_jobs_code": ("ix_jobs_code_project_created", ["code", "project_id", "created_at"]),
}


def upgrade() -> None:
    op.add_column("jobs", sa.Column("erased_at", sa.Float))
    not_erased = sa.text("erased_at IS NULL")
    op.create_index("ix_jobs_erasable", "jobs", ["finished_at"], postgresql_where=not_erased, sqlite_where=not_erased)
    for old, (new, columns) in LIST_INDEXES.items():
        op.create_index(new, "jobs", columns)
        op.drop_index(old, table_name="jobs")
    op.execute(f"UPDATE longshore_schema SET version = 8, compatible_from = {COMPATIBLE_FROM}")


def downgrade() -> None:
    raise NotImplementedError("Longshore's migrations go forward only: restore a backup to go back")
