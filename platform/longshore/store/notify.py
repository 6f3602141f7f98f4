"""Telling waiters that a job finished: PostgreSQL's NOTIFY across processes, a condition in-process."""

from __future__ import annotations

import select
import threading
import time
from typing import Callable

import psycopg2
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.domain.records import Job
from longshore.errors import WaitTimeout
from longshore.store.database import is_postgres

FINISHED_CHANNEL = "longshore_job_finished"
#: How often an SQLite waiter re-reads the job, in case another process finished it.
SQLITE_RECHECK_SECONDS = 0.25
#: How long a PostgreSQL waiter sleeps between looks when no notification arrives.
LISTEN_RECHECK_SECONDS = 5.0


class FinishNotifier:
    """Announces finishes inside the finishing transaction; waits for one job's finish."""

    def __init__(self, engine: Engine, get_job: Callable[[str], Job]):
        self._engine = engine
        self._get_job = get_job
        self._postgres = is_postgres(engine)
        self._finished = threading.Condition()

    def announce(self, conn: sa.Connection, job_id: str) -> None:
        """Inside the transaction that finished `job_id`: delivered to listeners when it commits."""
        if self._postgres:
            conn.execute(sa.select(sa.func.pg_notify(FINISHED_CHANNEL, job_id)))

    def wake_local(self) -> None:
        """After the commit: wake waiters in this process (SQLite has no NOTIFY)."""
        with self._finished:
            self._finished.notify_all()

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job is final and return it; WaitTimeout after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._postgres:
            try:
                return self._wait_postgres(job_id, deadline)
            except (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg2.Error):
                # The database restarted under us: wait a moment and listen again.
                time.sleep(min(0.5, _remaining(deadline, job_id)))
        while True:
            job = self._get_job(job_id)
            if job.status.final:
                return job
            remaining = _remaining(deadline, job_id)
            with self._finished:
                self._finished.wait(min(remaining, SQLITE_RECHECK_SECONDS))

    def _wait_postgres(self, job_id: str, deadline: float | None) -> Job:
        raw = self._engine.raw_connection()
        try:
            dbapi = raw.driver_connection
            dbapi.autocommit = True
            with dbapi.cursor() as cursor:
                cursor.execute(f"LISTEN {FINISHED_CHANNEL}")
            # Listen first, then look: a job finishing in between is not missed.
            while True:
                job = self._get_job(job_id)
                if job.status.final:
                    return job
                remaining = _remaining(deadline, job_id)
                select.select([dbapi], [], [], min(remaining, LISTEN_RECHECK_SECONDS))
                dbapi.poll()
                dbapi.notifies.clear()
        finally:
            try:
                with raw.driver_connection.cursor() as cursor:
                    cursor.execute(f"UNLISTEN {FINISHED_CHANNEL}")
                raw.driver_connection.autocommit = False  # pooled connections must stay transactional
                raw.close()
            except psycopg2.Error:
                raw.invalidate()  # a broken connection is not returned to the pool


def _remaining(deadline: float | None, job_id: str) -> float:
    if deadline is None:
        return 3600.0
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise WaitTimeout(f"job {job_id} did not finish in time")
    return remaining
