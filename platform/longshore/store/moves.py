"""A worker's status move, with its counts, its attempt's write and its notification, as one statement; a
submit's insert, with its first attempt and its counts; and a worker's claim, in one round trip.

A start (queued → running) and a finish (running → final) each moved the job by a compare-and-set, counted the
move, wrote the attempt and (a finish) told the waiters: five or six statements in a transaction (BEGIN …
COMMIT), each a round trip with SQLAlchemy's and psycopg2's work around it in the worker. On PostgreSQL they are
one statement of data-modifying CTEs: the counts and the attempt's write follow from the move's RETURNING, empty
when its guard refused, and a statement commits all of it or none on its own (autocommit). The guard is
`store.jobs`'s: the job still at the attempt and in the status the step read, and (with an owner) the
attempt still its worker's. In one process, a job's store work 0.79× the CPU (`bench/store_ops.py`).

Only from the job as the step read it, and not for a job with a webhook (its change is recorded in the
transaction); a move this refuses (the job moved meanwhile) is tried by the transaction, which reads the job.
A submit's insert likewise (BEGIN, the project's lock, three inserts, COMMIT before): for one job without a
webhook, of a project with no quota of waiting jobs (whose count the transaction takes under the project's
lock); a project with a quota, or not there, inserts nothing here and is left to the transaction.
A claim (BEGIN, the worker's lock, the read, the claim, COMMIT before) calls the function `longshore_claim_v1`
of migration 0010, which claims only an attempt nothing stands in the way of; a code's gate or a project's cap
is left to the transaction, as is every claim for a while after the store's role was refused the function's
EXECUTE (an installation that revoked PUBLIC's default right to run functions and granted only the tables).
The embedded SQLite has no data-modifying CTEs nor functions: it always takes the transaction.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Mapping

import sqlalchemy as sa

from longshore.domain.records import Job
from longshore.domain.status import FINAL_STATUSES, JobStatus, sources_of
from longshore.store.counts import counted_after
from longshore.store.notify import FINISHED_CHANNEL
from longshore.store.rows import new_attempt_row
from longshore.store.schema import attempts, jobs, projects

log = logging.getLogger(__name__)

#: SQLSTATE of a call the store's role may not make: no EXECUTE on the function (without a PL/pgSQL context; with
#: one, a table inside it the role may not touch, which the transaction would meet too).
INSUFFICIENT_PRIVILEGE = "42501"
#: After such a refusal, claims take the transaction this long before the function is tried again (a GRANT may
#: have come meanwhile).
RETRY_FUNCTION_SECONDS = 60.0


def movable_as_read(known: Job | None, number: int, target: JobStatus) -> bool:
    """Whether `known`, the job as a step read it, is at attempt `number` in a status `target` may follow: the
    move is then first tried from it, without reading the job again."""
    return known is not None and known.attempt == number and known.status in sources_of(target)


def can_move_at_once(known: Job | None, number: int, target: JobStatus) -> bool:
    """Whether `move_at_once` may move the job to `target` at attempt `number` from `known`, as its step read it."""
    return movable_as_read(known, number, target) and not known.webhook


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
    # The job's row is locked first (the move), then the attempt's and the counts' (in the order of their
    # names): as every transaction that writes an attempt and counts locks its job first, none waits in a cycle.
    return sa.select(moved.c.stack, moved.c.started_at, *notified).add_cte(counted_after(moved, old, target), attempt)


def insert_at_once(conn: sa.Connection, row: dict[str, Any]) -> bool:
    """Insert the `jobs` row `row` of a job just submitted, its first attempt and its counts in one statement,
    if its project is there and sets no quota of waiting jobs (for an installation with no default quota);
    False (nothing written) if not."""
    return conn.execute(_insert_statement(tuple(row)), row).first() is not None


@functools.cache
def _insert_statement(columns: tuple[str, ...]) -> sa.Select:
    """The submit's statement for a row of these columns, built once. Its values are cast to their columns'
    types (a value selected, rather than inserted as VALUES, has no type for PostgreSQL to prepare it with),
    text of any length: a cast to VARCHAR(n) would cut a longer value, which the column itself refuses."""
    values = [sa.cast(sa.bindparam(name, type_=jobs.c[name].type), _unbounded(jobs.c[name].type)) for name in columns]
    no_quota = sa.select(*values).where(projects.c.id == sa.bindparam("project_id", type_=sa.String),
                                        sa.func.coalesce(projects.c.max_queued_jobs, 0) == 0)
    job = jobs.insert().from_select(list(columns), no_quota).returning(jobs.c.id, jobs.c.stack, jobs.c.created_at)
    job = job.cte("job")
    # the first attempt's number, status and counters (1, 'queued', 0) as literals
    first = {name: sa.literal_column(repr(value), attempts.c[name].type)
             for name, value in new_attempt_row("", 1, 0).items() if name not in ("job_id", "created_at")}
    attempt = attempts.insert().from_select(
        ["job_id", "created_at", *first], sa.select(job.c.id, job.c.created_at, *first.values())).cte("attempt")
    return sa.select(job.c.id).add_cte(attempt, counted_after(job, None, JobStatus.QUEUED.value, submitted=True))


def _unbounded(column_type: Any) -> Any:
    """A column's type to cast a value to: a string type without its length."""
    return sa.String() if isinstance(column_type, sa.String) else column_type


def claim_at_once(conn: sa.Connection, job_id: str, number: int, *, worker: str, engine: str, host: str, slots: int,
                  default_max_running: int, now: float) -> Mapping[str, Any] | None:
    """Claim attempt `number` of the job for `worker` if it is current, unowned, within the worker's `slots`, of
    no code and its project under no cap of running jobs (`default_max_running` for a project that sets none):
    `claimed`, with the job's columns, its attempt's owner (`attempt_worker`), the project's `max_running_jobs`
    and the slots the worker holds (`holding`) as read after the worker's lock; the job's columns are None if
    there is no such job or attempt. None (nothing read nor written) in a session that is not READ COMMITTED: the
    function's read after the lock needs a snapshot of its own, which only that level gives each statement; and
    None for RETRY_FUNCTION_SECONDS after the store's role was refused the function's EXECUTE."""
    if time.monotonic() < _refused.until:
        return None
    try:
        return conn.execute(_CLAIM_CALL, {"w_job_id": job_id, "w_number": number, "worker": worker, "engine": engine,
                                          "host": host, "slots": slots, "default_max_running": default_max_running,
                                          "now": now, "final": _FINAL}).mappings().first()
    except sa.exc.ProgrammingError as exc:
        if getattr(exc.orig, "pgcode", None) != INSUFFICIENT_PRIVILEGE or exc.orig.diag.context is not None:
            raise
        log.warning("the store's role may not run longshore_claim_v1 (%s): claims take their transaction, four "
                    "round trips more, for the next %.0f s; GRANT EXECUTE ON FUNCTION longshore_claim_v1 TO the "
                    "workers' role", exc.orig.diag.message_primary, RETRY_FUNCTION_SECONDS)
        _refused.until = time.monotonic() + RETRY_FUNCTION_SECONDS
        return None


class _Refused:
    until = 0.0  #: time.monotonic() until which claims do not call the function (its EXECUTE was refused)


_refused = _Refused()


_FINAL = sorted(status.value for status in FINAL_STATUSES)
#: The claim's call, built once; the job's columns by name from the function's row of the jobs table's type.
_CLAIM_CALL = sa.text(
    "SELECT claim.claimed, claim.attempt_worker, claim.max_running_jobs, claim.holding, "
    + ", ".join(f'(claim.job)."{name}"' for name in jobs.c.keys())
    + " FROM longshore_claim_v1(:w_job_id, :w_number, :worker, :engine, :host, :slots, :default_max_running, :now,"
      " :final) AS claim"
).columns(sa.column("claimed", sa.Boolean), sa.column("attempt_worker", sa.String),
          sa.column("max_running_jobs", sa.Integer), sa.column("holding", sa.Integer),
          *[sa.column(column.name, column.type) for column in jobs.c])
