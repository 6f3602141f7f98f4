"""Read models: the queries behind the CLI's lists, the janitor's checks and the exporter."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.domain.records import Attempt, Job
from longshore.domain.status import JobStatus
from longshore.store.jobs import UNFINISHED
from longshore.store.rows import attempt_from_row, job_from_row
from longshore.store.schema import attempts, jobs, workers


@dataclass(frozen=True)
class InstallationCounts:
    """What the exporter reads at a scrape."""

    by_stack_and_status: list[tuple[str, str, int]]
    overdue_by_stack: dict[str, int]  #: running jobs a margin past their timeout
    last_seen_by_worker: dict[str, float]


class ReadModels:
    """Queries that read many rows at once."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def list_jobs(self, *, limit: int = 50, status: JobStatus | None = None) -> list[Job]:
        """The newest jobs first."""
        query = sa.select(jobs).order_by(jobs.c.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(jobs.c.status == status.value)
        with self.engine.connect() as conn:
            return [job_from_row(row) for row in conn.execute(query).mappings()]

    def unpublished_jobs(self, older_than_seconds: float) -> list[Job]:
        """Queued jobs whose current attempt never reached the broker (the process died in between)."""
        cutoff = time.time() - older_than_seconds
        query = sa.select(jobs).where(jobs.c.status == JobStatus.QUEUED.value, jobs.c.published_at.is_(None),
                                      jobs.c.created_at < cutoff)
        with self.engine.connect() as conn:
            return [job_from_row(row) for row in conn.execute(query).mappings()]

    def claimed_unfinished_attempts(self) -> list[tuple[Job, Attempt]]:
        """Current attempts of unfinished jobs that a worker has claimed: the janitor checks their workers."""
        query = (
            sa.select(jobs, *[c.label(f"attempt_{c.name}") for c in attempts.c])
            .join(attempts, sa.and_(jobs.c.id == attempts.c.job_id, jobs.c.attempt == attempts.c.number))
            .where(jobs.c.status.in_(UNFINISHED), attempts.c.worker.is_not(None))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [(job_from_row(row), attempt_from_row({c.name: row[f"attempt_{c.name}"] for c in attempts.c}))
                for row in rows]

    def installation_counts(self, *, overdue_margin_seconds: float) -> InstallationCounts:
        """Jobs by stack and status, overdue jobs by stack, and every worker's last heartbeat."""
        now = time.time()
        with self.engine.connect() as conn:
            counts = conn.execute(sa.select(jobs.c.stack, jobs.c.status, sa.func.count())
                                  .group_by(jobs.c.stack, jobs.c.status)).all()
            late = conn.execute(
                sa.select(jobs.c.stack, sa.func.count())
                .where(jobs.c.status == JobStatus.RUNNING.value,
                       jobs.c.started_at + jobs.c.timeout_seconds + overdue_margin_seconds < now)
                .group_by(jobs.c.stack)).all()
            beats = conn.execute(sa.select(workers.c.name, workers.c.last_seen)).all()
        return InstallationCounts(by_stack_and_status=[tuple(row) for row in counts],
                                  overdue_by_stack=dict(late), last_seen_by_worker=dict(beats))
