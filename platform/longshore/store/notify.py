"""Telling waiters that a job finished, and caches that what they hold changed: one listener per process.

On PostgreSQL the finishing transaction sends NOTIFY with the job id; one thread per
process LISTENs on one dedicated connection (outside the pool) and wakes only the
waiters of that job. However many callers wait, they hold no connection while
waiting. On SQLite (no NOTIFY) waiters are woken in-process and re-read the job
a few times a second, in case another process finished it.

The same connection LISTENs on the channels a cache follows (`channels`): each has an epoch that moves at
each notification on it and whenever the connection is made or lost, and no epoch (None) while this process
is not listening. An entry cached under an epoch is good while the epoch has not moved and, as a backstop
for a notification that never comes (a change that sent none, a pooler that does not keep LISTEN's
session), for a few seconds at most.
"""

from __future__ import annotations

import logging
import os
import selectors
import threading
import time
from collections import defaultdict
from typing import Callable

import psycopg2
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.domain.records import Job
from longshore.errors import WaitTimeout
from longshore.store.database import is_postgres

log = logging.getLogger(__name__)

FINISHED_CHANNEL = "longshore_job_finished"
_NOTIFY = sa.select(sa.func.pg_notify(FINISHED_CHANNEL, sa.bindparam("job_id", type_=sa.String)))
#: How often a waiter re-reads its job anyway (a notification lost to a reconnect, or SQLite).
RECHECK_SECONDS = {True: 5.0, False: 0.25}
#: How long the listener waits before connecting again after losing its connection.
RECONNECT_SECONDS = 0.5


class FinishListener:
    """Announces finishes inside the finishing transaction; wakes that job's waiters."""

    def __init__(self, engine: Engine, *, connect_timeout_seconds: float = 10, channels: tuple[str, ...] = ()):
        self._engine = engine
        self._postgres = is_postgres(engine)
        self._connect_timeout = connect_timeout_seconds
        self._lock = threading.Lock()
        self._waiters: dict[str, set[threading.Event]] = defaultdict(set)
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._epochs = dict.fromkeys(channels, 0)  #: each followed channel's epoch (see the module's docstring)
        self._live = False  #: LISTENing now
        self._closed = threading.Event()  #: set by `close`: listen no more

    def announce(self, conn: sa.Connection, job_id: str) -> None:
        """Inside the transaction that finished `job_id`: delivered to listeners when it commits."""
        if self._postgres:
            conn.execute(_NOTIFY, {"job_id": job_id})

    def wake_local(self, job_id: str | None = None) -> None:
        """After the commit: wake this process's waiters of `job_id` (every waiter when None)."""
        with self._lock:
            events = [e for waiting in self._waiters.values() for e in waiting] if job_id is None \
                else list(self._waiters.get(job_id, ()))
        for event in events:
            event.set()

    def epoch(self, channel: str) -> int | None:
        """The followed `channel`'s epoch; None while this process is not listening (yet, or any more)."""
        if not self._postgres:
            return None
        self._ensure_listening()
        with self._lock:
            return self._epochs[channel] if self._live and self._pid == os.getpid() else None

    def moved(self, channel: str) -> None:
        """This process changed what `channel` announces: its epoch moves now, before its own notification
        comes back."""
        with self._lock:
            self._epochs[channel] += 1

    def wait(self, job_id: str, get_job: Callable[[str], Job], timeout: float | None = None) -> Job:
        """Block until the job is final and return it; WaitTimeout after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._postgres:
            self._ensure_listening()
        event = threading.Event()
        with self._lock:
            self._waiters[job_id].add(event)
        try:
            while True:
                # Registered first, then look: a finish in between is not missed.
                job = _read_retrying(get_job, job_id, deadline)
                if job.status.final:
                    return job
                event.wait(min(_remaining(deadline, job_id), RECHECK_SECONDS[self._postgres]))
                event.clear()
        finally:
            with self._lock:
                self._waiters[job_id].discard(event)
                if not self._waiters[job_id]:
                    del self._waiters[job_id]

    def close(self) -> None:
        """Listen no more (its store is closed): the thread ends when its connection next wakes it (within a
        minute, or as its database goes) and connects no more; waiters look again every few seconds."""
        self._closed.set()
        self.wake_local()

    def _ensure_listening(self) -> None:
        with self._lock:
            if self._closed.is_set() or (self._thread is not None and self._thread.is_alive()
                                         and self._pid == os.getpid()):
                return
            self._pid = os.getpid()  # a forked child listens on a connection of its own
            self._live = False  # (and is not listening until its thread is: whatever its parent was)
            for channel in self._epochs:
                self._epochs[channel] += 1
            self._thread = threading.Thread(target=self._listen_forever, name="longshore-finish-listener",
                                            daemon=True)
            self._thread.start()

    def _listen_forever(self) -> None:
        url = self._engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while not self._closed.is_set():
            try:
                # keepalives: a peer gone without a word (a host down, a NAT's timeout) is noticed in a
                # minute, not in the system's two hours
                connection = psycopg2.connect(dsn, connect_timeout=int(self._connect_timeout), keepalives_idle=30,
                                              keepalives_interval=10, keepalives_count=3)
                try:
                    self._listen(connection)
                finally:
                    connection.close()
            except psycopg2.Error:
                log.info("the store's listener lost its connection; listening again shortly", exc_info=True)
            except Exception:  # whatever it was, the thread goes on: waiters and caches rely on it
                log.warning("the store's listener failed; listening again shortly", exc_info=True)
            self._following(live=False)
            self.wake_local()  # whatever was announced meanwhile, waiters look again
            self._closed.wait(RECONNECT_SECONDS)

    def _listen(self, connection) -> None:
        connection.autocommit = True
        with connection.cursor() as cursor:
            for channel in (FINISHED_CHANNEL, *self._epochs):
                cursor.execute(f"LISTEN {channel}")
        self._following(live=True)
        self.wake_local()  # anything finished before we listened: waiters look again
        with selectors.DefaultSelector() as selector:
            selector.register(connection, selectors.EVENT_READ)
            while not self._closed.is_set():
                selector.select(timeout=60)
                connection.poll()
                while connection.notifies:
                    notice = connection.notifies.pop(0)
                    if notice.channel == FINISHED_CHANNEL:
                        self.wake_local(notice.payload)
                    else:
                        self.moved(notice.channel)

    def _following(self, *, live: bool) -> None:
        """Listening began or ended: every followed channel's epoch moves (what came meanwhile is unknown)."""
        with self._lock:
            self._live = live
            for channel in self._epochs:
                self._epochs[channel] += 1


def _read_retrying(get_job: Callable[[str], Job], job_id: str, deadline: float | None) -> Job:
    """Read the job; while the database is away (a restart), wait a moment and read again."""
    while True:
        try:
            return get_job(job_id)
        except (sa.exc.OperationalError, sa.exc.InterfaceError):
            time.sleep(min(0.5, _remaining(deadline, job_id)))


def _remaining(deadline: float | None, job_id: str) -> float:
    if deadline is None:
        return 3600.0
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise WaitTimeout(f"job {job_id} did not finish in time")
    return remaining
