"""The per-process objects every part shares: settings, manifest, store, engine."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field

from longshore.engine import DockerEngine
from longshore.settings import Settings, get_settings
from longshore.stacks import StackManifest
from longshore.store import Store


@dataclass
class Runtime:
    """Built once per process from the settings; the engine connects on first use."""

    settings: Settings
    manifest: StackManifest
    store: Store
    _engine: DockerEngine | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def engine(self) -> DockerEngine:
        """The Docker boundary for this process's engine (DOCKER_HOST)."""
        with self._lock:
            if self._engine is None:
                from longshore.metrics import record_docker_call

                self._engine = DockerEngine(
                    self.settings.docker_host,
                    timeout_seconds=self.settings.docker_timeout_seconds,
                    on_call=record_docker_call,
                )
            return self._engine

    def reset_engine(self) -> None:
        """Forget the Docker client (after a fork: the next use connects anew)."""
        with self._lock:
            self._engine = None


@functools.cache
def get_runtime() -> Runtime:
    """The process's runtime. SQLite (the embedded default) migrates itself."""
    settings = get_settings()
    store = Store(settings.database_url)
    if store.is_postgres:
        store.check_schema()
    else:
        settings.home.mkdir(parents=True, exist_ok=True)
        store.upgrade()
    return Runtime(settings=settings, manifest=StackManifest.load(settings.stacks_file), store=store)
