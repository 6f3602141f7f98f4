"""Starting workers: a real Celery worker per host, or one inside this process (embedded)."""

from __future__ import annotations

import logging
import os
import threading
import time

from celery.apps.worker import Worker as CeleryWorker
from celery.worker import WorkController

from longshore.celery import app
from longshore.routing import CONTROL_QUEUE, local_worker, set_local_worker, worker_queue
from longshore.runtime import get_runtime
from longshore.stacks import stack_queue

log = logging.getLogger(__name__)

_embedded_lock = threading.Lock()
_embedded: WorkController | None = None


def worker_queues(stacks: list[str]) -> list[str]:
    """The shared queues a worker serving `stacks` consumes (its own queue is added at setup)."""
    manifest = get_runtime().manifest
    for name in stacks:
        manifest.get(name)  # an unknown stack stops the worker with the known ones named
    return [CONTROL_QUEUE] + [stack_queue(name) for name in stacks]


def default_nodename(stacks: list[str]) -> str:
    """A node name stable across restarts (the stacks served and the host), so a restarted
    worker takes back its own queue and finishes what it had started."""
    label = "-".join(stacks) if len(stacks) <= 3 else f"{len(stacks)}stacks"
    return f"longshore-{label}@{get_runtime().settings.hostname}"


def start_heartbeat(queues: list[str], *, slots: int, sweep_at_start: bool) -> threading.Thread:
    """A daemon thread writing this worker's heartbeat to the store; the janitor reads it."""
    runtime = get_runtime()
    nodename = local_worker()
    stacks = [q.removeprefix("stack.") for q in queues if q.startswith("stack.")]
    started_at = time.time()

    def beat() -> None:
        if sweep_at_start:
            _sweep_once(nodename)
        engine_down_from = None
        while True:
            try:
                runtime.store.heartbeat(nodename, host=runtime.settings.hostname, stacks=stacks,
                                        slots=slots, started_at=started_at)
                # Also watch the engine: when it restarts it kills the containers it runs,
                # and the wait step must tell that from the job's own exit.
                if _engine_answers(runtime):
                    if engine_down_from is not None:
                        runtime.store.engine_outage(nodename, down_from=engine_down_from, down_until=time.time())
                        engine_down_from = None
                elif engine_down_from is None:
                    engine_down_from = time.time()
                    runtime.store.engine_outage(nodename, down_from=engine_down_from, down_until=None)
            except Exception:  # a store outage must not kill the thread: the next beat retries
                log.exception("heartbeat of %s failed", nodename)
            time.sleep(runtime.settings.heartbeat_seconds)

    runtime.store.heartbeat(nodename, host=runtime.settings.hostname, stacks=stacks, slots=slots,
                            started_at=started_at)
    thread = threading.Thread(target=beat, name="longshore-heartbeat", daemon=True)
    thread.start()
    return thread


def _engine_answers(runtime) -> bool:
    try:
        return bool(runtime.engine.api.ping())
    except Exception:  # any failure to reach the engine means it is down
        return False


def _sweep_once(nodename: str) -> None:
    from longshore.janitor import run_janitor_pass

    try:
        report = run_janitor_pass(get_runtime(), nodename)
        log.info("start-up sweep: %s", report.summary())
    except Exception:
        log.exception("start-up sweep failed")


#: The port `longshore worker --metrics-port` asked for (0: no metrics server).
_metrics_port = 0


def serve_metrics_if_asked(queues: list[str], *, slots: int) -> None:
    """Start this worker's metrics server, if asked for one, with every series at zero."""
    from longshore import metrics
    from longshore.engine import LABEL_WORKER

    if not _metrics_port:
        return
    runtime = get_runtime()
    nodename = local_worker()
    metrics.prime(q.removeprefix("stack.") for q in queues if q.startswith("stack."))

    def running() -> int:
        return len(runtime.engine.api.containers(filters={"label": f"{LABEL_WORKER}={nodename}", "status": "running"}))

    metrics.serve_worker_metrics(_metrics_port, nodename=nodename, slots=slots, running=running)
    log.info("serving metrics on port %s", _metrics_port)


def run_worker(stacks: list[str], *, slots: int, nodename: str | None = None, loglevel: str = "INFO",
               beat: bool = False, pool: str = "prefork", metrics_port: int = 0) -> None:
    """Run a Celery worker in the foreground: `slots` containers at once, one pool process (or thread) each."""
    global _metrics_port
    _metrics_port = metrics_port
    queues = worker_queues(stacks)
    worker = CeleryWorker(
        app=app,
        hostname=nodename or default_nodename(stacks),
        queues=queues,
        pool_cls=pool,
        concurrency=slots,
        loglevel=loglevel,
        send_events=True,
        without_mingle=True,
        without_gossip=True,
        beat=beat,
    )
    worker.start()
    raise SystemExit(worker.exitcode)


def ensure_embedded_worker() -> WorkController:
    """Start, once per process, a real Celery worker in a thread serving every stack."""
    global _embedded
    with _embedded_lock:
        if _embedded is not None:
            return _embedded
        runtime = get_runtime()
        stacks = runtime.manifest.names()
        nodename = f"embedded-{os.getpid()}@{runtime.settings.hostname}"
        worker = WorkController(
            app=app,
            hostname=nodename,
            queues=worker_queues(stacks),
            pool="threads",
            concurrency=runtime.settings.embedded_slots,
            loglevel=logging.WARNING,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        set_local_worker(nodename)
        app.amqp.queues.select_add(worker_queue(nodename))
        thread = threading.Thread(target=worker.start, name="longshore-embedded-worker", daemon=True)
        thread.start()
        start_heartbeat(worker_queues(stacks), slots=runtime.settings.embedded_slots, sweep_at_start=True)
        _embedded = worker
        return worker
