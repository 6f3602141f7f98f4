"""Everything a worker process runs beside Celery's consumer: heartbeat, watcher, admission.

Started by the worker's `worker_ready` signal (`longshore worker`, `celery -A longshore
worker`) or by the embedded worker; one per process.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass

from longshore.broker.routing import worker_queue
from longshore.domain.records import WorkerIdentity
from longshore.service import carry
from longshore.service.held_seconds import HeldSeconds
from longshore.service.janitor import sweep_engine
from longshore.service.runtime import Runtime
from longshore.worker.admission import Admission, Capacity
from longshore.worker.heartbeat import Heartbeat
from longshore.worker.scheduler import Scheduler
from longshore.worker.watcher import Watcher

log = logging.getLogger(__name__)

#: How long a stopping worker lets the pulls it claimed reach their start (their containers then run on).
STOP_PULLS_SECONDS = 30


@dataclass
class Node:
    """A running worker's threads."""

    identity: WorkerIdentity
    heartbeat: Heartbeat
    capacity: Capacity
    watcher: Watcher
    admission: Admission
    scheduler: Scheduler

    def stop(self) -> None:
        """Stop taking work, remove what ended jobs left on the engine (their reaps may not run now),
        and forget this worker if it owns nothing open."""
        self.admission.stop(timeout=STOP_PULLS_SECONDS)
        self.watcher.stop()
        self.scheduler.stop()
        # the waits of the jobs still running will run elsewhere (their adopter's, this worker's next life)
        carry.write_held(self.watcher.context)
        try:
            sweep_engine(self.watcher.rt, grace_seconds=0)
        except Exception:  # the engine or the store is away: a later sweep removes them
            log.warning("could not sweep the engine at shutdown", exc_info=True)
        self.heartbeat.stop()


_nodes: list[Node] = []


def start_node(rt: Runtime, me: WorkerIdentity, stacks: list[str]) -> Node:
    """Register the worker and start its threads (once per process)."""
    if _nodes:
        return _nodes[0]
    capacity = Capacity(me.slots)
    held_seconds = HeldSeconds()  # the starts admission's pulls run, for the waits the watcher runs: both here
    heartbeat = Heartbeat(rt, me, stacks, on_duplicate=_stop_this_process).start()
    watcher = Watcher(rt, me, capacity, stacks, held_seconds=held_seconds).start()
    own_queue = worker_queue(me.name, expires_seconds=rt.settings.janitor.worker_queue_expires_seconds)
    admission = Admission(rt, me, own_queue, stacks, capacity, on_admit=watcher.wake, held_seconds=held_seconds)
    admission.start()
    scheduler = Scheduler(rt, name=me.name).start()
    node = Node(me, heartbeat, capacity, watcher, admission, scheduler)
    _nodes.append(node)
    log.info("worker %s on engine %s: %s slots for %s", me.name, me.engine_id, me.slots, ", ".join(stacks) or "-")
    return node


def current_node() -> Node | None:
    """This process's node, if one was started."""
    return _nodes[0] if _nodes else None


def _stop_this_process(why: str) -> None:
    log.critical("%s; stopping", why)
    os.kill(os.getpid(), signal.SIGTERM)  # a warm shutdown: steps in progress finish
