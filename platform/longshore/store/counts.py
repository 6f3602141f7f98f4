"""Jobs by stack and status, kept exact inside the transaction of every status change.

The exporter reads this small table instead of counting the jobs table at each scrape.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from longshore.store.schema import job_counts

#: The pseudo-status whose `total` counts every job accepted.
SUBMITTED = "submitted"


def count_move(conn: sa.Connection, stack: str, old: str | None, new: str) -> None:
    """A job of `stack` moved from `old` (None: it is new) to `new`. The two rows are written in the order
    of their names, so two moves in opposite directions never wait on each other (no deadlock)."""
    changes = {new: (1, 1)} if old is None else {old: (-1, 0), new: (1, 1)}
    for status in sorted(changes):
        current, total = changes[status]
        _add(conn, stack, status, current=current, total=total)


def count_submitted(conn: sa.Connection, stack: str) -> None:
    """One more job accepted on `stack`."""
    _add(conn, stack, SUBMITTED, current=0, total=1)


def count_removed(conn: sa.Connection, stack: str, status: str, removed: int) -> None:
    """`removed` jobs of `stack` in final `status` were deleted (retention): fewer are there now; the total
    that ever reached it stays."""
    _add(conn, stack, status, current=-removed, total=0)


def queued_everywhere(conn: sa.Connection) -> int:
    """Jobs waiting to run in the whole installation: an upper bound of any project's, read from a few rows."""
    return conn.execute(sa.select(sa.func.coalesce(sa.func.sum(job_counts.c.current), 0))
                        .where(job_counts.c.status == "queued")).scalar()


def _add(conn: sa.Connection, stack: str, status: str, *, current: int, total: int) -> None:
    conn.execute(_upsert(conn.dialect.name), {"c_stack": stack, "c_status": status, "c_current": current,
                                              "c_total": total})


@functools.cache
def _upsert(dialect_name: str) -> sa.Insert:
    """The count's upsert, built once per dialect (a statement built per call costs its cache key each time)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    current, total = sa.bindparam("c_current", type_=sa.Integer), sa.bindparam("c_total", type_=sa.Integer)
    insert = dialect.insert(job_counts).values(stack=sa.bindparam("c_stack"), status=sa.bindparam("c_status"),
                                               current=current, total=total)
    return insert.on_conflict_do_update(index_elements=[job_counts.c.stack, job_counts.c.status],
                                        set_={"current": job_counts.c.current + current,
                                              "total": job_counts.c.total + total})
