"""Connecting to the store: PostgreSQL (psycopg2) in production, SQLite for the embedded default."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

#: Failures of the store itself (it restarted, the network dropped): worth retrying.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (sa.exc.OperationalError, sa.exc.InterfaceError)
#: Any failure of a store call.
STORE_ERRORS: tuple[type[Exception], ...] = (sa.exc.SQLAlchemyError,)


def connect(url: str, *, pool_size: int) -> Engine:
    """An SQLAlchemy engine for `url`; connections open on first use."""
    url = driver_url(url)
    if url.startswith("postgresql"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=pool_size)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    sa.event.listen(engine, "connect", _sqlite_pragmas)
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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
