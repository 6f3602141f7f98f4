"""A worker's status move, with its counts, its attempt's write and its notification, as one statement.

A start (queued → running) and a finish (running → final) each moved the job by a compare-and-set, counted the
move, wrote the attempt and (a finish) told the waiters: five or six statements in a transaction (BEGIN …
COMMIT), each a round trip with SQLAlchemy's and psycopg2's work around it in the worker. On PostgreSQL they are
one statement of data-modifying CTEs: the counts and the attempt's write follow from the move's RETURNING, empty
when its guard refused, and a statement commits all of it or none on its own (autocommit). The guard is
`store.jobs`'s: the job still at the attempt and in the status the step read, and (with an owner) the
attempt still its worker's. In one process, a job's store work 0.79× the CPU (`bench/store_ops.py`).

Only from the job as the step read it, and not for a job with a webhook (its change is recorded in the
transaction); a move this refuses (the job moved meanwhile) is tried by the transaction, which reads the job.
The embedded SQLite has no data-modifying CTEs: it always takes the transaction.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from longshore.domain.records import Job
from longshore.domain.status import JobStatus, sources_of
from longshore.store.counts import counted_after
from longshore.store.notify import FINISHED_CHANNEL
from longshore.store.schema import attempts, jobs


def can_move_at_once(known: Job | None, number: int, target: JobStatus) -> bool:
    """Whether `move_at_once` may move the job to `target` at attempt `number` from `known`, as its step read it."""
    return known is not None and not known.webhook and known.attempt == number and known.status in sources_of(target)


def move_at_once(conn: sa.Connection, job_id: str, number: int, old: JobStatus, target: JobStatus, *,
                 owner: str | None, job_values: dict[str, Any], attempt_values: dict[str, Any],
                 kept: dict[str, Any], announce: bool) -> sa.Row | None:
    """Move the job from `old` to `target` at attempt `number` (its worker `owner`'s, if given) with `job_values`,
    count it, set the attempt's `attempt_values` and its `kept` columns that are not set yet, and with
    `announce` notify the finish's waiters, in one statement; the moved job's `stack` and `started_at`, else
    None (nothing was written)."""
    statement = _statement(old.value, target.value, tuple(job_values), tuple(attempt_values), tuple(kept),
                           owner is not None, announce)
    parameters = {"w_job_id": job_id, "w_attempt": number, "w_owner": owner,
                  **{f"j_{name}": value for name, value in job_values.items()},
                  **{f"a_{name}": value for name, value in {**attempt_values, **kept}.items()}}
    return conn.execute(statement, parameters).first()


@functools.cache
def _statement(old: str, target: str, job_columns: tuple[str, ...], attempt_columns: tuple[str, ...],
               kept_columns: tuple[str, ...], owned: bool, announce: bool) -> sa.Select:
    """The statement of one kind of move, built once (SQLAlchemy keys its compiled form by the object)."""
    job_id, number = sa.bindparam("w_job_id", type_=sa.String), sa.bindparam("w_attempt", type_=sa.Integer)
    guard = [jobs.c.id == job_id, jobs.c.attempt == number, jobs.c.status == old]
    if owned:
        guard.append(sa.exists().where(attempts.c.job_id == job_id, attempts.c.number == number,
                                       attempts.c.worker == sa.bindparam("w_owner")))
    moved = (jobs.update().where(*guard)
             .values(status=target, **{name: sa.bindparam(f"j_{name}") for name in job_columns})
             .returning(jobs.c.stack, jobs.c.started_at).cte("moved"))
    attempt = (attempts.update()
               .where(attempts.c.job_id == job_id, attempts.c.number == number, sa.exists(sa.select(moved.c.stack)))
               .values(**{name: sa.bindparam(f"a_{name}") for name in attempt_columns},
                       **{name: sa.func.coalesce(attempts.c[name], sa.bindparam(f"a_{name}"))
                          for name in kept_columns})
               .cte("attempt"))
    notified = [sa.func.pg_notify(FINISHED_CHANNEL, job_id).label("notified")] if announce else []
    return sa.select(moved.c.stack, moved.c.started_at, *notified).add_cte(counted_after(moved, old, target), attempt)
