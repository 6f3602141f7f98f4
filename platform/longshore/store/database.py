"""Connecting to the store: PostgreSQL (psycopg2) in production, SQLite for the embedded default."""

from __future__ import annotations

import contextlib
import functools
import time
from typing import Any, Iterator

import sqlalchemy as sa
from psycopg2.extensions import ISOLATION_LEVEL_READ_COMMITTED
from sqlalchemy.engine import Engine

from longshore.store import prepared

#: Failures of the store itself (it restarted, the network dropped): worth retrying.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (sa.exc.OperationalError, sa.exc.InterfaceError)
#: A pooled connection idle this long is pinged before it is used again.
PING_AFTER_IDLE_SECONDS = 2.0
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
        # SQLAlchemy's wrapping of the driver's error (a refused connect is no disconnect, but the store is away);
        # a prepared statement out of date is retried as an outage is, but the store was there
        if isinstance(context.original_exception, prepared.PreparedOutOfDate):
            return
        if context.is_disconnect or isinstance(context.sqlalchemy_exception, TRANSIENT_ERRORS):
            self.last_failure = time.time()


def connect(url: str, *, pool_size: int, max_overflow: int, connect_timeout_seconds: float,
            health: StoreHealth, prepare: bool = True) -> Engine:
    """An SQLAlchemy engine for `url`; connections open on first use. `prepare`: PostgreSQL prepares the
    statements a connection runs again and again (`store.prepared`)."""
    url = driver_url(url)
    if url.startswith("postgresql"):
        engine = sa.create_engine(
            # The last connection returned is the next handed out: a busy process keeps using its warm ones
            # (their prepared statements, their server's caches) and the rest idle.
            url, pool_size=pool_size, max_overflow=max_overflow, pool_use_lifo=True,
            # The guarded writes rely on READ COMMITTED (restored on a connection's return, e.g. after the
            # lease's AUTOCOMMIT); a connect to an unreachable host fails in seconds.
            isolation_level="READ COMMITTED",
            connect_args={"connect_timeout": int(connect_timeout_seconds), "keepalives_idle": 30})
        sa.event.listen(engine, "checkout", functools.partial(_ping_if_idle, engine.dialect))
        sa.event.listen(engine, "checkin", _returned)
        if prepare:
            sa.event.listen(engine, "do_execute", prepared.execute)
            sa.event.listen(engine, "handle_error", prepared.on_error)
    else:
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    sa.event.listen(engine, "handle_error", health.on_error)
    return engine


@contextlib.contextmanager
def read(engine: Engine) -> Iterator[sa.Connection]:
    """A connection for reads only. On PostgreSQL it runs in autocommit: a read is one round trip rather
    than three (BEGIN, the read, ROLLBACK), and under READ COMMITTED each statement sees its own snapshot
    either way. A write alone goes in `single_write`; writes together and locking reads (FOR UPDATE) go in
    `engine.begin()`."""
    with engine.connect() as connection:
        if engine.dialect.name != "postgresql":
            yield connection
            return
        dbapi_connection = connection.connection.dbapi_connection
        # psycopg2's own switches, in an order that sends no statement (SQLAlchemy's switch, and psycopg2's
        # leaving autocommit with a level set, send a SET each time): a single read in autocommit has the
        # same snapshot at any level. The pool's check-in (`_returned`) switches back, whatever happens here.
        dbapi_connection.isolation_level = None
        dbapi_connection.autocommit = True
        yield connection


@contextlib.contextmanager
def single_write(engine: Engine) -> Iterator[sa.Connection]:
    """A connection for one write statement that commits on its own. On PostgreSQL it runs in autocommit: one
    round trip rather than three (BEGIN, the write, COMMIT); a statement alone is atomic either way, and its
    guards (the WHERE of a fenced update) read the same committed rows. Elsewhere, a transaction."""
    if not is_postgres(engine):
        with engine.begin() as connection:
            yield connection
        return
    with read(engine) as connection:
        yield connection


def is_postgres(engine: Engine) -> bool:
    """True for PostgreSQL, False for the embedded SQLite."""
    return engine.dialect.name == "postgresql"


def driver_url(url: str) -> str:
    """`postgres://` and `postgresql://` mean psycopg2; anything else is SQLAlchemy's own URL."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def _ping_if_idle(dialect: Any, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """SQLAlchemy's pre-ping, for a connection idle in the pool for a while: one that was in use a moment
    ago is almost surely alive, and a ping per checkout (with the isolation statements it brought) was a
    third of a job's statements. If it died
    anyway (the store restarted), its first statement fails as an outage does, which the callers retry,
    and SQLAlchemy then replaces the whole pool."""
    returned = record.info.get("returned_at")
    if returned is not None and time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
        return
    try:
        alive = dialect.do_ping(dbapi_connection)
    except dialect.loaded_dbapi.Error:
        alive = False
    if not alive:
        raise sa.exc.DisconnectionError("the pooled connection did not answer a ping")


def _returned(dbapi_connection: Any, record: Any) -> None:
    _transactional(dbapi_connection)  # never back in the pool in a read's autocommit
    record.info["returned_at"] = time.monotonic()


def _transactional(dbapi_connection: Any) -> None:
    """A psycopg2 connection as the pool hands it out: transactions at READ COMMITTED (no statement sent)."""
    if dbapi_connection is None or dbapi_connection.closed:
        return  # SQLAlchemy replaces it (the store went away)
    if dbapi_connection.autocommit:
        dbapi_connection.autocommit = False
    if dbapi_connection.isolation_level != ISOLATION_LEVEL_READ_COMMITTED:
        dbapi_connection.isolation_level = ISOLATION_LEVEL_READ_COMMITTED


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
