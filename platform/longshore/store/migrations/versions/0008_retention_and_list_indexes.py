"""Retention and lists at scale. A job whose output, result, payload, config and env the janitor deleted
(LONGSHORE_RETENTION_OUTPUT_DAYS) says when (`erased_at`); an index holds the ended jobs not yet erased, by
when they ended, so each pass finds the next ones without reading those done before.

The indexes behind filtered lists gain the list's order: a page of a status, a label or a code (of a project
or of all) is read in created_at order from its cursor, instead of every match being read and sorted (at a
million jobs a deep page of a code's jobs took 90 ms, and grew with the store). Each replaces the index that
was its prefix, so inserts maintain as many indexes as before. On PostgreSQL they are built CONCURRENTLY,
outside a transaction: the jobs table keeps taking submits and status changes while they are built (about
20 s at a million jobs on two busy cores; a plain CREATE INDEX held every write for that long). Each statement
can be run again, so a migration stopped half-way (a build that failed leaves an INVALID index of that name)
is finished by the next `longshore db upgrade`.

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
    not_erased = sa.text("erased_at IS NULL")
    if op.get_bind().dialect.name != "postgresql":
        op.add_column("jobs", sa.Column("erased_at", sa.Float))
        op.create_index("ix_jobs_erasable", "jobs", ["finished_at"], sqlite_where=not_erased)
        for old, (new, columns) in LIST_INDEXES.items():
            op.create_index(new, "jobs", columns)
            op.drop_index(old, table_name="jobs")
    else:
        with op.get_context().autocommit_block():
            if "erased_at" not in {column["name"] for column in sa.inspect(op.get_bind()).get_columns("jobs")}:
                op.add_column("jobs", sa.Column("erased_at", sa.Float))  # a moment's exclusive lock
            _build_concurrently("ix_jobs_erasable", ["finished_at"], where=not_erased)
            for old, (new, columns) in LIST_INDEXES.items():
                _build_concurrently(new, columns)
                op.drop_index(old, table_name="jobs", postgresql_concurrently=True, if_exists=True)
    op.execute(f"UPDATE longshore_schema SET version = 8, compatible_from = {COMPATIBLE_FROM}")


def _build_concurrently(name: str, columns: list[str], where: sa.TextClause | None = None) -> None:
    """Build an index without blocking writes; one left INVALID by a build that failed is built again."""
    invalid = op.get_bind().execute(sa.text(
        "SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = pg_index.indexrelid "
        "WHERE pg_index.indrelid = 'jobs'::regclass AND pg_class.relname = :name AND NOT pg_index.indisvalid"),
        {"name": name}).first()
    if invalid:
        op.drop_index(name, table_name="jobs", postgresql_concurrently=True)
    op.create_index(name, "jobs", columns, postgresql_where=where, postgresql_concurrently=True, if_not_exists=True)


def downgrade() -> None:
    raise NotImplementedError("Longshore's migrations go forward only: restore a backup to go back")
