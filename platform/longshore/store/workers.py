"""The worker registry: heartbeats, and the spans in which a worker could not reach its engine."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.store.schema import workers


class WorkerRegistry:
    """Who is alive, as their heartbeats say."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def heartbeat(self, name: str, *, host: str, stacks: list[str], slots: int, started_at: float) -> None:
        """Record that worker `name` is alive now."""
        now = time.time()
        with self.engine.begin() as conn:
            updated = conn.execute(
                workers.update().where(workers.c.name == name)
                .values(host=host, stacks=stacks, slots=slots, last_seen=now)
            ).rowcount
            if not updated:
                conn.execute(workers.insert().values(name=name, host=host, stacks=stacks, slots=slots,
                                                     started_at=started_at, last_seen=now))

    def engine_outage(self, name: str, *, down_from: float, down_until: float | None) -> None:
        """Record that worker `name` could not reach its engine from `down_from` (until `down_until`)."""
        with self.engine.begin() as conn:
            conn.execute(workers.update().where(workers.c.name == name)
                         .values(engine_down_from=down_from, engine_down_until=down_until))

    def engine_was_down(self, name: str, at: float, *, margin_seconds: float) -> bool:
        """True if worker `name`'s engine was unreachable around time `at` (the latest outage)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(workers.c.engine_down_from, workers.c.engine_down_until)
                               .where(workers.c.name == name)).first()
        if row is None or row.engine_down_from is None:
            return False
        until = row.engine_down_until if row.engine_down_until is not None else time.time()
        return row.engine_down_from - margin_seconds <= at <= until + margin_seconds

    def live(self, seen_within_seconds: float) -> list[str]:
        """Workers that heart-beat within the window."""
        cutoff = time.time() - seen_within_seconds
        # A worker that stopped still counts until the window passes: restarted in
        # time, it takes back its own queue and finishes what it started.
        query = sa.select(workers.c.name).where(workers.c.last_seen >= cutoff)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())
