"""Jobs and their attempts: the state machine, with one guarded `transition()` under every status write.

A status write names the attempt it belongs to and the statuses the job may come
from (`domain.status.ALLOWED_TRANSITIONS`), in one UPDATE: a duplicate or late
message for the same attempt can never move a job backwards or finish it twice,
and a message for an attempt that is no longer current touches nothing.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.domain.outcome import Outcome
from longshore.domain.records import Attempt, Job, NewJob
from longshore.domain.status import AttemptStatus, JobStatus, sources_of
from longshore.domain.steps import TIMED_STEPS, Step
from longshore.errors import JobNotFound
from longshore.store.notify import FinishNotifier
from longshore.store.rows import attempt_from_row, job_from_row
from longshore.store.schema import attempts, jobs

UNFINISHED = [JobStatus.QUEUED.value, JobStatus.RUNNING.value]


class JobRepository:
    """Writes and reads of jobs and attempts."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.finishes = FinishNotifier(engine, self.get)

    # -- the state machine ----------------------------------------------------

    def transition(self, conn: sa.Connection, job_id: str, number: int, target: JobStatus, **values: Any) -> bool:
        """Move the job to `target` if attempt `number` is current and the table allows it; one UPDATE."""
        result = conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id, jobs.c.attempt == number,
                   jobs.c.status.in_([s.value for s in sources_of(target)]))
            .values(status=target.value, **values)
        )
        return result.rowcount == 1

    def create(self, new: NewJob) -> str:
        """Insert a queued job and its first attempt; return the job id."""
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(jobs.insert().values(
                id=new.id, stack=new.stack, image=new.image, command=new.command, env=new.env,
                payload=new.payload, timeout_seconds=new.timeout_seconds, memory_bytes=new.memory_bytes,
                cpus=new.cpus, retries=new.retries, retries_used=0, retry_delay_seconds=new.retry_delay_seconds,
                status=JobStatus.QUEUED.value, attempt=1, output_truncated=False, created_at=now,
            ))
            self._insert_attempt(conn, new.id, 1, now)
        return new.id

    def mark_running(self, job_id: str, number: int) -> bool:
        """queued → running for the current attempt; False if the guard refused."""
        now = time.time()
        with self.engine.begin() as conn:
            moved = self.transition(conn, job_id, number, JobStatus.RUNNING, started_at=now)
            if moved:
                self._update_attempt(conn, job_id, number, status=AttemptStatus.RUNNING.value, started_at=now)
        return moved

    def finish(self, job_id: str, number: int, outcome: Outcome) -> bool:
        """Move the job to its final status once; False if it had already ended or the attempt is stale."""
        if not outcome.status.final:
            raise ValueError(f"{outcome.status} is not a final status")
        now = time.time()
        with self.engine.begin() as conn:
            moved = self.transition(
                conn, job_id, number, outcome.status, exit_code=outcome.exit_code, error=outcome.error,
                output=outcome.output, output_truncated=outcome.output_truncated, result=outcome.result,
                finished_at=now,
            )
            if moved:
                self._update_attempt(conn, job_id, number, status=outcome.status.value, exit_code=outcome.exit_code,
                                     error=outcome.error, finished_at=now)
                self.finishes.announce(conn, job_id)
        if moved:
            self.finishes.wake_local()
        return moved

    def next_attempt(self, job_id: str, number: int, ended: Outcome, *, user_retry: bool = False) -> bool:
        """End attempt `number` as `ended` and queue attempt `number + 1`, atomically.

        For the job's own retries and for requeueing a lost attempt; False if the job
        had moved on (ended, cancelled, or already on a later attempt). Only a
        `user_retry` (the job's own code failed) counts against the job's retries."""
        now = time.time()
        with self.engine.begin() as conn:
            moved = self.transition(conn, job_id, number, JobStatus.QUEUED, attempt=number + 1, published_at=None,
                                    retries_used=jobs.c.retries_used + (1 if user_retry else 0))
            if moved:
                self._update_attempt(conn, job_id, number, status=ended.status.value, exit_code=ended.exit_code,
                                     error=ended.error, finished_at=now)
                self._insert_attempt(conn, job_id, number + 1, now)
        return moved

    def cancel(self, job_id: str) -> Job:
        """Cancel the job if it has not ended; return it as it now is."""
        job = self.get(job_id)
        if not job.status.final:
            self.finish(job_id, job.attempt, Outcome(status=JobStatus.CANCELLED, error="cancelled by a user"))
        return self.get(job_id)

    # -- an attempt's bookkeeping ----------------------------------------------

    def claim(self, job_id: str, number: int, *, worker: str, host: str, reclaim: bool = False) -> bool:
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

    def record_step(self, job_id: str, number: int, step: Step, seconds: float, **fields: Any) -> None:
        """Store how long lifecycle step `step` took for an attempt, with any extra fields."""
        step = Step(step)
        if step not in TIMED_STEPS:
            raise ValueError(f"step {step.value!r} is not timed")
        with self.engine.begin() as conn:
            self._update_attempt(conn, job_id, number, **{f"{step.value}_seconds": seconds}, **fields)

    def count_infra_retry(self, job_id: str, number: int) -> int:
        """One more platform retry of a step of this attempt (never the user's retries); the new count."""
        return self._increment(job_id, number, attempts.c.infra_retries)

    def count_redelivery(self, job_id: str, number: int) -> int:
        """One more redelivery of a step of this attempt (its worker died); the new count."""
        return self._increment(job_id, number, attempts.c.redeliveries)

    # -- reads ------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        """The job with `job_id`, or JobNotFound."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        if row is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        return job_from_row(row)

    def attempts(self, job_id: str) -> list[Attempt]:
        """The job's attempts, first first."""
        query = sa.select(attempts).where(attempts.c.job_id == job_id).order_by(attempts.c.number)
        with self.engine.connect() as conn:
            return [attempt_from_row(row) for row in conn.execute(query).mappings()]

    def wait_finished(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job is final and return it; WaitTimeout after `timeout` seconds."""
        return self.finishes.wait(job_id, timeout)

    # -- internals ----------------------------------------------------------------

    def _increment(self, job_id: str, number: int, column: sa.Column) -> int:
        with self.engine.begin() as conn:
            self._update_attempt(conn, job_id, number, **{column.name: column + 1})
            return conn.execute(
                sa.select(column).where(attempts.c.job_id == job_id, attempts.c.number == number)
            ).scalar() or 0

    @staticmethod
    def _attempt_is_live(conn: sa.Connection, job_id: str, number: int) -> bool:
        row = conn.execute(sa.select(jobs.c.status, jobs.c.attempt).where(jobs.c.id == job_id)).first()
        return row is not None and row.attempt == number and not JobStatus(row.status).final

    @staticmethod
    def _insert_attempt(conn: sa.Connection, job_id: str, number: int, now: float) -> None:
        conn.execute(attempts.insert().values(job_id=job_id, number=number, status=AttemptStatus.QUEUED.value,
                                              created_at=now, infra_retries=0, redeliveries=0))

    @staticmethod
    def _update_attempt(conn: sa.Connection, job_id: str, number: int, **values: Any) -> None:
        conn.execute(attempts.update()
                     .where(attempts.c.job_id == job_id, attempts.c.number == number)
                     .values(**values))
