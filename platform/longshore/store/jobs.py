"""Jobs: the state machine, with one guarded `_move()` under every status write.

A status write is a compare-and-set: it names the attempt it belongs to, the status the job is in now (one of
those `domain.status.ALLOWED_TRANSITIONS` allows), and, for a step of a running attempt, the attempt's owner. A
duplicate or late message can never move a job backwards or finish it twice; a message for an attempt that is no
longer current, or from a worker that no longer owns it, touches nothing. The counts the exporter reads change
in the same transaction (a worker's start and finish: the same statement, `store.moves`).
"""

from __future__ import annotations

import time
from typing import Any, Mapping, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.domain.outcome import Outcome
from longshore.domain.records import Attempt, Finished, Job, NewJob
from longshore.domain.status import AttemptStatus, JobStatus, sources_of
from longshore.domain.steps import Step, timed_step
from longshore.domain.quotas import QUEUED_RETRY_AFTER_SECONDS
from longshore.errors import DuplicateJob, JobNotFound, ProjectNotFound, QuotaExceeded
from longshore.store.counts import count_move, queued_everywhere
from longshore.store.database import is_postgres, read, single_write
from longshore.store.moves import can_move_at_once, insert_at_once, move_at_once, movable_as_read
from longshore.store.notify import FinishListener
from longshore.store.rows import attempt_from_row, job_from_row, new_attempt_row, new_job_row
from longshore.store.schema import attempts, jobs, projects
from longshore.store.webhooks import record_change

UNFINISHED = [JobStatus.QUEUED.value, JobStatus.RUNNING.value]
#: A compare-and-set that lost a race reads the job again this many times.
CAS_TRIES = 5


class Moving(NamedTuple):
    """A job as a status move found it (`_MOVING`'s columns), when its caller knew it."""

    status: str
    attempt: int
    stack: str
    webhook: str | None
    started_at: float | None


class JobRepository:
    """Writes and reads of jobs (and the attempt rows that change with them)."""

    def __init__(self, engine: Engine, listener: FinishListener):
        self.engine = engine
        self.finishes = listener

    # -- the state machine ----------------------------------------------------

    def create(self, new: NewJob, *, sealed_secret_env: str | None = None, default_max_queued: int = 0) -> str:
        return self.create_many([(new, sealed_secret_env)], default_max_queued=default_max_queued)[0]

    def create_many(self, batch: list[tuple[NewJob, str | None]], *, default_max_queued: int = 0) -> list[str]:
        """Insert queued jobs of one project, each with its first attempt, all or none. Secret variables are
        stored only sealed (each job's `str`), never from the job. A delayed job waits in the store,
        unpublished, until `now + delay` (`publish_due` queues it then, once). QuotaExceeded when the project
        has its quota of waiting jobs (`default_max_queued` if it sets none; 0: no limit)."""
        [owner], now = {new.project_id for new, _sealed in batch}, time.time()  # one project per batch
        try:
            if len(batch) == 1 and not default_max_queued and not batch[0][0].webhook and is_postgres(self.engine):
                with single_write(self.engine) as conn:
                    if insert_at_once(conn, new_job_row(*batch[0], now)):
                        return [batch[0][0].id]  # else its project has a quota, or is not there: checked below
            with self.engine.begin() as conn:
                _check_queued_quota(conn, owner, len(batch), default_max_queued)
                for new, sealed in sorted(batch, key=lambda item: item[0].stack):  # counts' rows in one order
                    _insert(conn, new, sealed, now)
        except sa.exc.IntegrityError:
            ids = " or ".join(repr(new.id) for new, _sealed in batch)
            raise DuplicateJob(f"job_id: a job with id {ids} exists already") from None
        return [new.id for new, _sealed in batch]

    def reject(self, job_id: str, stack: str, error: str) -> bool:
        """Store a submission that was refused as a `rejected` job holding only why, so its sender can read
        it by its id; False if a job with that id exists already."""
        now = time.time()
        try:
            with self.engine.begin() as conn:
                conn.execute(jobs.insert().values(
                    id=job_id, stack=stack, image="", command=None, env={}, payload="{}", timeout_seconds=0,
                    memory_bytes=0, cpus=0, disk_bytes=0, retries=0, retries_used=0, retry_delay_seconds=0,
                    requeues=0, status=JobStatus.REJECTED.value, attempt=0, error=error, output_truncated=False,
                    created_at=now, finished_at=now))
                count_move(conn, stack, None, JobStatus.REJECTED.value)  # never accepted: not "submitted"
                self.finishes.announce(conn, job_id)
        except sa.exc.IntegrityError:
            return False
        self.finishes.wake_local(job_id)
        return True

    def begin_running(self, job_id: str, number: int, *, owner: str, known: Job | None = None) -> bool:
        """queued → running, just before the owner starts the attempt's container; False if fenced. `known`:
        the job as the start read it (see `_move`)."""
        now = time.time()
        running = dict(status=AttemptStatus.RUNNING.value, started_at=now, progress_at=now)
        return self._move_with_attempt(job_id, number, JobStatus.RUNNING, owner=owner, known=known,
                                       job_values=dict(started_at=now), attempt_values=running) is not None

    def finish(self, job_id: str, number: int, outcome: Outcome, *, owner: str | None = None,
               took: tuple[Step, float] | None = None, known: Job | None = None,
               held: Mapping[Step, float] | None = None) -> Finished | None:
        """Move the job to its final status once; None if it had ended, the attempt is stale, or (with `owner`)
        another worker owns it. The attempt stops holding its slot and records `took` (step, seconds) and `held`
        (earlier steps' seconds). `known`: the job as the step that ends it read it (see `_move`)."""
        if not outcome.status.final:
            raise ValueError(f"{outcome.status} is not a final status")
        now = time.time()
        timed = _timed({**(held or {}), **dict([took] if took else [])}, now)
        moved = self._move_with_attempt(
            job_id, number, outcome.status, owner=owner, known=known, announce=True,
            job_values=dict(exit_code=outcome.exit_code, error=outcome.error, output_bytes=outcome.output,
                            output_truncated=outcome.output_truncated, result_bytes=outcome.result, finished_at=now),
            attempt_values=dict(status=outcome.status.value, exit_code=outcome.exit_code, error=outcome.error,
                                finished_at=now, **timed), kept=dict(released_at=now))
        if moved is None:
            return None
        self.finishes.wake_local(job_id)
        return Finished(moved.stack, None if moved.started_at is None else max(now - moved.started_at, 0))

    def _move_with_attempt(self, job_id: str, number: int, target: JobStatus, *, owner: str | None,
                           known: Job | None, job_values: dict[str, Any], attempt_values: dict[str, Any],
                           kept: dict[str, Any] | None = None, announce: bool = False) -> sa.Row | Moving | None:
        """`_move` the job, set its attempt's `attempt_values` and its `kept` columns not set yet, and with
        `announce` notify its waiters: in one statement where `store.moves` can, else in a transaction."""
        if target.final:
            job_values = {**job_values, "secret_env": None}  # a job that ended needs its secrets no more
        if is_postgres(self.engine) and can_move_at_once(known, number, target):
            with single_write(self.engine) as conn:
                row = move_at_once(conn, job_id, number, known.status, target, owner=owner, job_values=job_values,
                                   attempt_values=attempt_values, kept=kept or {}, announce=announce)
            if row is not None:
                return row
            known = None  # the job moved meanwhile: read it
        with self.engine.begin() as conn:
            moved = _move(conn, job_id, number, target, owner=owner, known=known, **job_values)
            if moved:
                update_attempt(conn, job_id, number, **attempt_values, **{
                    name: sa.func.coalesce(attempts.c[name], value) for name, value in (kept or {}).items()})
                if announce:
                    self.finishes.announce(conn, job_id)
        return moved

    def next_attempt(self, job_id: str, number: int, ended: AttemptStatus, *, error: str | None,
                     exit_code: int | None = None, user_retry: bool = False, owner: str | None = None,
                     unstarted_only: bool = False, not_before: float | None = None) -> bool:
        """End attempt `number` as `ended` and queue attempt `number + 1`, atomically.

        For the job's own retries (`user_retry`, which counts against its retries) and for requeueing a lost
        attempt (which counts against its requeues); False if the job had moved on. `owner` fences the write
        to the attempt's owner; `unstarted_only` to an attempt whose container was never started. The new
        attempt waits in the store, not on the broker, until `not_before`; no publisher holds it yet (one
        that held the old attempt's pull would hide it from `publish_due`, or publish it twice)."""
        now = time.time()
        guards = ([attempts.c.worker == owner] if owner is not None else []) + (
            [attempts.c.started_at.is_(None)] if unstarted_only else [])
        with self.engine.begin() as conn:
            moved = _move(
                conn, job_id, number, JobStatus.QUEUED, attempt_guard=sa.and_(*guards) if guards else None,
                attempt=number + 1, published_at=None, published_by=None, not_before=not_before,
                retries_used=jobs.c.retries_used + (1 if user_retry else 0),
                # an attempt lost before it started says nothing about the job: only started ones count
                requeues=jobs.c.requeues + (0 if user_retry or unstarted_only else 1))
            if moved:
                update_attempt(conn, job_id, number, status=ended.value, exit_code=exit_code, error=error,
                               finished_at=now, released_at=sa.func.coalesce(attempts.c.released_at, now))
                insert_attempt(conn, job_id, number + 1, now)
        return moved is not None

    def cancel(self, job_id: str) -> tuple[Job, Attempt | None]:
        """Cancel the job if it has not ended, whatever its current attempt (one compare-and-set, so a
        cancel racing a retry still cancels). Return the job and the attempt that was current, whose
        container (if it started one) its owner must now stop."""
        now = time.time()
        error = "cancelled by a user"
        with self.engine.begin() as conn:
            moved = _move(conn, job_id, None, JobStatus.CANCELLED, error=error, finished_at=now)
            number = None if moved is None else moved.attempt
            if number is not None:
                never_started = attempts.c.started_at.is_(None)
                update_attempt(conn, job_id, number, status=AttemptStatus.CANCELLED.value, error=error,
                               finished_at=now, released_at=sa.case((never_started, now),
                                                                    else_=attempts.c.released_at))
                self.finishes.announce(conn, job_id)
        if number is None:
            return self.get(job_id), None
        self.finishes.wake_local(job_id)
        return self.get(job_id), self.attempt(job_id, number)

    def set_progress(self, job_id: str, number: int, percent: int, message: str) -> bool:
        """Record a running attempt's progress; False if the job is not running that attempt."""
        with single_write(self.engine) as conn:
            return conn.execute(jobs.update().where(jobs.c.id == job_id, jobs.c.attempt == number,
                                                    jobs.c.status == JobStatus.RUNNING.value)
                                .values(progress=percent, progress_message=message,
                                        progress_at=time.time())).rowcount == 1

    def mark_published(self, job_id: str, number: int, *, by: str | None = None) -> None:
        """Record that attempt `number` reached the broker; `by`: the embedded process whose in-memory broker
        holds it. Not once a worker forwarded the pull or put the job back (`_UNMARKED`)."""
        with single_write(self.engine) as conn:
            conn.execute(_MARK_PUBLISHED, {"w_job_id": job_id, "w_attempt": number, "published_at": time.time(),
                                           "published_by": by})

    def mark_forwarded(self, job_id: str, number: int, *, to: str) -> bool:
        """Record that attempt `number`'s pull now waits in worker `to`'s own queue (taken from its stack's
        queue); if `to` is lost, or the pull is not claimed for long, it is published again."""
        with single_write(self.engine) as conn:
            return conn.execute(_MARK_FORWARDED, {"w_job_id": job_id, "w_attempt": number,
                                                  "published_at": time.time(), "published_by": to}).rowcount == 1

    # -- reads ------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        """The job with `job_id`, or JobNotFound."""
        with read(self.engine) as conn:
            row = conn.execute(_GET, {"job_id": job_id}).mappings().first()
        if row is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        return job_from_row(row)

    def attempts(self, job_id: str) -> list[Attempt]:
        """The job's attempts, first first."""
        with read(self.engine) as conn:
            return [attempt_from_row(row) for row in conn.execute(ATTEMPTS_OF_JOB, {"job_id": job_id}).mappings()]

    def attempt(self, job_id: str, number: int) -> Attempt | None:
        """One attempt of the job, None if there is no such attempt."""
        with read(self.engine) as conn:
            row = conn.execute(_ATTEMPT, {"job_id": job_id, "number": number}).mappings().first()
        return None if row is None else attempt_from_row(row)

    def wait_finished(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job is final and return it; WaitTimeout after `timeout` seconds."""
        return self.finishes.wait(job_id, self.get, timeout)


# Statements of every job's path, built once: SQLAlchemy finds a compiled statement by the statement's cache
# key, which it computes once per statement object ("w_" parameters are the WHERE's).
_GET = sa.select(jobs).where(jobs.c.id == sa.bindparam("job_id"))
ATTEMPTS_OF_JOB = (sa.select(attempts).where(attempts.c.job_id == sa.bindparam("job_id"))
                   .order_by(attempts.c.number))
_ATTEMPT = sa.select(attempts).where(attempts.c.job_id == sa.bindparam("job_id"),
                                     attempts.c.number == sa.bindparam("number"))
#: A queued attempt nothing has happened to since its publish: a worker may forward its pull (to its own
#: queue) or put the job back to wait in the store (a paused code) before the publisher's mark, which must
#: then not hide either from `publish_due`.
_UNMARKED = (jobs.c.status == JobStatus.QUEUED.value, jobs.c.published_at.is_(None), jobs.c.published_by.is_(None),
             jobs.c.not_before.is_(None))
_ONE_ATTEMPT = (jobs.c.id == sa.bindparam("w_job_id"), jobs.c.attempt == sa.bindparam("w_attempt"))
_MARK_PUBLISHED = jobs.update().where(*_ONE_ATTEMPT, *_UNMARKED)
_MARK_FORWARDED = jobs.update().where(*_ONE_ATTEMPT, jobs.c.status == JobStatus.QUEUED.value)
_MOVING = sa.select(jobs.c.status, jobs.c.attempt, jobs.c.stack, jobs.c.webhook, jobs.c.started_at).where(
    jobs.c.id == sa.bindparam("w_job_id"))
_MOVE = jobs.update().where(*_ONE_ATTEMPT, jobs.c.status == sa.bindparam("w_status"))
_MOVE_OWNED = _MOVE.where(sa.exists().where(attempts.c.job_id == sa.bindparam("w_job_id"),
                                            attempts.c.number == sa.bindparam("w_attempt"),
                                            attempts.c.worker == sa.bindparam("w_owner")))
_ATTEMPT_COLUMNS = frozenset(attempts.c.keys())
#: One attempt's row ("w_job_id", "w_number"), to update with the parameters that name its columns.
UPDATE_ATTEMPT = attempts.update().where(attempts.c.job_id == sa.bindparam("w_job_id"),
                                         attempts.c.number == sa.bindparam("w_number"))


#: The submit's statements, built once (each job's submit runs them).
_QUOTA_OF_PROJECT = (sa.select(projects.c.max_queued_jobs).where(projects.c.id == sa.bindparam("project"))
                     .with_for_update())
_INSERT_JOB, _INSERT_ATTEMPT = jobs.insert(), attempts.insert()


def _check_queued_quota(conn: sa.Connection, project: str, adding: int, default_max_queued: int) -> None:
    """QuotaExceeded unless the project may have `adding` more jobs waiting. The project's row is locked
    until the insert commits, so concurrent submits of one project are counted one after another."""
    row = conn.execute(_QUOTA_OF_PROJECT, {"project": project}).first()
    if row is None:
        raise ProjectNotFound(f"project: no project {project!r}")
    limit = default_max_queued if row.max_queued_jobs is None else row.max_queued_jobs
    if not limit or queued_everywhere(conn) + adding <= limit:
        return  # counting the project's waiting jobs reads each of them: only when the quota could be reached
    waiting = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
        jobs.c.project_id == project, jobs.c.status == JobStatus.QUEUED.value)).scalar() or 0
    if waiting + adding > limit:
        raise QuotaExceeded(f"max_queued_jobs: project {project} has {waiting} jobs waiting to run and a quota "
                            f"of {limit}; {adding} more would exceed it. Try again when some have started",
                            retry_after=QUEUED_RETRY_AFTER_SECONDS)


def _insert(conn: sa.Connection, new: NewJob, sealed_secret_env: str | None, now: float) -> None:
    """Insert a queued job, its first attempt, its first webhook change and its counts."""
    conn.execute(_INSERT_JOB, new_job_row(new, sealed_secret_env, now))
    insert_attempt(conn, new.id, 1, now)
    if new.webhook:
        record_change(conn, new.id, new.webhook, _change(new.id, None, JobStatus.QUEUED, 1, {}), now)
    count_move(conn, new.stack, None, JobStatus.QUEUED.value, submitted=True)


def _change(job_id: str, old: JobStatus | None, new: JobStatus, attempt: int, values: dict[str, Any]) -> dict:
    """A status change as its webhook is told of it."""
    return {"job_id": job_id, "status": new.value, "previous_status": old.value if old else None,
            "attempt": attempt, "at": time.time(), "exit_code": values.get("exit_code"), "error": values.get("error")}


def insert_attempt(conn: sa.Connection, job_id: str, number: int, now: float) -> None:
    """A new, unclaimed attempt."""
    conn.execute(_INSERT_ATTEMPT, new_attempt_row(job_id, number, now))


def _move(conn: sa.Connection, job_id: str, number: int | None, target: JobStatus, *, owner: str | None = None,
          attempt_guard: sa.ColumnElement[bool] | None = None, known: Job | None = None,
          **values: Any) -> sa.Row | Moving | None:
    """Move the job to `target` if attempt `number` (None: whichever is current) is current, the table
    allows it, its attempt is `owner`'s (if given) and `attempt_guard` holds for that attempt's row; return
    the job's row as it was before (`_MOVING`'s columns: its `attempt` is the one moved), else None.
    `known`: the job as the caller just read it, at attempt `number`: the move is first tried from its
    status without reading the job again (a step's move on every job's path); read if that fails."""
    if target.final:
        values["secret_env"] = None  # a job that ended needs its secrets no more
    if movable_as_read(known, number, target):
        as_read = Moving(known.status.value, number, known.stack, known.webhook, known.started_at)
        if _try_move(conn, job_id, as_read, target, owner, attempt_guard, values):
            return as_read
    seen = None
    for _ in range(CAS_TRIES):
        row = conn.execute(_MOVING, {"w_job_id": job_id}).first()
        if row is None or (number is not None and row.attempt != number) or row == seen:
            return None
        if JobStatus(row.status) not in sources_of(target):
            return None
        if _try_move(conn, job_id, row, target, owner, attempt_guard, values):
            return row
        seen = row  # lost a race, or the guard refused: look once more, and stop if nothing changed
    return None


def _try_move(conn: sa.Connection, job_id: str, row: sa.Row | Moving, target: JobStatus, owner: str | None,
              attempt_guard: sa.ColumnElement[bool] | None, values: dict[str, Any]) -> bool:
    """One compare-and-set from the job as `row` has it, with its counts and webhook change; False if lost."""
    old = JobStatus(row.status)
    if conn.execute(*_move_statement(job_id, row.attempt, old, target, owner, attempt_guard,
                                     values)).rowcount != 1:
        return False
    count_move(conn, row.stack, old.value, target.value)
    if row.webhook:
        attempt = values.get("attempt", row.attempt)
        record_change(conn, job_id, row.webhook, _change(job_id, old, target, attempt, values), time.time())
    return True


def _move_statement(job_id: str, attempt: int, old: JobStatus, target: JobStatus, owner: str | None,
                    attempt_guard: sa.ColumnElement[bool] | None, values: dict[str, Any]) -> tuple:
    """The guarded update of a status move, with its parameters: one built once when its values are plain
    (the moves of every job's path), else one built for these values and guard."""
    if attempt_guard is None and not any(isinstance(value, sa.ClauseElement) for value in values.values()):
        where = {"w_job_id": job_id, "w_attempt": attempt, "w_status": old.value}
        if owner is None:
            return _MOVE, {**where, "status": target.value, **values}
        return _MOVE_OWNED, {**where, "w_owner": owner, "status": target.value, **values}
    guards = [attempt_guard] if attempt_guard is not None else []
    if owner is not None:
        guards.append(attempts.c.worker == owner)
    where = [jobs.c.id == job_id, jobs.c.attempt == attempt, jobs.c.status == old.value]
    if guards:
        where.append(sa.exists().where(attempts.c.job_id == job_id, attempts.c.number == attempt, *guards))
    return (jobs.update().where(*where).values(status=target.value, **values),)


def _timed(took: Mapping[Step, float], now: float) -> dict[str, float]:
    """The attempt's columns for how long these steps took (and, if any did, that it progressed now)."""
    return {**{f"{timed_step(step).value}_seconds": seconds for step, seconds in took.items()},
            **({"progress_at": now} if took else {})}


def attempt_columns(values: dict[str, Any]) -> dict[str, Any]:
    """`values`, checked to be attempt columns: a prebuilt UPDATE sets the parameters that name a column and
    would silently ignore a misspelt one."""
    unknown = values.keys() - _ATTEMPT_COLUMNS
    if unknown:
        raise ValueError(f"attempts have no column {', '.join(sorted(unknown))}")
    return values


def update_attempt(conn: sa.Connection, job_id: str, number: int, **values: Any) -> int:
    """Update one attempt's row; the number of rows changed (0 or 1)."""
    attempt_columns(values)
    if any(isinstance(value, sa.ClauseElement) for value in values.values()):  # SQL, not a parameter
        return conn.execute(UPDATE_ATTEMPT.values(**values), {"w_job_id": job_id, "w_number": number}).rowcount
    return conn.execute(UPDATE_ATTEMPT, {"w_job_id": job_id, "w_number": number, **values}).rowcount
