"""The job store (SQLAlchemy Core over PostgreSQL or SQLite), split by concern.

`Store` opens one engine and hands out the parts: `jobs` (the state machine),
`attempts` (ownership and step bookkeeping), `repairs` (a repeated start's lease on
an attempt), `workers` (the registry), `reads`
(read models), `retention` (deleting what ended long ago). It imports the domain
and nothing above it, never the engine or the broker.
"""

from __future__ import annotations

from longshore.store import schema
from longshore.store.attempts import AttemptRepository, Claim, Owned
from longshore.store.codes import CodeStore
from longshore.store.database import STORE_ERRORS, TRANSIENT_ERRORS, StoreHealth, connect, is_postgres
from longshore.store.jobs import JobRepository
from longshore.store.leases import Leases
from longshore.store.projects import CALLERS_CHANNEL, ProjectStore
from longshore.store.notify import FinishListener
from longshore.store.readmodels import InstallationCounts, ReadModels
from longshore.store.repairs import RepairLeases
from longshore.store.retention import Retention
from longshore.store.schedules import ScheduleStore
from longshore.store.webhooks import WebhookOutbox
from longshore.store.workers import WorkerRegistry

__all__ = ["Store", "Claim", "Owned", "STORE_ERRORS", "TRANSIENT_ERRORS", "InstallationCounts"]


class Store:
    """One database: its jobs, their attempts, the workers, the read models."""

    def __init__(self, url: str, *, pool_size: int = 5, max_overflow: int = 5, connect_timeout_seconds: float = 10,
                 prepare: bool = True):
        self.url = url
        self.health = StoreHealth()
        self.engine = connect(url, pool_size=pool_size, max_overflow=max_overflow,
                              connect_timeout_seconds=connect_timeout_seconds, health=self.health, prepare=prepare)
        self.is_postgres = is_postgres(self.engine)
        listener = FinishListener(self.engine, connect_timeout_seconds=connect_timeout_seconds,
                                  channels=(CALLERS_CHANNEL,))
        self.jobs = JobRepository(self.engine, listener)
        self.attempts = AttemptRepository(self.engine)
        self.repairs = RepairLeases(self.engine)
        self.workers = WorkerRegistry(self.engine)
        self.reads = ReadModels(self.engine)
        self.codes = CodeStore(self.engine)
        self.webhooks = WebhookOutbox(self.engine)
        self.schedules = ScheduleStore(self.engine)
        self.leases = Leases(self.engine)
        self.projects = ProjectStore(self.engine, listener)
        self.retention = Retention(self.engine)

    def close(self) -> None:
        """Let go of the database: its finish listener stops (a listener left running connects again twice a
        second once the database has gone) and the pool's connections close."""
        self.jobs.finishes.close()
        self.engine.dispose()

    def upgrade(self) -> int:
        """Migrate the schema to this code's version; return the version reached."""
        return schema.upgrade(self.engine)

    def check_schema(self) -> None:
        """Raise ConfigError unless this code can run on the schema (`longshore db upgrade` fixes an old one)."""
        schema.check(self.engine)

    def schema_is_current(self) -> bool:
        """True when no migration is needed for this code to run."""
        return schema.current(self.engine)
