"""Connecting to the store: PostgreSQL (psycopg2) in production, SQLite for the embedded default."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

#: Failures of the store itself (it restarted, the network dropped): worth retrying.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (sa.exc.OperationalError, sa.exc.InterfaceError)
#: Any failure of a store call.
STORE_ERRORS: tuple[type[Exception], ...] = (sa.exc.SQLAlchemyError,)


class StoreHealth:
    """When this process last failed to reach the store: a janitor judges no worker lost while the
    store itself has been away recently (every heartbeat would look stale)."""

    def __init__(self) -> None:
        # A process has seen the store up only since it started: a fresh one judges no worker lost
        # until it has watched a whole lost window.
        self.last_failure = time.time()

    def seconds_up(self) -> float:
        """Seconds since the last failure to reach the store seen in this process."""
        return time.time() - self.last_failure

    def on_error(self, context: Any) -> None:
        if context.is_disconnect or isinstance(context.original_exception, TRANSIENT_ERRORS):
            self.last_failure = time.time()


def connect(url: str, *, pool_size: int, max_overflow: int, connect_timeout_seconds: float,
            health: StoreHealth) -> Engine:
    """An SQLAlchemy engine for `url`; connections open on first use."""
    url = driver_url(url)
    if url.startswith("postgresql"):
        engine = sa.create_engine(
            url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow,
            # A connect to an unreachable host fails in seconds.
            connect_args={"connect_timeout": int(connect_timeout_seconds), "keepalives_idle": 30})
        sa.event.listen(engine, "connect", _read_committed)
    else:
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    sa.event.listen(engine, "handle_error", health.on_error)
    return engine


def is_postgres(engine: Engine) -> bool:
    """True for PostgreSQL, False for the embedded SQLite."""
    return engine.dialect.name == "postgresql"


def driver_url(url: str) -> str:
    """`postgres://` and `postgresql://` mean psycopg2; anything else is SQLAlchemy's own URL."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def _read_committed(dbapi_connection: Any, _record: Any) -> None:
    """The guarded writes rely on READ COMMITTED: made the session's default once, when it connects (an
    engine-wide isolation level would cost a statement on every checkout)."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")
    cursor.close()
    dbapi_connection.autocommit = autocommit


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
