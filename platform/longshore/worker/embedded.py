"""The embedded default: a real Celery worker in a thread of this process, over an in-memory broker."""

from __future__ import annotations

import logging
import os
import threading

from celery.worker import WorkController

from longshore.broker.routing import worker_queue
from longshore.service.runtime import get_runtime
from longshore.worker.heartbeat import start_heartbeat
from longshore.worker.identity import set_local_worker
from longshore.worker.process import served_queues
from longshore.worker.tasks import app

_embedded_lock = threading.Lock()
_embedded: list[WorkController] = []


def ensure_embedded_worker() -> WorkController:
    """Start, once per process, a real Celery worker in a thread serving every stack."""
    with _embedded_lock:
        if _embedded:
            return _embedded[0]
        runtime = get_runtime()
        stacks = runtime.manifest.names()
        slots = runtime.settings.worker.embedded_slots
        nodename = f"embedded-{os.getpid()}@{runtime.settings.worker.hostname}"
        queues = served_queues(stacks)
        worker = WorkController(
            app=app,
            hostname=nodename,
            queues=queues,
            pool="threads",
            concurrency=slots,
            loglevel=logging.WARNING,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        set_local_worker(nodename)
        expires = runtime.settings.janitor.worker_queue_expires_seconds
        app.amqp.queues.select_add(worker_queue(nodename, expires_seconds=expires))
        threading.Thread(target=worker.start, name="longshore-embedded-worker", daemon=True).start()
        start_heartbeat(runtime, nodename, queues, slots=slots, sweep_at_start=True)
        _embedded.append(worker)
        return worker
