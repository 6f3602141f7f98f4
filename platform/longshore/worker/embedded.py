"""The embedded default: a real Celery worker in a thread of this process, over an in-memory broker.

Several `longshore` processes may share one embedded store (SQLite) and engine. Each
holds a lock file for its lifetime, so when one dies the next one to look knows at
once: it adopts the dead one's started attempts (their containers run on, watched by
it) and runs its queued jobs, which were only in the dead process's memory.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

from celery.worker import WorkController

from longshore.broker.routing import CONTROL_QUEUE, worker_queue
from longshore.domain.records import WorkerIdentity
from longshore.service.liveness import EMBEDDED_PREFIX, hold_lifetime_lock
from longshore.service.runtime import get_runtime
from longshore.service.supervise import housekeeping
from longshore.worker.identity import SPARE_POOL_SLOTS, set_identity
from longshore.worker.node import start_node
from longshore.worker.process import engine_id
from longshore.worker.tasks import app

log = logging.getLogger(__name__)

_embedded_lock = threading.Lock()
_embedded: list[WorkController] = []


def ensure_embedded_worker() -> WorkController:
    """Start, once per process, a real Celery worker in a thread serving every stack."""
    with _embedded_lock:
        if _embedded:
            return _embedded[0]
        runtime = get_runtime()
        settings = runtime.settings
        stacks = runtime.manifest.names()
        me = WorkerIdentity(name=f"{EMBEDDED_PREFIX}{os.getpid()}@{settings.worker.hostname}",
                            engine_id=engine_id(runtime), slots=settings.worker.embedded_slots,
                            host=settings.worker.hostname)
        lifetime_lock = hold_lifetime_lock(settings.home, me.name)
        set_identity(me, stacks)
        runtime.embedded_name = me.name
        worker = WorkController(
            app=app,
            hostname=me.name,
            queues=[CONTROL_QUEUE],
            pool="threads",
            concurrency=me.slots + SPARE_POOL_SLOTS,
            loglevel=logging.WARNING,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        app.amqp.queues.select_add(worker_queue(me.name, expires_seconds=settings.janitor.worker_queue_expires_seconds))
        threading.Thread(target=worker.start, name="longshore-embedded-worker", daemon=True).start()
        node = start_node(runtime, me, stacks)
        housekeeping(runtime, me, stacks=stacks)  # what an embedded process that ended left: now, not next beat
        atexit.register(lifetime_lock.close)  # last (atexit runs backwards): alive until its node stopped
        atexit.register(node.stop)
        _embedded.append(worker)
        return worker
