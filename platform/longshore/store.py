"""Jobs and attempts in a real store: PostgreSQL (psycopg2) or embedded SQLite.

Every status change is one guarded UPDATE: it names the statuses the job may
come from and the attempt it belongs to, so a duplicate or late message can
never move a job backwards or finish it twice. When a job ends, waiters are
told at once: PostgreSQL's NOTIFY across processes, a condition in-process.
"""

from __future__ import annotations

import json
import select
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.errors import ConfigError, JobNotFound, WaitTimeout
from longshore.status import FINAL_STATUSES, JobStatus, sources_of

SCHEMA_VERSION = 1
FINISHED_CHANNEL = "longshore_job_finished"
#: How often an SQLite waiter re-reads the job, in case another process finished it.
SQLITE_RECHECK_SECONDS = 0.25

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
    sa.Column("pull_seconds", sa.Float),
    sa.Column("create_seconds", sa.Float),
    sa.Column("start_seconds", sa.Float),
    sa.Column("wait_seconds", sa.Float),
    sa.Column("reap_seconds", sa.Float),
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

LIFECYCLE_STEPS = ("pull", "create", "start", "wait", "reap")


@dataclass(frozen=True)
class Attempt:
    """One execution of a job: where it ran and how long each step took."""

    job_id: str
    number: int
    status: str
    worker: str | None
    host: str | None
    container_id: str | None
    container_name: str | None
    exit_code: int | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    reaped_at: float | None
    infra_retries: int = 0
    redeliveries: int = 0
    step_seconds: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Job:
    """A job as the store holds it."""

    id: str
    stack: str
    image: str
    command: list[str] | None
    env: dict[str, str]
    payload: str
    timeout_seconds: float
    memory_bytes: int
    cpus: float
    status: JobStatus
    attempt: int
    retries: int
    retries_used: int
    retry_delay_seconds: float
    published_at: float | None
    exit_code: int | None
    error: str | None
    result: str | None
    output: str | None
    output_truncated: bool
    created_at: float
    started_at: float | None
    finished_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (status as its string)."""
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["status"] = self.status.value
        data["payload"] = json.loads(self.payload)
        return data


@dataclass(frozen=True, kw_only=True)
class NewJob:
    """What a caller asks for; validated by `jobs.build_job` before it gets here."""

    stack: str
    image: str
    command: list[str] | None
    env: dict[str, str]
    payload: str
    timeout_seconds: float
    memory_bytes: int
    cpus: float
    retries: int = 0
    retry_delay_seconds: float = 0.0
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


class Store:
    """The jobs and attempts tables behind one SQLAlchemy engine."""

    def __init__(self, url: str):
        self.url = _driver_url(url)
        self.is_postgres = self.url.startswith("postgresql")
        if self.is_postgres:
            self.engine: Engine = sa.create_engine(self.url, pool_pre_ping=True, pool_size=10)
        else:
            self.engine = sa.create_engine(
                self.url, connect_args={"check_same_thread": False, "timeout": 30}
            )
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._finished = threading.Condition()

    # -- schema -------------------------------------------------------------

    def upgrade(self) -> int:
        """Create or migrate the schema to SCHEMA_VERSION; return the version reached."""
        with self.engine.begin() as conn:
            if self.is_postgres:
                # One migrator at a time when many workers start together.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7340017)"))
            metadata.create_all(conn)
            current = conn.execute(sa.select(schema_version.c.version)).scalar()
            if current is None:
                conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
            elif current > SCHEMA_VERSION:
                raise ConfigError(
                    f"LONGSHORE_DATABASE_URL: the schema is at version {current}, newer than "
                    f"this Longshore ({SCHEMA_VERSION}); upgrade Longshore"
                )
            self._check_columns(conn)
        return SCHEMA_VERSION

    def _check_columns(self, conn: sa.Connection) -> None:
        """Refuse, with the way out named, a store whose tables lack columns this version needs."""
        inspector = sa.inspect(conn)
        for table in (jobs, attempts, workers):
            present = {column["name"] for column in inspector.get_columns(table.name)}
            missing = sorted(set(table.c.keys()) - present)
            if missing:
                raise ConfigError(
                    f"LONGSHORE_DATABASE_URL: table {table.name} of {self.engine.url.render_as_string()} "
                    f"lacks columns {', '.join(missing)}: it was made by a pre-release Longshore; "
                    "move it aside (for the embedded default, delete $LONGSHORE_HOME/longshore.db)"
                )

    def check_schema(self) -> None:
        """Raise ConfigError unless the schema is current (PostgreSQL is upgraded by hand)."""
        try:
            with self.engine.connect() as conn:
                version = conn.execute(sa.select(schema_version.c.version)).scalar()
        except sa.exc.ProgrammingError:
            version = None
        except sa.exc.OperationalError as exc:
            if not self.is_postgres:
                version = None
            else:
                raise ConfigError(
                    f"LONGSHORE_DATABASE_URL: cannot connect: {exc.orig}".strip()
                ) from None
        if version != SCHEMA_VERSION:
            raise ConfigError(
                f"LONGSHORE_DATABASE_URL: the schema is at version {version or 0}, "
                f"expected {SCHEMA_VERSION}: run `longshore db upgrade`"
            )

    # -- writes -------------------------------------------------------------

    def create_job(self, new: NewJob) -> str:
        """Insert a queued job and its first attempt; return the job id."""
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                jobs.insert().values(
                    id=new.id, stack=new.stack, image=new.image, command=new.command,
                    env=new.env, payload=new.payload, timeout_seconds=new.timeout_seconds,
                    memory_bytes=new.memory_bytes, cpus=new.cpus, retries=new.retries, retries_used=0,
                    retry_delay_seconds=new.retry_delay_seconds,
                    status=JobStatus.QUEUED.value, attempt=1, output_truncated=False,
                    created_at=now,
                )
            )
            conn.execute(
                attempts.insert().values(
                    job_id=new.id, number=1, status=JobStatus.QUEUED.value, created_at=now,
                    infra_retries=0, redeliveries=0,
                )
            )
        return new.id

    def claim_attempt(self, job_id: str, number: int, *, worker: str, host: str, reclaim: bool = False) -> bool:
        """Record which worker runs this attempt; False when the attempt is stale, the job ended,
        or it was claimed already (a duplicate publish must not run it twice). `reclaim` is for
        the same message coming back (a redelivery or a retry): it takes the claim over while
        no pull of this attempt has completed."""
        with self.engine.begin() as conn:
            if not self._attempt_is_live(conn, job_id, number):
                return False
            may_claim = attempts.c.worker.is_(None)
            if reclaim:
                # The same pull coming back may move to any worker, but only while no pull
                # has completed: after that the attempt belongs to the worker that pulled.
                may_claim = sa.or_(may_claim, attempts.c.worker == worker,
                                   sa.and_(attempts.c.pull_seconds.is_(None), attempts.c.container_id.is_(None)))
            claimed = conn.execute(
                attempts.update()
                .where(attempts.c.job_id == job_id, attempts.c.number == number, may_claim)
                .values(worker=worker, host=host)
            )
        return claimed.rowcount == 1

    def mark_published(self, job_id: str) -> None:
        """Record that the job's current attempt reached the broker (closes the write-then-publish gap)."""
        with self.engine.begin() as conn:
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(published_at=time.time()))

    def count_infra_retry(self, job_id: str, number: int) -> int:
        """One more platform retry of a step of this attempt (never the user's retries); the new count."""
        return self._increment_attempt(job_id, number, attempts.c.infra_retries)

    def count_redelivery(self, job_id: str, number: int) -> int:
        """One more redelivery of a step of this attempt (its worker died); the new count."""
        return self._increment_attempt(job_id, number, attempts.c.redeliveries)

    def _increment_attempt(self, job_id: str, number: int, column: sa.Column) -> int:
        with self.engine.begin() as conn:
            conn.execute(
                attempts.update()
                .where(attempts.c.job_id == job_id, attempts.c.number == number)
                .values({column: column + 1})
            )
            return conn.execute(
                sa.select(column).where(attempts.c.job_id == job_id, attempts.c.number == number)
            ).scalar() or 0

    def next_attempt(self, job_id: str, number: int, *, outcome: JobStatus, exit_code: int | None = None,
                     error: str | None = None, user_retry: bool = False) -> bool:
        """End attempt `number` with `outcome` and queue attempt `number + 1`, atomically.

        Used for the job's own retries and for requeueing a lost attempt; False if the
        job had moved on (ended, cancelled, or already on a later attempt). Only a
        `user_retry` (the job's own code failed) counts against the job's retries."""
        now = time.time()
        with self.engine.begin() as conn:
            moved = conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.attempt == number,
                       jobs.c.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))
                .values(status=JobStatus.QUEUED.value, attempt=number + 1, published_at=None,
                        retries_used=jobs.c.retries_used + (1 if user_retry else 0))
            ).rowcount == 1
            if moved:
                self._update_attempt(conn, job_id, number, status=outcome.value, exit_code=exit_code,
                                     error=error, finished_at=now)
                conn.execute(attempts.insert().values(
                    job_id=job_id, number=number + 1, status=JobStatus.QUEUED.value, created_at=now,
                    infra_retries=0, redeliveries=0,
                ))
        return moved

    def heartbeat(self, name: str, *, host: str, stacks: list[str], slots: int, started_at: float) -> None:
        """Record that worker `name` is alive now."""
        now = time.time()
        with self.engine.begin() as conn:
            updated = conn.execute(
                workers.update().where(workers.c.name == name)
                .values(host=host, stacks=stacks, slots=slots, last_seen=now)
            ).rowcount
            if not updated:
                conn.execute(workers.insert().values(name=name, host=host, stacks=stacks, slots=slots,
                                                     started_at=started_at, last_seen=now))

    def engine_outage(self, name: str, *, down_from: float, down_until: float | None) -> None:
        """Record that worker `name` could not reach its engine from `down_from` (until `down_until`)."""
        with self.engine.begin() as conn:
            conn.execute(workers.update().where(workers.c.name == name)
                         .values(engine_down_from=down_from, engine_down_until=down_until))

    def engine_was_down(self, name: str, at: float, *, margin_seconds: float) -> bool:
        """True if worker `name`'s engine was unreachable around time `at` (the latest outage)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(workers.c.engine_down_from, workers.c.engine_down_until)
                               .where(workers.c.name == name)).first()
        if row is None or row.engine_down_from is None:
            return False
        until = row.engine_down_until if row.engine_down_until is not None else time.time()
        return row.engine_down_from - margin_seconds <= at <= until + margin_seconds

    def live_workers(self, seen_within_seconds: float) -> list[str]:
        """Workers that heart-beat within the window."""
        cutoff = time.time() - seen_within_seconds
        # A worker that stopped still counts until the window passes: restarted in
        # time, it takes back its own queue and finishes what it started.
        query = sa.select(workers.c.name).where(workers.c.last_seen >= cutoff)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def cancel(self, job_id: str) -> Job:
        """Cancel the job if it has not ended; return it as it now is."""
        job = self.get_job(job_id)
        if not job.status.final:
            self.finish(job_id, job.attempt, JobStatus.CANCELLED, error="cancelled by a user")
        return self.get_job(job_id)

    def unpublished_jobs(self, older_than_seconds: float) -> list[Job]:
        """Queued jobs whose current attempt never reached the broker (the process died in between)."""
        cutoff = time.time() - older_than_seconds
        query = sa.select(jobs).where(jobs.c.status == JobStatus.QUEUED.value, jobs.c.published_at.is_(None),
                                      jobs.c.created_at < cutoff)
        with self.engine.connect() as conn:
            return [_job(row) for row in conn.execute(query).mappings()]

    def claimed_unfinished_attempts(self) -> list[tuple[Job, Attempt]]:
        """Current attempts of unfinished jobs that a worker has claimed: the janitor checks their workers."""
        query = (
            sa.select(attempts)
            .join(jobs, sa.and_(jobs.c.id == attempts.c.job_id, jobs.c.attempt == attempts.c.number))
            .where(jobs.c.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
                   attempts.c.worker.is_not(None))
        )
        with self.engine.connect() as conn:
            rows = [_attempt(row) for row in conn.execute(query).mappings()]
        return [(self.get_job(a.job_id), a) for a in rows]

    def record_step(self, job_id: str, number: int, step: str, seconds: float, **fields: Any) -> None:
        """Store how long lifecycle step `step` took for an attempt, with any extra fields."""
        if step not in LIFECYCLE_STEPS:
            raise ValueError(f"unknown lifecycle step {step!r}")
        with self.engine.begin() as conn:
            conn.execute(
                attempts.update()
                .where(attempts.c.job_id == job_id, attempts.c.number == number)
                .values(**{f"{step}_seconds": seconds}, **fields)
            )

    def mark_running(self, job_id: str, number: int) -> bool:
        """queued → running for the current attempt; False if the guard refused."""
        now = time.time()
        with self.engine.begin() as conn:
            moved = self._transition(conn, job_id, number, JobStatus.RUNNING, started_at=now)
            if moved:
                self._update_attempt(conn, job_id, number, status=JobStatus.RUNNING.value, started_at=now)
        return moved

    def finish(
        self,
        job_id: str,
        number: int,
        status: JobStatus,
        *,
        exit_code: int | None = None,
        error: str | None = None,
        output: str | None = None,
        output_truncated: bool = False,
        result: str | None = None,
    ) -> bool:
        """Move the job to a final `status` once; False if it had already ended or the attempt is stale."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"{status} is not a final status")
        now = time.time()
        with self.engine.begin() as conn:
            moved = self._transition(
                conn, job_id, number, status, exit_code=exit_code, error=error, output=output,
                output_truncated=output_truncated, result=result, finished_at=now,
            )
            if moved:
                self._update_attempt(
                    conn, job_id, number, status=status.value, exit_code=exit_code,
                    error=error, finished_at=now,
                )
                if self.is_postgres:
                    conn.execute(sa.select(sa.func.pg_notify(FINISHED_CHANNEL, job_id)))
        if moved:
            with self._finished:
                self._finished.notify_all()
        return moved

    # -- reads --------------------------------------------------------------

    def get_job(self, job_id: str) -> Job:
        """The job with `job_id`, or JobNotFound."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        if row is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        return _job(row)

    def list_jobs(self, *, limit: int = 50, status: JobStatus | None = None) -> list[Job]:
        """The newest jobs first."""
        query = sa.select(jobs).order_by(jobs.c.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(jobs.c.status == status.value)
        with self.engine.connect() as conn:
            return [_job(row) for row in conn.execute(query).mappings()]

    def list_attempts(self, job_id: str) -> list[Attempt]:
        """The job's attempts, first first."""
        query = sa.select(attempts).where(attempts.c.job_id == job_id).order_by(attempts.c.number)
        with self.engine.connect() as conn:
            return [_attempt(row) for row in conn.execute(query).mappings()]

    def wait_finished(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job is final and return it; WaitTimeout after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_postgres:
            try:
                return self._wait_postgres(job_id, deadline)
            except (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg2.Error):
                # The database restarted under us: wait a moment and listen again.
                time.sleep(min(0.5, _remaining(deadline, job_id)))
        while True:
            job = self.get_job(job_id)
            if job.status.final:
                return job
            remaining = _remaining(deadline, job_id)
            with self._finished:
                self._finished.wait(min(remaining, SQLITE_RECHECK_SECONDS))

    # -- internals ----------------------------------------------------------

    def _wait_postgres(self, job_id: str, deadline: float | None) -> Job:
        raw = self.engine.raw_connection()
        try:
            dbapi = raw.driver_connection
            dbapi.autocommit = True
            with dbapi.cursor() as cursor:
                cursor.execute(f"LISTEN {FINISHED_CHANNEL}")
            # Listen first, then look: a job finishing in between is not missed.
            while True:
                job = self.get_job(job_id)
                if job.status.final:
                    return job
                remaining = _remaining(deadline, job_id)
                select.select([dbapi], [], [], min(remaining, 5.0))
                dbapi.poll()
                dbapi.notifies.clear()
        finally:
            try:
                with raw.driver_connection.cursor() as cursor:
                    cursor.execute(f"UNLISTEN {FINISHED_CHANNEL}")
                raw.driver_connection.autocommit = False  # pooled connections must stay transactional
                raw.close()
            except psycopg2.Error:
                raw.invalidate()  # a broken connection is not returned to the pool

    def _attempt_is_live(self, conn: sa.Connection, job_id: str, number: int) -> bool:
        row = conn.execute(
            sa.select(jobs.c.status, jobs.c.attempt).where(jobs.c.id == job_id)
        ).first()
        return row is not None and row.attempt == number and not JobStatus(row.status).final

    def _transition(self, conn: sa.Connection, job_id: str, number: int, target: JobStatus, **values: Any) -> bool:
        result = conn.execute(
            jobs.update()
            .where(
                jobs.c.id == job_id,
                jobs.c.attempt == number,
                jobs.c.status.in_([s.value for s in sources_of(target)]),
            )
            .values(status=target.value, **values)
        )
        return result.rowcount == 1

    def _update_attempt(self, conn: sa.Connection, job_id: str, number: int, **values: Any) -> None:
        conn.execute(
            attempts.update()
            .where(attempts.c.job_id == job_id, attempts.c.number == number)
            .values(**values)
        )


def _remaining(deadline: float | None, job_id: str) -> float:
    if deadline is None:
        return 3600.0
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise WaitTimeout(f"job {job_id} did not finish in time")
    return remaining


def _driver_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _job(row: Any) -> Job:
    return Job(
        id=row["id"], stack=row["stack"], image=row["image"], command=row["command"],
        env=row["env"] or {}, payload=row["payload"], timeout_seconds=row["timeout_seconds"],
        memory_bytes=row["memory_bytes"], cpus=row["cpus"], status=JobStatus(row["status"]),
        attempt=row["attempt"], retries=row["retries"], retries_used=row["retries_used"], retry_delay_seconds=row["retry_delay_seconds"],
        published_at=row["published_at"], exit_code=row["exit_code"], error=row["error"],
        result=row["result"], output=row["output"], output_truncated=bool(row["output_truncated"]),
        created_at=row["created_at"], started_at=row["started_at"], finished_at=row["finished_at"],
    )


def _attempt(row: Any) -> Attempt:
    return Attempt(
        job_id=row["job_id"], number=row["number"], status=row["status"], worker=row["worker"],
        host=row["host"], container_id=row["container_id"], container_name=row["container_name"],
        exit_code=row["exit_code"], error=row["error"], created_at=row["created_at"],
        started_at=row["started_at"], finished_at=row["finished_at"], reaped_at=row["reaped_at"],
        infra_retries=row["infra_retries"], redeliveries=row["redeliveries"],
        step_seconds={step: row[f"{step}_seconds"] for step in LIFECYCLE_STEPS},
    )
