"""Retention in the store: the data of jobs that ended long ago, or the jobs themselves, deleted a bounded
batch per transaction, oldest first. Only ended jobs are touched: their status is final, and stays so."""

from __future__ import annotations

import time
from collections import Counter

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.domain.status import JobStatus
from longshore.store.counts import count_removed
from longshore.store.schema import attempts, jobs, webhook_deliveries

FINAL = [status.value for status in JobStatus if status.final]


class Retention:
    """Deleting what ended before a given time (see `domain.retention` for the policy)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def erase_data(self, *, ended_before: float, limit: int) -> int:
        """Delete the output, result, payload, config and env of at most `limit` jobs that ended before
        `ended_before`, and mark them erased (`erased_at`); how many. Jobs another pass holds are skipped."""
        pick = (sa.select(jobs.c.id)
                .where(jobs.c.erased_at.is_(None), jobs.c.finished_at < ended_before, jobs.c.status.in_(FINAL))
                .order_by(jobs.c.finished_at).limit(limit).with_for_update(skip_locked=True))
        with self.engine.begin() as conn:
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return 0
            return conn.execute(
                jobs.update().where(jobs.c.id.in_(ids), jobs.c.erased_at.is_(None), jobs.c.status.in_(FINAL))
                .values(output_bytes=None, result_bytes=None, payload="", config=None, env={},
                        erased_at=time.time())).rowcount

    def delete_jobs(self, *, ended_before: float, limit: int) -> int:
        """Delete at most `limit` jobs that ended (and were created) before `ended_before`, with their attempts
        and webhook deliveries; how many. The counts of jobs in each status follow (what ever reached a
        status stays counted)."""
        pick = (sa.select(jobs.c.id, jobs.c.stack, jobs.c.status)
                .where(jobs.c.created_at < ended_before, jobs.c.finished_at < ended_before, jobs.c.status.in_(FINAL))
                .order_by(jobs.c.created_at).limit(limit).with_for_update(skip_locked=True))
        with self.engine.begin() as conn:
            rows = conn.execute(pick).all()
            ids = [row.id for row in rows]
            if not ids:
                return 0
            conn.execute(attempts.delete().where(attempts.c.job_id.in_(ids)))
            conn.execute(webhook_deliveries.delete().where(webhook_deliveries.c.job_id.in_(ids)))
            conn.execute(jobs.delete().where(jobs.c.id.in_(ids)))
            # Last, and in one order: every status change writes these rows, so they are held only briefly
            for (stack, status), removed in sorted(Counter((row.stack, row.status) for row in rows).items()):
                count_removed(conn, stack, status, removed)
        return len(ids)
