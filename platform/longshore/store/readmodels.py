"""Read models: the queries behind the CLI's lists, the janitor's checks, publishing and the exporter."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Collection

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.domain.records import Attempt, Job
from longshore.domain.status import JobStatus
from longshore.store.database import read
from longshore.store.jobs import ATTEMPTS_OF_JOB, UNFINISHED
from longshore.store.rows import attempt_from_row, job_from_row
from longshore.store.schema import attempts, codes, job_counts, jobs, workers


@dataclass(frozen=True)
class InstallationCounts:
    """What the exporter reads at a scrape."""

    current: dict[tuple[str, str], int]  #: (stack, status) → jobs in that status now
    totals: dict[tuple[str, str], int]  #: (stack, status) → jobs that ever reached it ("submitted": accepted)
    overdue_by_stack: dict[str, int]  #: running jobs a margin past their timeout
    last_seen_by_worker: dict[str, float]


@dataclass(frozen=True)
class Due:
    """An attempt waiting in the store to be published."""

    job_id: str
    attempt: int
    stack: str
    published_by: str | None  #: the worker (or embedded process) it was handed to, if any
    priority: int = 0


@dataclass(frozen=True)
class JobDetail:
    """A job as its status read shows it: with its attempts (first first) and the jobs that retry it."""

    job: Job  #: without its output (None): a status read never shows it (the job's logs do)
    attempts: list[Attempt]
    retried_as: list[str]  #: oldest first


@dataclass(frozen=True)
class ProjectUsage:
    """A project's jobs counted as its quotas count them."""

    jobs_waiting: int  #: queued or delayed (`max_queued_jobs`)
    jobs_running: int  #: holding a worker's slot (`max_running_jobs`)


class ReadModels:
    """Queries that read many rows at once."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def list_jobs(self, *, limit: int = 50, status: JobStatus | Collection[JobStatus] | None = None,
                  stack: str | None = None, label: str | None = None, code: str | None = None,
                  since: float | None = None, until: float | None = None, schedule_id: str | None = None,
                  project: str | None = None, offset: int = 0,
                  before: tuple[float, str] | None = None, with_output: bool = True) -> list[Job]:
        """The newest jobs first, of a status (or any of several), a stack, a label, a code, a schedule, a
        project, created in a time range (all optional); `offset` skips that many, `before` starts after a
        (created_at, id) cursor. Without `with_output`, each job's output is None (its `output_size` is read):
        a page of a hundred jobs does not carry a hundred outputs of up to a megabyte each."""
        query = (sa.select(*((jobs,) if with_output else _WITHOUT_OUTPUT))
                 .order_by(jobs.c.created_at.desc(), jobs.c.id).limit(max(limit, 0)))
        if offset:
            query = query.offset(offset)
        if before is not None:  # a cursor: the jobs after (created_at, id) in this order
            # The first condition is implied by the second; it is there for the index on created_at: without
            # it PostgreSQL reads every newer job to find a deep page (2 s at a million jobs, not 2 ms)
            query = query.where(jobs.c.created_at <= before[0],
                                sa.or_(jobs.c.created_at < before[0],
                                       sa.and_(jobs.c.created_at == before[0], jobs.c.id > before[1])))
        for column, wanted in ((jobs.c.stack, stack), (jobs.c.label, label), (jobs.c.code, code),
                               (jobs.c.schedule_id, schedule_id), (jobs.c.project_id, project)):
            if wanted is not None:
                query = query.where(column == wanted)
        if status is not None:
            wanted = [status] if isinstance(status, JobStatus) else list(status)
            query = query.where(jobs.c.status.in_([s.value for s in wanted]))
        if since is not None:
            query = query.where(jobs.c.created_at >= since)
        if until is not None:
            query = query.where(jobs.c.created_at <= until)
        with read(self.engine) as conn:
            return [job_from_row(row) for row in conn.execute(query).mappings()]

    def job_detail(self, job_id: str) -> JobDetail | None:
        """The job and its attempts, on one connection (the jobs that retry it only for a job that was
        retried, which is rare); None if there is no such job. The read callers poll: its output, up to a
        megabyte, stays in the store. (One join would repeat the job's payload on each attempt's row.)"""
        with read(self.engine) as conn:
            row = conn.execute(_DETAIL, {"job_id": job_id}).mappings().first()
            if row is None:
                return None
            tried = [attempt_from_row(each) for each in conn.execute(ATTEMPTS_OF_JOB, {"job_id": job_id}).mappings()]
            retried_as = list(conn.execute(_RETRIED_AS, {"job_id": job_id}).scalars()) if row["retried"] else []
        return JobDetail(job_from_row(row), tried, retried_as)

    def job(self, job_id: str) -> Job | None:
        """The job without its output (its `output_size` read), None if there is no such job: a status read
        that shows no output (IronWorker's task) reads no megabyte of it."""
        with read(self.engine) as conn:
            row = conn.execute(_SUMMARY, {"job_id": job_id}).mappings().first()
        return None if row is None else job_from_row(row)

    def retried_as(self, job_id: str) -> list[str]:
        """The jobs that retry `job_id` (`longshore retry`), oldest first."""
        with read(self.engine) as conn:
            return list(conn.execute(_RETRIED_AS, {"job_id": job_id}).scalars())

    def due(self, *, grace_seconds: float, stacks: list[str] | None = None, lost_publishers: list[str] = (),
            unclaimed_for_seconds: float | None = None, limit: int = 100) -> list[Due]:
        """Unclaimed current attempts of queued jobs whose pull no live queue holds: their delay has passed;
        their publish never happened (the process died between the store write and the publish: after
        `grace_seconds`); their pull waits in the queue or memory of a worker now lost; or it was handed to
        a worker that has not claimed it for `unclaimed_for_seconds` (a pull that gave up in an outage)."""
        now = time.time()
        unpublished = sa.and_(jobs.c.published_at.is_(None), sa.or_(
            sa.and_(jobs.c.not_before.is_not(None), jobs.c.not_before <= now),
            sa.and_(jobs.c.not_before.is_(None), attempts.c.created_at < now - grace_seconds)))
        orphaned = jobs.c.published_by.in_(list(lost_publishers)) if lost_publishers else sa.false()
        if unclaimed_for_seconds is not None:
            orphaned = sa.or_(orphaned, sa.and_(jobs.c.published_by.is_not(None),
                                                jobs.c.published_at < now - unclaimed_for_seconds))
        paused = sa.exists().where(codes.c.paused.is_(True), codes.c.project_id == jobs.c.project_id,
                                   codes.c.name == jobs.c.code)
        query = (
            sa.select(jobs.c.id, jobs.c.attempt, jobs.c.stack, jobs.c.published_by, jobs.c.priority)
            .join(attempts, sa.and_(attempts.c.job_id == jobs.c.id, attempts.c.number == jobs.c.attempt))
            .where(jobs.c.status == JobStatus.QUEUED.value, attempts.c.worker.is_(None),
                   sa.or_(unpublished, orphaned), sa.or_(jobs.c.code.is_(None), ~paused))
            .order_by(jobs.c.priority.desc(), sa.func.coalesce(jobs.c.not_before, jobs.c.created_at))
            .limit(limit))
        if stacks is not None:
            query = query.where(jobs.c.stack.in_(stacks))
        with read(self.engine) as conn:
            return [Due(row.id, row.attempt, row.stack, row.published_by, row.priority)
                    for row in conn.execute(query)]

    def publishers_of_waiting_jobs(self) -> list[str]:
        """The embedded processes whose in-memory brokers hold unclaimed attempts of queued jobs."""
        query = (sa.select(jobs.c.published_by).distinct()
                 .join(attempts, sa.and_(attempts.c.job_id == jobs.c.id, attempts.c.number == jobs.c.attempt))
                 .where(jobs.c.status == JobStatus.QUEUED.value, attempts.c.worker.is_(None),
                        jobs.c.published_by.is_not(None)))
        with read(self.engine) as conn:
            return list(conn.execute(query).scalars())

    def take_publish(self, due: Due, *, by: str | None = None) -> bool:
        """Claim the publishing of a due attempt, so that two publishers publish it once."""
        seen = sa.and_(jobs.c.published_at.is_(None), jobs.c.published_by.is_(None)) if due.published_by is None \
            else jobs.c.published_by == due.published_by
        with self.engine.begin() as conn:
            return conn.execute(jobs.update().where(
                jobs.c.id == due.job_id, jobs.c.attempt == due.attempt, jobs.c.status == JobStatus.QUEUED.value,
                seen).values(published_at=time.time(), published_by=by)).rowcount == 1

    def give_back_publish(self, due: Due) -> None:
        """The publish failed after `take_publish`: the next pass tries again."""
        with self.engine.begin() as conn:
            conn.execute(jobs.update().where(jobs.c.id == due.job_id, jobs.c.attempt == due.attempt)
                         .values(published_at=None, published_by=None))

    def claimed_open_attempts(self) -> list[tuple[Job, Attempt]]:
        """Current attempts of unfinished jobs that a worker owns: the janitor checks their owners."""
        query = (
            sa.select(jobs, *[c.label(f"attempt_{c.name}") for c in attempts.c])
            .join(attempts, sa.and_(jobs.c.id == attempts.c.job_id, jobs.c.attempt == attempts.c.number))
            .where(jobs.c.status.in_(UNFINISHED), attempts.c.worker.is_not(None))
        )
        with read(self.engine) as conn:
            rows = conn.execute(query).mappings().all()
        return [(job_from_row(row), attempt_from_row({c.name: row[f"attempt_{c.name}"] for c in attempts.c}))
                for row in rows]

    def project_usage(self, project: str) -> ProjectUsage:
        """What a project's quotas are compared with now: its jobs waiting (queued or delayed), and its
        attempts holding a worker's slot."""
        with read(self.engine) as conn:
            waiting = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
                jobs.c.project_id == project, jobs.c.status == JobStatus.QUEUED.value)).scalar()
            holding = conn.execute(sa.select(sa.func.count()).select_from(attempts)
                                   .join(jobs, jobs.c.id == attempts.c.job_id)
                                   .where(jobs.c.project_id == project, attempts.c.worker.is_not(None),
                                          attempts.c.released_at.is_(None))).scalar()
        return ProjectUsage(jobs_waiting=waiting or 0, jobs_running=holding or 0)

    def installation_counts(self, *, overdue_margin_seconds: float) -> InstallationCounts:
        """Jobs by stack and status (from the counts table), overdue jobs by stack, every worker's heartbeat."""
        now = time.time()
        with read(self.engine) as conn:
            counts = conn.execute(sa.select(job_counts)).all()
            late = conn.execute(
                sa.select(jobs.c.stack, sa.func.count())
                .where(jobs.c.status == JobStatus.RUNNING.value,
                       jobs.c.started_at + jobs.c.timeout_seconds + overdue_margin_seconds < now)
                .group_by(jobs.c.stack)).all()
            beats = conn.execute(sa.select(workers.c.name, workers.c.last_seen)).all()
        return InstallationCounts(current={(r.stack, r.status): r.current for r in counts},
                                  totals={(r.stack, r.status): r.total for r in counts},
                                  overdue_by_stack=dict(late), last_seen_by_worker=dict(beats))


# Statements of the API's reads of one job, built once (SQLAlchemy's cache key per built statement costs more
# than the statement).
_RETRIED_AS = sa.select(jobs.c.id).where(jobs.c.retry_of == sa.bindparam("job_id")).order_by(jobs.c.created_at)
_RETRIES = jobs.alias("retries")
#: A job's columns but its output (up to a megabyte), with the output's size (PostgreSQL reads a stored value's
#: size without its bytes).
_WITHOUT_OUTPUT = (*[c for c in jobs.c if c.name != "output_bytes"], sa.null().label("output_bytes"),
                   sa.func.length(jobs.c.output_bytes).label("output_size"))
_SUMMARY = sa.select(*_WITHOUT_OUTPUT).where(jobs.c.id == sa.bindparam("job_id"))
_DETAIL = _SUMMARY.add_columns(sa.exists().where(_RETRIES.c.retry_of == jobs.c.id).label("retried"))
