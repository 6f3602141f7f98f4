"""A repeated start's lease on an attempt (`service.remake`): one start at a time works on the attempt's container
once a start failed. Taken by compare-and-set on `attempts.repair_at`, fenced to the owner and to the attempt
being open and its job's current one; a lease older than the caller's `stale_after` (its start stopped) is taken
over, and from then on its first holder's writes are refused."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.store.attempts import JOB_CURRENT
from longshore.store.database import single_write
from longshore.store.jobs import UNFINISHED, attempt_columns
from longshore.store.schema import attempts


class RepairLeases:
    """The leases of repeated starts, one per attempt."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def take(self, job_id: str, number: int, *, owner: str, stale_after: float) -> float | None:
        """A lease on the owner's open attempt: its token (the time it was taken), or None while another start
        holds one taken less than `stale_after` seconds ago."""
        now = time.time()
        with single_write(self.engine) as conn:
            taken = conn.execute(attempts.update().where(
                *_mine_and_open(job_id, number, owner),
                sa.or_(attempts.c.repair_at.is_(None), attempts.c.repair_at < now - stale_after),
            ).values(repair_at=now)).rowcount == 1
        return now if taken else None

    def keep(self, job_id: str, number: int, *, owner: str, lease: float, **fields: Any) -> bool:
        """Write `fields` (`container_id`, `remade_from`, `repair_at`) while the lease is still held and the attempt
        open; False if it was taken over or the attempt ended (nothing written)."""
        with single_write(self.engine) as conn:
            return conn.execute(attempts.update().where(*_mine_and_open(job_id, number, owner),
                                                        attempts.c.repair_at == lease)
                                .values(**attempt_columns(fields))).rowcount == 1

    def renew(self, job_id: str, number: int, *, owner: str, lease: float) -> float | None:
        """Hold the lease longer (its holder is at work): its new token, or None if it was taken over."""
        now = time.time()
        return now if self.keep(job_id, number, owner=owner, lease=lease, repair_at=now) else None

    def let_go(self, job_id: str, number: int, *, owner: str, lease: float) -> None:
        """Let go of the lease (if still held): the next repeated start may take it at once."""
        with single_write(self.engine) as conn:
            conn.execute(attempts.update().where(attempts.c.job_id == job_id, attempts.c.number == number,
                                                 attempts.c.worker == owner, attempts.c.repair_at == lease)
                         .values(repair_at=None))


def _mine_and_open(job_id: str, number: int, owner: str) -> tuple[sa.ColumnElement[bool], ...]:
    """The owner's attempt, open, of a job unfinished and at that attempt."""
    return (attempts.c.job_id == job_id, attempts.c.number == number, attempts.c.worker == owner,
            attempts.c.status.in_(UNFINISHED), JOB_CURRENT)
