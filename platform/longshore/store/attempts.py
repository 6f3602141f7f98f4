"""Attempts and their owners: claims capped by the worker's slots, owner-fenced step writes, adoption.

An attempt is owned by the worker that claimed it; only the owner's writes touch it,
so a late or duplicated step from any other worker is refused. A worker owns at most
`slots` attempts that still hold a slot (not yet released: their container has not
exited), which is what caps the containers it runs. A live worker on the same Docker
engine may adopt the attempts of a lost one: it inherits their containers instead of
running the jobs again. An adoption takes no slot count into account (the containers
already run; the engine's total is still at most the slots of the adopter and of the
workers it adopted from), so right after one a worker may hold more than `slots`: it
claims nothing until enough of them exited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.domain.records import Attempt, Job
from longshore.domain.status import AttemptStatus, JobStatus
from longshore.domain.steps import Step, timed_step
from longshore.store.database import is_postgres, read, single_write
from longshore.store.jobs import UNFINISHED, UPDATE_ATTEMPT, attempt_columns, update_attempt
from longshore.store.moves import claim_at_once
from longshore.store.rows import attempt_from_row, job_from_row
from longshore.store.schema import attempts, codes, jobs, projects, workers

#: A job whose code is at its max concurrency is looked at again after this long.
CODE_FULL_RETRY_SECONDS = 1.0


class Claim(StrEnum):
    """What a worker's claim of an attempt found."""

    CLAIMED = "claimed"  #: it is now this worker's
    MINE = "mine"  #: it was this worker's already (a duplicate or a retry of the same pull)
    TAKEN = "taken"  #: another worker owns it
    STALE = "stale"  #: the job ended or moved to a later attempt
    FULL = "full"  #: this worker's slots are all held
    HELD = "held"  #: its code is paused or at its max concurrency: the job went back to wait in the store


@dataclass(frozen=True)
class Owned:
    """An attempt a worker owns, with its job."""

    job: Job
    attempt: Attempt

    @property
    def over(self) -> bool:
        """The attempt can no longer run: its job ended or moved on, or it was concluded."""
        return (self.job.status.final or self.job.attempt != self.attempt.number
                or self.attempt.status not in (AttemptStatus.QUEUED, AttemptStatus.RUNNING))


class AttemptRepository:
    """Ownership of attempts and the bookkeeping of their steps."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def claim(self, job_id: str, number: int, *, worker: str, engine: str, host: str, slots: int,
              default_max_running: int = 0) -> tuple[Claim, Job | None]:
        """Make the attempt this worker's, if it is current, unowned, and the worker has a slot free; HELD
        (back to wait in the store) while its code is paused or full, or its project has its quota of
        running jobs (`default_max_running` when the project sets none; 0: no limit). With the job as the
        claim read it (None if there is no such job or attempt): the pull goes on with it."""
        now = time.time()
        if is_postgres(self.engine):  # in one round trip, unless a code's gate or a project's cap may apply
            with single_write(self.engine) as conn:  # autocommit: READ COMMITTED unless the server's default differs
                row = claim_at_once(conn, job_id, number, worker=worker, engine=engine, host=host, slots=slots,
                                    default_max_running=default_max_running, now=now)
            if row is not None and row["claimed"]:
                return Claim.CLAIMED, job_from_row(row)
            decided = None if row is None else _decided(row, number, worker, slots)
            if decided is not None:
                return decided
        with self.engine.begin() as conn:
            # Lock the worker's own row first: its claims are serialised, so the count below holds.
            conn.execute(_LOCK_WORKER, {"w_name": worker})
            # The job, and the slots the worker holds, in one read after the lock (its snapshot sees every
            # claim of this worker committed before the lock was granted)
            row = conn.execute(_CLAIMED, {"w_job_id": job_id, "w_number": number, "w_worker": worker}
                               ).mappings().first()
            decided = _decided(row, number, worker, slots)
            if decided is not None:
                return decided
            job = job_from_row(row)
            if job.code is not None and self._hold_for_code(conn, job_id, job.project_id, job.code, now):
                return Claim.HELD, job
            project_cap = default_max_running if row["max_running_jobs"] is None else row["max_running_jobs"]
            if project_cap and self._hold_for_project(conn, job_id, job.project_id, project_cap, now):
                return Claim.HELD, job
            claimed = conn.execute(_CLAIM, {"w_job_id": job_id, "w_number": number, "worker": worker,
                                            "engine": engine, "host": host, "claimed_at": now,
                                            "progress_at": now}).rowcount
        return (Claim.CLAIMED if claimed else Claim.TAKEN), job

    def unclaimed(self, keys: set[tuple[str, int]], *, forwarded_to: str) -> set[tuple[str, int]]:
        """Of these attempts, those still current, owned by no worker, and forwarded to `forwarded_to`
        (their pull waits in its queue: not run yet)."""
        if not keys:
            return set()
        with read(self.engine) as conn:
            rows = conn.execute(_UNCLAIMED, {"job_ids": sorted({job_id for job_id, _ in keys}),
                                             "forwarded_to": forwarded_to}).all()
        return {(row.id, row.attempt) for row in rows if not JobStatus(row.status).final} & keys

    def holding(self, worker: str) -> int:
        """How many of its slots the worker's attempts hold now."""
        with read(self.engine) as conn:
            return self._holding(conn, worker)

    def running(self, worker: str) -> int:
        """How many of the worker's attempts have a container started and not yet exited."""
        with read(self.engine) as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(attempts).where(
                attempts.c.worker == worker, attempts.c.released_at.is_(None),
                attempts.c.started_at.is_not(None))).scalar() or 0

    @staticmethod
    def _hold_for_code(conn: sa.Connection, job_id: str, project_id: str, code: str, now: float) -> bool:
        """If the job's code is paused, or has `max_concurrency` jobs holding slots, put the job back to
        wait in the store (unpublished: `publish_due` queues it again once the code lets it) and say so.
        The code's row is locked first, so claims of one code are counted one at a time."""
        gate = conn.execute(sa.select(codes.c.paused, codes.c.max_concurrency)
                            .where(codes.c.project_id == project_id, codes.c.name == code)
                            .with_for_update()).first()
        if gate is None or (not gate.paused and gate.max_concurrency is None):
            return False
        if not gate.paused:
            running = conn.execute(sa.select(sa.func.count()).select_from(attempts)
                                   .join(jobs, jobs.c.id == attempts.c.job_id)
                                   .where(jobs.c.project_id == project_id, jobs.c.code == code,
                                          attempts.c.worker.is_not(None),
                                          attempts.c.released_at.is_(None))).scalar() or 0
            if running < gate.max_concurrency:
                return False
        # Paused: due now, but `publish_due` skips paused codes, so it is queued at the first look after
        # `resume`. Full: it is looked at again shortly (a slot of the code may free).
        _put_back(conn, job_id, now if gate.paused else now + CODE_FULL_RETRY_SECONDS)
        return True

    @staticmethod
    def _hold_for_project(conn: sa.Connection, job_id: str, project_id: str, cap: int, now: float) -> bool:
        """If the project has `cap` jobs holding slots, put the job back to wait in the store, looked at
        again shortly, and say so. The project's row is locked first, so its claims are counted one at a time."""
        conn.execute(sa.select(projects.c.id).where(projects.c.id == project_id).with_for_update())
        running = conn.execute(sa.select(sa.func.count()).select_from(attempts)
                               .join(jobs, jobs.c.id == attempts.c.job_id)
                               .where(jobs.c.project_id == project_id, attempts.c.worker.is_not(None),
                                      attempts.c.released_at.is_(None))).scalar() or 0
        if running < cap:
            return False
        _put_back(conn, job_id, now + CODE_FULL_RETRY_SECONDS)
        return True

    @staticmethod
    def _holding(conn: sa.Connection, worker: str) -> int:
        return conn.execute(_HOLDING, {"w_worker": worker}).scalar() or 0

    def record_step(self, job_id: str, number: int, step: Step, seconds: float, *, owner: str,
                    release: bool = False, job_current: bool = False, **fields: Any) -> bool:
        """Store how long `step` took for the owner's attempt, with any extra fields, and (`release`) that it
        no longer holds a slot, in one write; False if fenced (`job_current`: also while its job is
        unfinished and at this attempt, for a step whose next one goes on with the job it read)."""
        step = timed_step(step)
        if any(isinstance(value, sa.ClauseElement) for value in fields.values()):
            raise TypeError("record_step takes values, not SQL expressions")  # a prebuilt statement binds values
        now = time.time()
        values = {"w_job_id": job_id, "w_number": number, "w_owner": owner,
                  **attempt_columns({f"{step.value}_seconds": seconds, "progress_at": now, **fields}),
                  **({"w_now": now} if release else {})}
        with single_write(self.engine) as conn:
            return conn.execute(_RECORDS[release, job_current], values).rowcount == 1

    def touch(self, job_id: str, number: int, *, owner: str) -> None:
        """The owner's step is still under way (a long pull): the watcher must not think it stalled."""
        with single_write(self.engine) as conn:
            conn.execute(attempts.update()
                         .where(attempts.c.job_id == job_id, attempts.c.number == number, attempts.c.worker == owner)
                         .values(progress_at=time.time()))

    def release(self, job_id: str, number: int) -> bool:
        """The attempt no longer holds a slot (its container exited, or there is none); False if it did not."""
        with single_write(self.engine) as conn:
            return conn.execute(_RELEASE, {"w_job_id": job_id, "w_number": number,
                                           "released_at": time.time()}).rowcount == 1

    def adopt(self, job_id: str, number: int, *, from_worker: str, to_worker: str, host: str, engine: str) -> bool:
        """Make a lost worker's attempt this worker's (both drive the same engine); False if it moved."""
        with self.engine.begin() as conn:
            return conn.execute(
                attempts.update()
                .where(attempts.c.job_id == job_id, attempts.c.number == number,
                       attempts.c.worker == from_worker)
                .values(worker=to_worker, host=host, engine=engine, progress_at=time.time())).rowcount == 1

    def owned(self, worker: str) -> list[Owned]:
        """The worker's attempts that hold a slot or have not been concluded, with their jobs."""
        return self._with_jobs(_OWNED, {"worker": worker})

    def on_engine(self, engine: str, *, excluding: list[str]) -> list[Owned]:
        """Open attempts on `engine`, or on no known engine (a first-release worker's), owned by workers
        other than `excluding`: adoption candidates."""
        return self._with_jobs(sa.and_(sa.or_(attempts.c.engine == engine, attempts.c.engine.is_(None)),
                                       attempts.c.worker.is_not(None), attempts.c.worker.not_in(excluding), _open()))

    def current(self, job_id: str, number: int) -> Owned | None:
        """The job with its attempt `number`, in one read; None if either is missing."""
        found = self._with_jobs(_CURRENT, {"job_id": job_id, "number": number})
        return found[0] if found else None

    def _with_jobs(self, where: sa.ColumnElement[bool] | sa.Select, parameters: dict | None = None) -> list[Owned]:
        query = where if isinstance(where, sa.Select) else _WITH_JOBS.where(where)
        with read(self.engine) as conn:
            rows = conn.execute(query, parameters).mappings().all()
        return [Owned(job_from_row(row), attempt_from_row({c.name: row[f"attempt_{c.name}"] for c in attempts.c}))
                for row in rows]

    def count_infra_retry(self, job_id: str, number: int) -> int:
        """One more platform retry of a step of this attempt (never the user's retries); the new count."""
        return self._increment(job_id, number, attempts.c.infra_retries)

    def count_redelivery(self, job_id: str, number: int) -> int:
        """One more redelivery of a step of this attempt (its worker died); the new count."""
        return self._increment(job_id, number, attempts.c.redeliveries)

    def count_redrive(self, job_id: str, number: int) -> int:
        """One more time the owner's watcher sent a stalled step again; the new count."""
        return self._increment(job_id, number, attempts.c.redrives)

    def _increment(self, job_id: str, number: int, column: sa.Column) -> int:
        with self.engine.begin() as conn:
            update_attempt(conn, job_id, number, **{column.name: column + 1})
            return conn.execute(
                sa.select(column).where(attempts.c.job_id == job_id, attempts.c.number == number)
            ).scalar() or 0


#: Jobs with their attempts (the attempt's columns labelled apart). Built once: SQLAlchemy finds a compiled
#: statement by the statement's cache key, which it computes once per statement object.
_WITH_JOBS = sa.select(jobs, *[c.label(f"attempt_{c.name}") for c in attempts.c]).join(
    attempts, attempts.c.job_id == jobs.c.id)
# The statements of every job's path, built once (see _WITH_JOBS); "w_" parameters are the WHERE's.
_RECORD = UPDATE_ATTEMPT.where(attempts.c.worker == sa.bindparam("w_owner"))
_RELEASE = UPDATE_ATTEMPT.where(attempts.c.released_at.is_(None))
_RELEASING = {"released_at": sa.func.coalesce(attempts.c.released_at, sa.bindparam("w_now"))}
#: The attempt's job is unfinished and at that attempt (a condition on an attempts statement).
JOB_CURRENT = sa.exists().where(jobs.c.id == attempts.c.job_id, jobs.c.attempt == attempts.c.number,
                                jobs.c.status.in_(UNFINISHED))
#: record_step's statement by (release, job_current).
_RECORDS = {(False, False): _RECORD, (True, False): _RECORD.values(**_RELEASING),
            (False, True): _RECORD.where(JOB_CURRENT), (True, True): _RECORD.where(JOB_CURRENT).values(**_RELEASING)}
_LOCK_WORKER = workers.update().where(workers.c.name == sa.bindparam("w_name")).values(pid=workers.c.pid)
_HOLDING = sa.select(sa.func.count()).select_from(attempts).where(attempts.c.worker == sa.bindparam("w_worker"),
                                                                  attempts.c.released_at.is_(None))
_CLAIMED = (sa.select(jobs, attempts.c.worker.label("attempt_worker"), projects.c.max_running_jobs,
                      # all the worker's attempts, never correlated to the claimed one
                      _HOLDING.correlate(None).scalar_subquery().label("holding"))
            .join(attempts, sa.and_(attempts.c.job_id == jobs.c.id, attempts.c.number == sa.bindparam("w_number")))
            .join(projects, projects.c.id == jobs.c.project_id)
            .where(jobs.c.id == sa.bindparam("w_job_id")))
_CLAIM = UPDATE_ATTEMPT.where(attempts.c.worker.is_(None))
#: One attempt with its job: every lifecycle step's first read.
_CURRENT = _WITH_JOBS.where(attempts.c.job_id == sa.bindparam("job_id"), attempts.c.number == sa.bindparam("number"))


def _open() -> sa.ColumnElement[bool]:
    """An attempt still holding a slot, or not yet concluded."""
    return sa.or_(attempts.c.released_at.is_(None), attempts.c.status.in_(UNFINISHED))


# The watcher's reads at each tick (twice a second), built once as the job path's are.
_OWNED = _WITH_JOBS.where(attempts.c.worker == sa.bindparam("worker"), _open())
_UNCLAIMED = (sa.select(jobs.c.id, jobs.c.attempt, jobs.c.status)
              .join(attempts, sa.and_(attempts.c.job_id == jobs.c.id, attempts.c.number == jobs.c.attempt))
              .where(jobs.c.id.in_(sa.bindparam("job_ids", expanding=True)), attempts.c.worker.is_(None),
                     jobs.c.published_by == sa.bindparam("forwarded_to")))


def _put_back(conn: sa.Connection, job_id: str, not_before: float) -> None:
    """Unpublish a job's current attempt: it waits in the store, and `publish_due` queues it from `not_before`."""
    conn.execute(jobs.update().where(jobs.c.id == job_id).values(published_at=None, published_by=None,
                                                               not_before=not_before))


def _decided(row: Mapping[str, Any] | None, number: int, worker: str, slots: int) -> tuple[Claim, Job | None] | None:
    """What a claim's read of the job, its attempt's owner and the worker's held slots decides without a code's
    gate or a project's cap (stale, this worker's or another's, no slot free); None: the gates are next."""
    if row is None or row["id"] is None:
        return Claim.STALE, None
    job = job_from_row(row)
    if job.attempt != number or job.status.final:
        return Claim.STALE, job
    if row["attempt_worker"] is not None:
        return Claim.MINE if row["attempt_worker"] == worker else Claim.TAKEN, job
    if row["holding"] >= slots:
        return Claim.FULL, job
    return None
