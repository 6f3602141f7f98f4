"""Jobs by stack and status, kept exact inside the transaction of every status change.

The exporter reads this small table instead of counting the jobs table at each scrape.
"""

from __future__ import annotations

import collections
import functools

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from longshore.store.schema import job_counts

#: The pseudo-status whose `total` counts every job accepted.
SUBMITTED = "submitted"


def count_move(conn: sa.Connection, stack: str, old: str | None, new: str, *, submitted: bool = False) -> None:
    """A job of `stack` moved from `old` (None: it is new; `submitted`: newly accepted) to `new`, in one
    statement. Its rows are written in the order of their names, so two moves in opposite directions never
    wait on each other (no deadlock)."""
    _add(conn, stack, _changes(old, new, submitted))


def counted_after(moved: sa.CTE, old: str | None, new: str, *, submitted: bool = False) -> sa.CTE:
    """`count_move` as part of one PostgreSQL statement: a data-modifying CTE that counts the move of the job
    `moved` (a CTE with the moved job's `stack`, empty if it did not move), its rows in the same order."""
    # the changes as literals (statuses are the store's own names): SQLAlchemy caches no statement with VALUES
    change = sa.union_all(*(sa.select(sa.literal_column(f"'{status}'", sa.String).label("status"),
                                      sa.literal_column(str(current), sa.BigInteger).label("current"),
                                      sa.literal_column(str(total), sa.BigInteger).label("total"))
                            for status, (current, total) in _changes(old, new, submitted))).subquery("change")
    insert = postgresql.insert(job_counts).from_select(
        ["stack", "status", "current", "total"],
        sa.select(moved.c.stack, change.c.status, change.c.current, change.c.total)
        .select_from(moved.join(change, sa.true())).order_by(change.c.status.collate("C")))  # as sorted()
    return insert.on_conflict_do_update(index_elements=[job_counts.c.stack, job_counts.c.status], set_={
        "current": job_counts.c.current + insert.excluded.current,
        "total": job_counts.c.total + insert.excluded.total}).cte("counted")


def count_removed(conn: sa.Connection, stack: str, status: str, removed: int) -> None:
    """`removed` jobs of `stack` in final `status` were deleted (retention): fewer are there now; the total
    that ever reached it stays."""
    _add(conn, stack, [(status, (-removed, 0))])


def queued_everywhere(conn: sa.Connection) -> int:
    """Jobs waiting to run in the whole installation: an upper bound of any project's, read from a few rows."""
    return conn.execute(sa.select(sa.func.coalesce(sa.func.sum(job_counts.c.current), 0))
                        .where(job_counts.c.status == "queued")).scalar()


def _changes(old: str | None, new: str, submitted: bool) -> list[tuple[str, tuple[int, int]]]:
    """(status, (current, total)) to add for the move, in the order of the statuses' names."""
    changes = collections.Counter({(new, "current"): 1, (new, "total"): 1})
    if old is not None:
        changes[old, "current"] -= 1  # added up: a requeue before its start moves queued → queued
    if submitted:
        changes[SUBMITTED, "total"] += 1
    statuses = sorted({status for status, _ in changes})
    return [(status, (changes[status, "current"], changes[status, "total"])) for status in statuses]


def _add(conn: sa.Connection, stack: str, changes: list[tuple[str, tuple[int, int]]]) -> None:
    """Add (current, total) to each status's row of `stack`, creating the rows that are missing."""
    parameters = {"stack": stack}
    for n, (status, (current, total)) in enumerate(changes):
        parameters.update({f"status{n}": status, f"current{n}": current, f"total{n}": total})
    conn.execute(_upsert(len(changes)), parameters)


@functools.cache
def _upsert(rows: int) -> sa.TextClause:
    """The counts' upsert of `rows` rows, built once (a statement built per call costs its cache key each
    time). The same text on PostgreSQL and SQLite (3.24 and later): a row's change is its `excluded` values."""
    values = ", ".join(f"(:stack, :status{n}, :current{n}, :total{n})" for n in range(rows))
    return sa.text(f"INSERT INTO {job_counts.name} (stack, status, current, total) VALUES {values} "
                   f"ON CONFLICT (stack, status) DO UPDATE SET current = {job_counts.name}.current + excluded.current, "
                   f"total = {job_counts.name}.total + excluded.total")
