"""Installation-wide leases: one process at a time does a job that must not be done twice at once (the
scheduler and webhook deliverer). On PostgreSQL a lease is a session advisory lock held by a connection
of its own: if its holder dies or loses the database, the lock goes with the connection and another
process takes the lease. The embedded SQLite store has one process: its lease is always granted."""

from __future__ import annotations

import hashlib
import logging

import sqlalchemy as sa
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


def lock_id(name: str) -> int:
    """A stable 63-bit advisory lock id for a lease's name."""
    return int.from_bytes(hashlib.sha256(f"longshore-lease:{name}".encode()).digest()[:8], "big") >> 1


class Lease:
    """A held lease; `alive()` before each round of work, `release()` when done."""

    def __init__(self, name: str, conn: sa.Connection | None):
        self.name, self._conn = name, conn

    def alive(self) -> bool:
        """True while the lease is still held (its connection still answers)."""
        if self._conn is None:
            return True
        try:
            self._conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            log.warning("lost the %s lease (its connection failed)", self.name)
            self._close()
            return False

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id(self.name)})
        except sa.exc.SQLAlchemyError:
            pass  # closing the connection releases it too
        self._close()

    def _close(self) -> None:
        try:
            self._conn.invalidate()  # never back to the pool: the session (and its lock) ends here
            self._conn.close()
        except sa.exc.SQLAlchemyError:
            pass
        self._conn = None


class Leases:
    """Taking leases on the store."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def try_acquire(self, name: str) -> Lease | None:
        """The lease `name` if no other process holds it; None if one does (or the store is away)."""
        if self.engine.dialect.name != "postgresql":
            return Lease(name, None)
        try:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except sa.exc.SQLAlchemyError:
            return None
        try:
            held = conn.execute(sa.text("SELECT pg_try_advisory_lock(:id)"), {"id": lock_id(name)}).scalar()
        except sa.exc.SQLAlchemyError:
            held = False
        if held:
            return Lease(name, conn)
        conn.close()
        return None
