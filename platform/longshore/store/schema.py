"""The store's tables, and creating or checking them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.domain.steps import TIMED_STEPS
from longshore.errors import ConfigError
from longshore.store.database import is_postgres

SCHEMA_VERSION = 1
#: Serialises migrators when many workers start together (PostgreSQL advisory lock id).
MIGRATION_LOCK_ID = 7340017

metadata = sa.MetaData()

jobs = sa.Table(
    "jobs",
    metadata,
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
    sa.Column("retries", sa.Integer, nullable=False, default=0),
    sa.Column("retries_used", sa.Integer, nullable=False, default=0),
    sa.Column("retry_delay_seconds", sa.Float, nullable=False, default=0),
    sa.Column("published_at", sa.Float),
    sa.Column("exit_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("result", sa.Text),
    sa.Column("output", sa.Text),
    sa.Column("output_truncated", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
)

attempts = sa.Table(
    "attempts",
    metadata,
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
    *(sa.Column(f"{step.value}_seconds", sa.Float) for step in TIMED_STEPS),
    sa.Column("infra_retries", sa.Integer, nullable=False, default=0),
    sa.Column("redeliveries", sa.Integer, nullable=False, default=0),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("stacks", sa.JSON, nullable=False),
    sa.Column("slots", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    # The latest span in which the worker's heartbeat could not reach its Docker engine.
    sa.Column("engine_down_from", sa.Float),
    sa.Column("engine_down_until", sa.Float),
)

schema_version = sa.Table(
    "longshore_schema",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)


def upgrade(engine: Engine) -> int:
    """Create or migrate the schema to SCHEMA_VERSION; return the version reached."""
    with engine.begin() as conn:
        if is_postgres(engine):
            conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"))
        metadata.create_all(conn)
        current = conn.execute(sa.select(schema_version.c.version)).scalar()
        if current is None:
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
        elif current > SCHEMA_VERSION:
            raise ConfigError(
                f"LONGSHORE_DATABASE_URL: the schema is at version {current}, newer than "
                f"this Longshore ({SCHEMA_VERSION}); upgrade Longshore"
            )
        _check_columns(engine, conn)
    return SCHEMA_VERSION


def _check_columns(engine: Engine, conn: sa.Connection) -> None:
    """Refuse, with the way out named, a store whose tables lack columns this version needs."""
    inspector = sa.inspect(conn)
    for table in (jobs, attempts, workers):
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing = sorted(set(table.c.keys()) - present)
        if missing:
            raise ConfigError(
                f"LONGSHORE_DATABASE_URL: table {table.name} of {engine.url.render_as_string()} "
                f"lacks columns {', '.join(missing)}: it was made by a pre-release Longshore; "
                "move it aside (for the embedded default, delete $LONGSHORE_HOME/longshore.db)"
            )


def check(engine: Engine) -> None:
    """Raise ConfigError unless the schema is current (PostgreSQL is upgraded by hand)."""
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.select(schema_version.c.version)).scalar()
    except sa.exc.ProgrammingError:
        version = None
    except sa.exc.OperationalError as exc:
        if not is_postgres(engine):
            version = None
        else:
            raise ConfigError(f"LONGSHORE_DATABASE_URL: cannot connect: {exc.orig}".strip()) from None
    if version != SCHEMA_VERSION:
        raise ConfigError(
            f"LONGSHORE_DATABASE_URL: the schema is at version {version or 0}, "
            f"expected {SCHEMA_VERSION}: run `longshore db upgrade`"
        )
