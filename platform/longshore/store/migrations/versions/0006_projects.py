"""Projects and their API tokens. Every job, code and schedule belongs to a project; what existed before
(and whatever the Python API, the CLI or a Celery-native message submits without one) belongs to the
`default` project. A code's name is unique within its project: `codes` and `code_revisions` are rebuilt
with the project in their keys (their rows copied into the `default` project).

Not a rolling upgrade: schema-5 code looks codes up by name alone, so on this schema it could run one
project's job with another project's code of the same name. Processes of schema 5 refuse this schema
(compatible from 6); stop them, upgrade, start the new ones.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COMPATIBLE_FROM = 6
CODE_COLUMNS = "name, latest, stack, paused, max_concurrency, created_at, updated_at, deleted_at"
REVISION_COLUMNS = "name, revision, stack, defaults, config, max_concurrency, created_at, archive_sha256, entry"


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project_id", sa.String(32), sa.ForeignKey("projects.id"), nullable=False, index=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(100)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
    )
    op.execute("INSERT INTO projects (id, name, created_at) VALUES ('default', 'default', 0)")
    for table in ("jobs", "schedules"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("project_id", sa.String(32), nullable=False, server_default="default"))
            batch.create_index(f"ix_{table}_project_created", ["project_id", "created_at"])
    op.create_table(
        "codes_by_project",
        sa.Column("project_id", sa.String(32), primary_key=True),
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
        "code_revisions_by_project",
        sa.Column("project_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True),
        sa.Column("stack", sa.String(64), nullable=False),
        sa.Column("defaults", sa.JSON, nullable=False),
        sa.Column("config", sa.Text),
        sa.Column("max_concurrency", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("archive_sha256", sa.String(64)),
        sa.Column("entry", sa.String(255)),
        sa.ForeignKeyConstraint(["project_id", "name"], ["codes_by_project.project_id", "codes_by_project.name"]),
    )
    if op.get_bind().dialect.name == "postgresql":  # no upload may commit between the copy and the drop
        op.execute("LOCK TABLE codes, code_revisions IN EXCLUSIVE MODE")
    op.execute(f"INSERT INTO codes_by_project (project_id, {CODE_COLUMNS}) SELECT 'default', {CODE_COLUMNS} FROM codes")
    op.execute(f"INSERT INTO code_revisions_by_project (project_id, {REVISION_COLUMNS}) "
               f"SELECT 'default', {REVISION_COLUMNS} FROM code_revisions")
    op.drop_table("code_revisions")
    op.drop_table("codes")
    op.rename_table("codes_by_project", "codes")
    op.rename_table("code_revisions_by_project", "code_revisions")
    op.execute(f"UPDATE longshore_schema SET version = 6, compatible_from = {COMPATIBLE_FROM}")


def downgrade() -> None:
    raise NotImplementedError("Longshore's migrations go forward only: restore a backup to go back")
