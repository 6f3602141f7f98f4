"""The job store (SQLAlchemy Core over PostgreSQL or SQLite), split by concern.

`Store` opens one engine and hands out the parts: `jobs` (the state machine),
`workers` (the registry), `reads` (read models). It imports the domain and
nothing above it, and never the engine or the broker.
"""

from __future__ import annotations

from longshore.store import schema
from longshore.store.database import STORE_ERRORS, TRANSIENT_ERRORS, connect, is_postgres
from longshore.store.jobs import JobRepository
from longshore.store.readmodels import InstallationCounts, ReadModels
from longshore.store.workers import WorkerRegistry

__all__ = ["Store", "STORE_ERRORS", "TRANSIENT_ERRORS", "InstallationCounts"]


class Store:
    """One database: its jobs, its workers, its read models."""

    def __init__(self, url: str, *, pool_size: int = 10):
        self.engine = connect(url, pool_size=pool_size)
        self.is_postgres = is_postgres(self.engine)
        self.jobs = JobRepository(self.engine)
        self.workers = WorkerRegistry(self.engine)
        self.reads = ReadModels(self.engine)

    def upgrade(self) -> int:
        """Create or migrate the schema; return the version reached."""
        return schema.upgrade(self.engine)

    def check_schema(self) -> None:
        """Raise ConfigError unless the schema is current."""
        schema.check(self.engine)
