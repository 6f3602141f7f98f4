"""The worker process's Celery signal handlers: its own queue, heartbeat, metrics, fresh connections after fork.

Connected when `worker.tasks` is imported, i.e. in every process that runs
Longshore's tasks (`longshore worker`, `celery -A longshore worker`, the embedded worker).
"""

from __future__ import annotations

import logging
import os

from celery import signals

from longshore.broker.routing import worker_queue
from longshore.service.runtime import get_runtime
from longshore.worker.heartbeat import stacks_of, start_heartbeat
from longshore.worker.identity import local_worker, metrics_port, set_local_worker

log = logging.getLogger(__name__)


@signals.celeryd_after_setup.connect
def consume_own_queue(sender: str, instance, **_kwargs) -> None:
    """Every worker also consumes its own queue, for the later steps of what it pulled."""
    set_local_worker(sender)
    expires = get_runtime().settings.janitor.worker_queue_expires_seconds
    instance.app.amqp.queues.select_add(worker_queue(sender, expires_seconds=expires))


@signals.worker_ready.connect
def start_heartbeat_and_metrics(sender, **_kwargs) -> None:
    """Heart-beat into the store, sweep this engine once at start, and serve metrics if asked."""
    queues = [q.name for q in sender.app.amqp.queues.consume_from.values()]
    slots = sender.pool.limit if sender.pool else 1
    serve_metrics_if_asked(queues, slots=slots)
    start_heartbeat(get_runtime(), local_worker(), queues, slots=slots, sweep_at_start=True)


@signals.worker_process_init.connect
def fresh_connections_in_child(**_kwargs) -> None:
    """A prefork child must not share the parent's database or Docker sockets."""
    runtime = get_runtime()
    runtime.store.engine.dispose(close=False)
    runtime.reset_engine()


@signals.worker_process_shutdown.connect
def forget_dead_child(pid: int, **_kwargs) -> None:
    """prometheus-client's multiprocess mode: a finished child's live gauges go with it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def serve_metrics_if_asked(queues: list[str], *, slots: int) -> None:
    """Start this worker's metrics server, if asked for one, with every series at zero."""
    from longshore.observability import metrics

    port = metrics_port()
    if not port:
        return
    runtime = get_runtime()
    nodename = local_worker()
    metrics.prime(stacks_of(queues))
    metrics.serve_worker_metrics(port, runtime.settings.worker.metrics_addr, nodename=nodename, slots=slots,
                                 running=lambda: runtime.engine.running_containers_of(nodename))
    log.info("serving metrics on port %s", port)
