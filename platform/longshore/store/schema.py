"""The store's tables as this code uses them, and migrating (Alembic, `migrations/`) or checking them."""

from __future__ import annotations

import contextlib
import fcntl
import time
from typing import Iterator

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from longshore.domain.projects import DEFAULT_PROJECT
from longshore.domain.steps import TIMED_STEPS
from longshore.errors import ConfigError
from longshore.store.database import is_postgres

#: The schema this code is written for: its Alembic revision is the same number, zero-padded.
SCHEMA_VERSION = 10
#: Serialises migrators when many workers start together (PostgreSQL advisory lock id).
MIGRATION_LOCK_ID = 7340017
#: How often a migrator waiting for another one asks for the lock again.
MIGRATION_LOCK_POLL_SECONDS = 0.2
#: The columns the first release (be077c2, schema version 1) made: a store lacking any of them
#: was made by a pre-release and cannot be migrated.
BASELINE_COLUMNS = {
    "jobs": {"id", "stack", "image", "command", "env", "payload", "timeout_seconds", "memory_bytes", "cpus",
             "status", "attempt", "retries", "retries_used", "retry_delay_seconds", "published_at", "exit_code",
             "error", "result", "output", "output_truncated", "created_at", "started_at", "finished_at"},
    "attempts": {"job_id", "number", "status", "worker", "host", "container_id", "container_name", "exit_code",
                 "error", "created_at", "started_at", "finished_at", "reaped_at", "pull_seconds", "create_seconds",
                 "start_seconds", "wait_seconds", "reap_seconds", "infra_retries", "redeliveries"},
    "workers": {"name", "host", "stacks", "slots", "started_at", "last_seen", "engine_down_from",
                "engine_down_until"},
}

metadata = sa.MetaData()

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    # Quotas (domain.quotas): NULL takes the installation's setting, 0 is no limit.
    sa.Column("max_queued_jobs", sa.Integer),
    sa.Column("max_running_jobs", sa.Integer),
    sa.Column("requests_per_second", sa.Float),
)

#: API tokens: only a digest (SHA-256) of each is kept; the token itself is shown once.
tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("project_id", sa.String(32), sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(100)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project_id", sa.String(32), nullable=False, server_default=DEFAULT_PROJECT),
    sa.Column("stack", sa.String(64), nullable=False, index=True),
    sa.Column("image", sa.Text, nullable=False),
    sa.Column("command", sa.JSON, nullable=True),
    sa.Column("env", sa.JSON, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("timeout_seconds", sa.Float, nullable=False),
    sa.Column("memory_bytes", sa.BigInteger, nullable=False),
    sa.Column("cpus", sa.Float, nullable=False),
    sa.Column("disk_bytes", sa.BigInteger, nullable=False, server_default=str(64 << 20)),
    sa.Column("secret_names", sa.JSON),
    sa.Column("secret_env", sa.Text),  #: sealed (Fernet); erased when the job ends
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),  #: 0-2, higher starts first
    sa.Column("label", sa.String(100)),
    sa.Column("retry_of", sa.String(64)),  #: the finished job this one retries (`longshore retry`)
    sa.Column("code", sa.String(100)),  #: the code it was queued for (`codes`), and its revision
    sa.Column("code_revision", sa.Integer),
    sa.Column("config", sa.Text),  #: the code's config, as JSON text: CONFIG_FILE
    sa.Column("schedule_id", sa.String(64)),  #: the schedule that made it, and which of its occurrences
    sa.Column("schedule_occurrence", sa.Integer),
    sa.Column("progress", sa.Integer),  #: 0-100, as the job last reported it, with its message
    sa.Column("progress_message", sa.Text),
    sa.Column("progress_at", sa.Float),
    sa.Column("webhook", sa.Text),  #: a URL told of each of its status changes (signed)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("retries", sa.Integer, nullable=False),
    sa.Column("retries_used", sa.Integer, nullable=False),
    sa.Column("retry_delay_seconds", sa.Float, nullable=False),
    sa.Column("requeues", sa.Integer, nullable=False, server_default="0"),  #: platform requeues so far
    sa.Column("not_before", sa.Float),  #: a new attempt waits in the store until then (a retry's delay)
    sa.Column("published_at", sa.Float),
    sa.Column("published_by", sa.String(255)),  #: an embedded process whose in-memory broker holds it
    sa.Column("exit_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("result_bytes", sa.LargeBinary),
    sa.Column("output_bytes", sa.LargeBinary),
    sa.Column("output_truncated", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("erased_at", sa.Float),  #: retention deleted its output, result, payload, config and env then
    # Unused since schema 2 (text could not hold NUL or invalid UTF-8); dropped by a later release.
    sa.Column("result", sa.Text),
    sa.Column("output", sa.Text),
    sa.Index("ix_jobs_created_at", "created_at"),
    sa.Index("ix_jobs_unpublished", "status", "published_at"),
    sa.Index("ix_jobs_retry_of", "retry_of"),
    sa.Index("ix_jobs_schedule", "schedule_id", "schedule_occurrence", unique=True),  # one job per occurrence
    # Lists, newest first, of everything, a project, a status, a label, a code (ReadModels.list_jobs); a
    # project's waiting jobs, for its quota
    sa.Index("ix_jobs_project_created", "project_id", "created_at"),
    sa.Index("ix_jobs_status_created", "status", "created_at"),
    sa.Index("ix_jobs_project_status_created", "project_id", "status", "created_at"),
    sa.Index("ix_jobs_label_project_created", "label", "project_id", "created_at"),
    sa.Index("ix_jobs_code_project_created", "code", "project_id", "created_at"),
    # Ended jobs whose data retention has yet to delete, by when they ended
    sa.Index("ix_jobs_erasable", "finished_at", postgresql_where=sa.text("erased_at IS NULL"),
             sqlite_where=sa.text("erased_at IS NULL")),
)

codes = sa.Table(
    "codes",
    metadata,
    sa.Column("project_id", sa.String(32), primary_key=True),  #: a name is unique within its project
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("latest", sa.Integer, nullable=False),  #: its newest revision
    sa.Column("stack", sa.String(64), nullable=False),  #: the newest revision's
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),  #: its jobs wait in the store
    sa.Column("max_concurrency", sa.Integer),  #: at most this many of its jobs hold a slot at once
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("deleted_at", sa.Float),  #: deleted: no new jobs (its queued ones still run)
)

code_revisions = sa.Table(
    "code_revisions",
    metadata,
    sa.Column("project_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True),
    sa.Column("stack", sa.String(64), nullable=False),
    sa.Column("defaults", sa.JSON, nullable=False),  #: job fields, validated at upload
    sa.Column("config", sa.Text),
    sa.Column("max_concurrency", sa.Integer),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("archive_sha256", sa.String(64)),  #: an archive code's zip (`code_archives`), and its entry file
    sa.Column("entry", sa.String(255)),
    sa.ForeignKeyConstraint(["project_id", "name"], ["codes.project_id", "codes.name"]),
)

#: Code archives (zip), stored once by digest: workers on any host read them from here.
code_archives = sa.Table(
    "code_archives",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("unpacked_bytes", sa.BigInteger, nullable=False),
    sa.Column("files", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project_id", sa.String(32), nullable=False, server_default=DEFAULT_PROJECT),
    sa.Column("request", sa.JSON, nullable=False),  #: the job fields each occurrence is submitted with
    sa.Column("label", sa.String(100)),
    sa.Column("start_at", sa.Float, nullable=False),
    sa.Column("run_every", sa.Float),
    sa.Column("run_times", sa.Integer),
    sa.Column("end_at", sa.Float),
    sa.Column("next_occurrence", sa.Integer),  #: the next occurrence (0 first) and when it is due; None: ended
    sa.Column("next_at", sa.Float),
    sa.Column("runs", sa.Integer, nullable=False, server_default="0"),  #: occurrences that made a job
    sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),  #: occurrences missed while down
    sa.Column("last_run_at", sa.Float),
    sa.Column("last_job_id", sa.String(64)),
    sa.Column("last_error", sa.Text),  #: why its last occurrence made no job (its code deleted, ...)
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("deleted_at", sa.Float),
    sa.Index("ix_schedules_next_at", "next_at"),
    sa.Index("ix_schedules_project_created", "project_id", "created_at"),
)

#: The webhook outbox: each status change of a job with a webhook, delivered in order per job.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
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

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("worker", sa.Text),  #: its owner: only this worker's writes touch it
    sa.Column("engine", sa.String(80)),  #: the Docker engine its container is (or would be) on
    sa.Column("host", sa.Text),
    sa.Column("container_id", sa.String(80)),
    sa.Column("container_name", sa.Text),
    sa.Column("exit_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("claimed_at", sa.Float),
    sa.Column("progress_at", sa.Float),  #: its owner's last step write: a stuck attempt is re-driven
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("released_at", sa.Float),  #: it stopped holding one of its worker's slots
    sa.Column("reaped_at", sa.Float),
    sa.Column("repair_at", sa.Float),  #: a repeated start of its owner works on its container (a lease)
    sa.Column("remade_from", sa.String(80)),  #: the refused container its container was made afresh from
    *(sa.Column(f"{step.value}_seconds", sa.Float) for step in TIMED_STEPS),
    sa.Column("infra_retries", sa.Integer, nullable=False),
    sa.Column("redeliveries", sa.Integer, nullable=False),
    sa.Column("redrives", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_attempts_worker_released", "worker", "released_at"),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("engine", sa.String(80)),
    sa.Column("instance", sa.String(32)),  #: a token per process start: two processes with one name show
    sa.Column("pid", sa.Integer),
    sa.Column("stacks", sa.JSON, nullable=False),
    sa.Column("slots", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    # The latest span in which the worker could not reach its Docker engine.
    sa.Column("engine_down_from", sa.Float),
    sa.Column("engine_down_until", sa.Float),
)

#: Jobs by stack and status, kept in the transaction of every status change, so the exporter
#: never counts the jobs table: `current` jobs in a status now, `total` that ever reached it
#: (status "submitted": every job accepted).
job_counts = sa.Table(
    "job_counts",
    metadata,
    sa.Column("stack", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("current", sa.BigInteger, nullable=False),
    sa.Column("total", sa.BigInteger, nullable=False),
)

schema_version = sa.Table(
    "longshore_schema",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
    #: the oldest code version that may still run on this schema (a rolling upgrade's window)
    sa.Column("compatible_from", sa.Integer, nullable=False, server_default="1"),
)


def upgrade(engine: Engine, *, revision: str = "head") -> int:
    """Migrate the store to SCHEMA_VERSION (or to an earlier `revision`, for tests of a migration) with
    Alembic (a new store, or one any release made)."""
    version, _compatible_from = _read_version(engine)
    if version > SCHEMA_VERSION:
        raise ConfigError(f"LONGSHORE_DATABASE_URL: the schema is at version {version}, newer than "
                          f"this Longshore ({SCHEMA_VERSION}); upgrade Longshore")
    with _migration_lock(engine), engine.connect() as conn:
        _stamp_first_release(engine, conn)
        conn.commit()  # no transaction around the migrations: each has its own (0008 builds indexes outside one)
        config = Config()
        config.set_main_option("script_location", "longshore.store:migrations")
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()
    return _read_version(engine)[0]


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """One migrator at a time when many processes start together: PostgreSQL's advisory lock, or a lock
    file beside the SQLite database."""
    if is_postgres(engine):
        # Polled with short statements, never waited for inside one: a migrator waiting in a statement holds
        # a snapshot, which the holder's CREATE INDEX CONCURRENTLY would wait for (neither would ever go on).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            while not conn.execute(sa.text(f"SELECT pg_try_advisory_lock({MIGRATION_LOCK_ID})")).scalar():
                time.sleep(MIGRATION_LOCK_POLL_SECONDS)
            try:
                yield
            finally:
                conn.execute(sa.text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})"))
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _stamp_first_release(engine: Engine, conn: sa.Connection) -> None:
    """A store of the first release has no alembic_version: check its columns, then stamp it at 0001."""
    tables = set(sa.inspect(conn).get_table_names())
    if "alembic_version" in tables or "longshore_schema" not in tables:
        return
    inspector = sa.inspect(conn)
    for table, wanted in BASELINE_COLUMNS.items():
        present = {column["name"] for column in inspector.get_columns(table)} if table in tables else set()
        missing = sorted(wanted - present)
        if missing:
            raise ConfigError(
                f"LONGSHORE_DATABASE_URL: table {table} of {engine.url.render_as_string()} "
                f"lacks columns {', '.join(missing)}: it was made by a pre-release Longshore; "
                "move it aside (for the embedded default, delete $LONGSHORE_HOME/longshore.db)"
            )
    conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
    conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES ('0001')"))
    conn.commit()


def _read_version(engine: Engine) -> tuple[int, int]:
    """(version, compatible_from) of the store; (0, 0) when it has no schema yet."""
    try:
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("longshore_schema")}
            if "compatible_from" in columns:
                row = conn.execute(sa.select(schema_version.c.version, schema_version.c.compatible_from)).first()
            else:  # the first release's table
                row = conn.execute(sa.select(schema_version.c.version, schema_version.c.version)).first()
    except sa.exc.NoSuchTableError:
        return 0, 0
    except sa.exc.OperationalError as exc:
        if is_postgres(engine):
            raise ConfigError(f"LONGSHORE_DATABASE_URL: cannot connect: {exc.orig}".strip()) from None
        return 0, 0
    return (row[0], row[1]) if row else (0, 0)


def current(engine: Engine) -> bool:
    """True when this code can run on the store as it is (no migration needed)."""
    version, compatible_from = _read_version(engine)
    return version == SCHEMA_VERSION or (version > SCHEMA_VERSION and compatible_from <= SCHEMA_VERSION)


def check(engine: Engine) -> None:
    """Raise ConfigError unless this code can run on the store: its version, or a newer one that
    declares itself compatible (a rolling upgrade: old workers on a new schema for one version)."""
    version, compatible_from = _read_version(engine)
    if version < SCHEMA_VERSION:
        raise ConfigError(
            f"LONGSHORE_DATABASE_URL: the schema is at version {version}, "
            f"expected {SCHEMA_VERSION}: run `longshore db upgrade`"
        )
    if compatible_from > SCHEMA_VERSION:
        raise ConfigError(
            f"LONGSHORE_DATABASE_URL: the schema is at version {version}, which this Longshore "
            f"({SCHEMA_VERSION}) cannot use (it needs version {compatible_from} or newer): upgrade Longshore"
        )
