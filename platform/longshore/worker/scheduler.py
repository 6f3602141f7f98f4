"""The scheduler: one active per installation, in whichever process holds its lease (every worker runs
one, and `longshore scheduler` runs one alone). While it holds the lease it makes the jobs of due
schedules and delivers due webhooks, every LONGSHORE_SCHEDULER_INTERVAL_SECONDS; the others wait and
try to take the lease now and then, so one takes over within seconds when the active one dies."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from longshore.service import scheduling, webhooks
from longshore.service.runtime import Runtime
from longshore.store.leases import Lease

log = logging.getLogger(__name__)

LEASE = "scheduler"
#: A process without the lease tries for it once every this many intervals.
TRY_EVERY_INTERVALS = 3


class Scheduler:
    """The loop (see the module's docstring); `run()` in the foreground or `start()` a daemon thread."""

    def __init__(self, rt: Runtime, *, name: str = "scheduler"):
        self.rt, self.name = rt, name
        self.stopping = threading.Event()
        self.lease: Lease | None = None
        self.active = threading.Event()  #: set while this process holds the lease
        self.in_flight: set[int] = set()  #: webhook deliveries under way

    def start(self) -> "Scheduler":
        threading.Thread(target=self.run, name="longshore-scheduler", daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        interval = self.rt.settings.scheduler.interval_seconds
        waited = TRY_EVERY_INTERVALS
        with ThreadPoolExecutor(webhooks.PARALLEL, "longshore-webhook") as pool:
            while not self.stopping.is_set():
                if self.lease is None and waited >= TRY_EVERY_INTERVALS:
                    waited = 0
                    self.lease = self.rt.store.leases.try_acquire(LEASE)
                    if self.lease is not None:
                        log.info("%s is the active scheduler", self.name)
                if self.lease is not None and not self.lease.alive():
                    self.lease = None
                if self.lease is None:
                    self.active.clear()
                    waited += 1
                else:
                    self.active.set()
                    self._round(pool)
                self.stopping.wait(interval)
        if self.lease is not None:
            self.lease.release()
            self.active.clear()

    def _round(self, pool: ThreadPoolExecutor) -> None:
        try:
            scheduling.run_due(self.rt)
        except Exception:  # the store or the broker is away: next round
            log.warning("scheduling round failed", exc_info=True)
        try:
            webhooks.deliver_due(self.rt, pool, self.in_flight)
        except Exception:  # the store is away: next round
            log.warning("webhook round failed", exc_info=True)
