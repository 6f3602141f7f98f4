"""A worker's heartbeat: proof of life in the store, and a watch on its Docker engine."""

from __future__ import annotations

import logging
import threading
import time

from longshore.domain.stacks import stack_queue
from longshore.service.janitor import run_janitor_pass
from longshore.service.runtime import Runtime

log = logging.getLogger(__name__)


def stacks_of(queues: list[str]) -> list[str]:
    """The stacks whose queues are among `queues`."""
    prefix = stack_queue("")
    return [q.removeprefix(prefix) for q in queues if q.startswith(prefix)]


def start_heartbeat(rt: Runtime, nodename: str, queues: list[str], *, slots: int,
                    sweep_at_start: bool) -> threading.Thread:
    """A daemon thread writing this worker's heartbeat to the store; the janitor reads it."""
    stacks = stacks_of(queues)
    started_at = time.time()
    host = rt.settings.worker.hostname

    def beat() -> None:
        if sweep_at_start:
            _sweep_once(rt, nodename)
        engine_down_from = None
        while True:
            try:
                rt.store.workers.heartbeat(nodename, host=host, stacks=stacks, slots=slots, started_at=started_at)
                # Also watch the engine: when it restarts it kills the containers it runs,
                # and the wait step must tell that from the job's own exit.
                if rt.engine.ping():
                    if engine_down_from is not None:
                        rt.store.workers.engine_outage(nodename, down_from=engine_down_from, down_until=time.time())
                        engine_down_from = None
                elif engine_down_from is None:
                    engine_down_from = time.time()
                    rt.store.workers.engine_outage(nodename, down_from=engine_down_from, down_until=None)
            except Exception:  # a store outage must not kill the thread: the next beat retries
                log.exception("heartbeat of %s failed", nodename)
            time.sleep(rt.settings.worker.heartbeat_seconds)

    rt.store.workers.heartbeat(nodename, host=host, stacks=stacks, slots=slots, started_at=started_at)
    thread = threading.Thread(target=beat, name="longshore-heartbeat", daemon=True)
    thread.start()
    return thread


def _sweep_once(rt: Runtime, nodename: str) -> None:
    """Sweep this engine once at start, as Fn's agent does."""
    try:
        report = run_janitor_pass(rt, nodename)
        log.info("start-up sweep: %s", report.summary())
    except Exception:  # a failed sweep must not stop the worker: the janitor passes again later
        log.exception("start-up sweep failed")
