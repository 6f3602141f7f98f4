"""A worker's heartbeat: proof of life in the store, a watch on its Docker engine, and one name per process."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from typing import Callable

from longshore.domain.records import WorkerIdentity
from longshore.service.runtime import Runtime
from longshore.store.workers import Beat

log = logging.getLogger(__name__)


class Heartbeat:
    """Registers the worker, then renews its row every LONGSHORE_HEARTBEAT_SECONDS on a thread of its own.

    When a renewal finds the name registered by another live process since, the name is
    a duplicate: `on_duplicate` is called (the worker stops) rather than two processes
    acting as one worker.
    """

    def __init__(self, rt: Runtime, me: WorkerIdentity, stacks: list[str], on_duplicate: Callable[[str], None]):
        self.rt, self.me, self.stacks, self.on_duplicate = rt, me, stacks, on_duplicate
        self.instance = secrets.token_hex(8)
        self.stopping = threading.Event()

    def start(self) -> "Heartbeat":
        """Register now (in the caller's thread: a store that is away stops the start), then beat."""
        self._register()
        threading.Thread(target=self._beat, name="longshore-heartbeat", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop beating; forget the worker if it owns nothing open (no 'worker down' alert for a clean stop)."""
        self.stopping.set()
        try:
            self.rt.store.workers.unregister(self.me.name, instance=self.instance)
        except Exception:  # the store is away: the row ages out
            log.info("could not unregister %s", self.me.name, exc_info=True)

    def _register(self) -> None:
        self.rt.store.workers.register(self.me.name, host=self.me.host, engine_id=self.me.engine_id,
                                       instance=self.instance, pid=os.getpid(), stacks=self.stacks,
                                       slots=self.me.slots)

    def _beat(self) -> None:
        engine_down_from = None
        registry = self.rt.store.workers
        while not self.stopping.wait(self.rt.settings.worker.heartbeat_seconds):
            try:
                beat = registry.heartbeat(self.me.name, instance=self.instance)
                if beat is Beat.MISSING:
                    self._register()
                elif beat is Beat.TAKEN:
                    self.on_duplicate(f"another process registered as worker {self.me.name}: "
                                      "each worker needs a name of its own (--name)")
                    return
                # Also watch the engine: when it restarts it kills the containers it runs, and the
                # wait step must tell that from the job's own exit.
                if self.rt.engine.ping():
                    if engine_down_from is not None:
                        registry.engine_outage(self.me.name, down_from=engine_down_from, down_until=time.time())
                        engine_down_from = None
                elif engine_down_from is None:
                    engine_down_from = time.time()
                    registry.engine_outage(self.me.name, down_from=engine_down_from, down_until=None)
            except Exception:  # a store outage must not kill the thread: the next beat retries
                log.warning("heartbeat of %s failed", self.me.name, exc_info=True)
