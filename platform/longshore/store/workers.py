"""The worker registry: who drives which engine, their heartbeats, and their engines' outages.

Each worker process registers under its name with an `instance` token of its own;
its heartbeats renew the row only while the token is still its own, so a second
live process with the same name is noticed by both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from longshore.store.database import read
from longshore.store.jobs import UNFINISHED
from longshore.store.schema import attempts, workers


class Beat(StrEnum):
    """What a heartbeat found."""

    RENEWED = "renewed"  #: the row is this process's and is fresh again
    MISSING = "missing"  #: the row is gone (forgotten while away): register again
    TAKEN = "taken"  #: another process registered under this name since: a duplicate name


@dataclass(frozen=True)
class WorkerRow:
    """A worker as the registry knows it."""

    name: str
    host: str
    engine: str | None
    instance: str | None
    pid: int | None
    stacks: list[str]
    slots: int
    last_seen: float


class WorkerRegistry:
    """Who is alive, as their heartbeats say, and on which engine."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def register(self, name: str, *, host: str, engine_id: str, instance: str, pid: int, stacks: list[str],
                 slots: int) -> None:
        """Record (or take over) worker `name` as this process's, alive now."""
        now = time.time()
        values = dict(host=host, engine=engine_id, instance=instance, pid=pid, stacks=stacks, slots=slots,
                      started_at=now, last_seen=now)
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        with self.engine.begin() as conn:
            conn.execute(dialect.insert(workers).values(name=name, **values)
                         .on_conflict_do_update(index_elements=[workers.c.name], set_=values))

    def heartbeat(self, name: str, *, instance: str) -> Beat:
        """Renew worker `name`'s heartbeat if its row is still this process's."""
        with self.engine.begin() as conn:
            if conn.execute(workers.update().where(workers.c.name == name, workers.c.instance == instance)
                            .values(last_seen=time.time())).rowcount == 1:
                return Beat.RENEWED
            owner = conn.execute(sa.select(workers.c.instance).where(workers.c.name == name)).first()
        return Beat.MISSING if owner is None else Beat.TAKEN

    def get(self, name: str) -> WorkerRow | None:
        """The registry's row for worker `name`, if any."""
        return next(iter(self._rows(workers.c.name == name)), None)

    def all(self) -> list[WorkerRow]:
        """Every registered worker."""
        return self._rows(sa.true())

    def _rows(self, where: sa.ColumnElement[bool]) -> list[WorkerRow]:
        with read(self.engine) as conn:
            rows = conn.execute(sa.select(workers).where(where)).mappings().all()
        return [WorkerRow(name=r["name"], host=r["host"], engine=r["engine"], instance=r["instance"], pid=r["pid"],
                          stacks=r["stacks"] or [], slots=r["slots"], last_seen=r["last_seen"]) for r in rows]

    def unregister(self, name: str, *, instance: str) -> bool:
        """A worker stopping cleanly with nothing left open forgets itself (no 'worker down' alert)."""
        open_attempts = sa.exists().where(attempts.c.worker == name, sa.or_(
            attempts.c.released_at.is_(None), attempts.c.status.in_(UNFINISHED)))
        with self.engine.begin() as conn:
            return conn.execute(workers.delete().where(workers.c.name == name, workers.c.instance == instance,
                                                       ~open_attempts)).rowcount == 1

    def forget(self, *, silent_for_seconds: float) -> int:
        """Forget workers silent this long that own nothing open; the number forgotten."""
        open_attempts = sa.exists().where(attempts.c.worker == workers.c.name, sa.or_(
            attempts.c.released_at.is_(None), attempts.c.status.in_(UNFINISHED)))
        with self.engine.begin() as conn:
            return conn.execute(workers.delete().where(
                workers.c.last_seen < time.time() - silent_for_seconds, ~open_attempts)).rowcount

    def engine_outage(self, name: str, *, down_from: float, down_until: float | None) -> None:
        """Record that worker `name` could not reach its engine from `down_from` (until `down_until`)."""
        with self.engine.begin() as conn:
            conn.execute(workers.update().where(workers.c.name == name)
                         .values(engine_down_from=down_from, engine_down_until=down_until))

    def engine_was_down(self, name: str, at: float, *, margin_seconds: float) -> bool:
        """True if worker `name`'s engine was unreachable around time `at` (the latest outage)."""
        with read(self.engine) as conn:
            row = conn.execute(sa.select(workers.c.engine_down_from, workers.c.engine_down_until)
                               .where(workers.c.name == name)).first()
        if row is None or row.engine_down_from is None:
            return False
        until = row.engine_down_until if row.engine_down_until is not None else time.time()
        return row.engine_down_from - margin_seconds <= at <= until + margin_seconds

    def live(self, seen_within_seconds: float) -> list[str]:
        """Workers that heart-beat within the window."""
        cutoff = time.time() - seen_within_seconds
        query = sa.select(workers.c.name).where(workers.c.last_seen >= cutoff)
        with read(self.engine) as conn:
            return list(conn.execute(query).scalars())
