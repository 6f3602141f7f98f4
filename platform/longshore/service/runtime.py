"""The per-process objects every part shares, built once from the settings.

Entry points (task adapters, commands, the public Python API) look the runtime up
with `get_runtime()` and pass it into service functions; nothing below them does.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field

from longshore.broker.app import create_app
from longshore.broker.publish import CeleryPublisher
from longshore.domain.stacks import StackManifest
from longshore.engine import DockerEngine
from longshore.errors import ConfigError
from longshore.service.code_files import CodeFiles
from longshore.service.ports import LifecycleEvents, Publisher
from longshore.service.secrets import Sealer, sealer_for
from longshore.settings import Settings, get_settings
from longshore.store import Store


@dataclass
class Runtime:
    """Settings, stacks, store, publisher and event hooks; the engine connects on first use."""

    settings: Settings
    manifest: StackManifest
    store: Store
    publisher: Publisher
    sealer: Sealer
    events: LifecycleEvents = field(default_factory=LifecycleEvents)
    code_files: CodeFiles = field(default_factory=CodeFiles)
    #: This process's embedded worker, if it runs one: what it publishes sits in its own memory.
    embedded_name: str | None = None
    _engine: DockerEngine | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def engine(self) -> DockerEngine:
        """The Docker boundary for this process's engine (DOCKER_HOST)."""
        with self._lock:
            if self._engine is None:
                self._engine = DockerEngine(
                    self.settings.docker_host,
                    timeout_seconds=self.settings.worker.docker_timeout_seconds,
                    on_call=lambda call, outcome, seconds: self.events.docker_call(call, outcome, seconds),
                    registry_auths=self.settings.worker.registry_auths,
                    tls_certs=self.settings.docker_cert_path if self.settings.docker_tls_verify else None,
                    contract_root=self.settings.contract_dir,
                )
            return self._engine

    def reset_engine(self) -> None:
        """Forget the Docker client (after a fork: the next use connects anew)."""
        with self._lock:
            self._engine = None

    def reconnect_store(self, *, pool_size: int, max_overflow: int) -> None:
        """A store of this process's own (after a fork), with a pool sized for it."""
        self.store = Store(self.settings.database_url, pool_size=pool_size, max_overflow=max_overflow,
                           connect_timeout_seconds=self.settings.database_connect_timeout_seconds,
                           prepare=self.settings.database_prepare)


@functools.cache
def get_runtime() -> Runtime:
    """The process's runtime. SQLite (the embedded default) migrates itself; PostgreSQL must be current."""
    settings = get_settings()
    store = Store(settings.database_url, pool_size=settings.database_pool_size,
                  max_overflow=settings.database_max_overflow,
                  connect_timeout_seconds=settings.database_connect_timeout_seconds, prepare=settings.database_prepare)
    if store.is_postgres:
        store.check_schema()
    else:
        settings.home.mkdir(parents=True, exist_ok=True)
        if not store.schema_is_current():
            store.upgrade()
    manifest = StackManifest.load(settings.stacks_file, settings.ceiling)
    if settings.jobs.default_stack not in manifest.stacks:
        raise ConfigError(f"LONGSHORE_DEFAULT_STACK: {settings.jobs.default_stack!r} is not a stack of "
                          f"{settings.stacks_file} (known: {', '.join(manifest.names())})")
    publisher = CeleryPublisher(create_app(settings, manifest.names()),
                                worker_queue_expires_seconds=settings.janitor.worker_queue_expires_seconds)
    return Runtime(settings=settings, manifest=manifest, store=store, publisher=publisher,
                   sealer=sealer_for(settings))
