"""The worker process's Celery signal handlers: identity and queues at setup, its node when ready,
fresh connections after fork, a clean goodbye at shutdown.

Connected when `worker.tasks` is imported, i.e. in every process that runs
Longshore's tasks (`longshore worker`, `celery -A longshore worker`, the embedded worker).
"""

from __future__ import annotations

import logging
import os

from celery import signals

from longshore.broker.routing import stack_of_queue, worker_queue, worker_queue_name
from longshore.domain.records import WorkerIdentity
from longshore.service.runtime import get_runtime
from longshore.worker import task_events
from longshore.worker.identity import SPARE_POOL_SLOTS, identity, metrics_port, served_stacks, set_identity
from longshore.worker.node import current_node, start_node

log = logging.getLogger(__name__)


@signals.celeryd_after_setup.connect
def set_up_queues(sender: str, instance, **_kwargs) -> None:
    """The worker consumes control and its own queue; its stacks' queues are for its admission thread."""
    runtime = get_runtime()
    queues = instance.app.amqp.queues
    named_stacks = sorted({s for name in list(queues.consume_from) if (s := stack_of_queue(name))})
    for name in [n for n in list(queues.consume_from) if stack_of_queue(n)]:
        queues.deselect(name)
    try:
        me = identity()
    except RuntimeError:  # started as `celery -A longshore worker -Q …`: take its name and concurrency
        for stack in named_stacks:
            runtime.manifest.get(stack)
        slots = max((instance.concurrency or 1) - SPARE_POOL_SLOTS, 1)
        me = WorkerIdentity(name=sender, engine_id=runtime.engine.engine_id(), slots=slots,
                            host=runtime.settings.worker.hostname)
        set_identity(me, named_stacks)
    expires = runtime.settings.janitor.worker_queue_expires_seconds
    queues.select_add(worker_queue(me.name, expires_seconds=expires))


@signals.worker_ready.connect
def start_worker_node(sender, **_kwargs) -> None:
    """Refuse a duplicate name, then start the heartbeat, the watcher, admission, following whether a monitor
    asks for task events, and metrics."""
    runtime = get_runtime()
    me = identity()
    consumers = runtime.publisher.consumers([me.name])
    if consumers and consumers.get(me.name, 0) > 1:
        log.critical("another worker is already consuming %s: each worker needs a name of its own (--name); "
                     "stopping", worker_queue_name(me.name))
        os.kill(os.getpid(), 15)
        return
    start_node(runtime, me, served_stacks())
    task_events.follow(sender)
    serve_metrics_if_asked()


@signals.worker_process_init.connect
def fresh_connections_in_child(**_kwargs) -> None:
    """A prefork child must not share the parent's database or Docker sockets; it runs one step at a time."""
    runtime = get_runtime()
    runtime.store.engine.dispose(close=False)
    runtime.reconnect_store(pool_size=1, max_overflow=2)
    runtime.reset_engine()


@signals.worker_shutdown.connect
def say_goodbye(**_kwargs) -> None:
    """Stop taking work; a worker that owns nothing open forgets itself."""
    node = current_node()
    if node is not None:
        node.stop()


@signals.worker_process_shutdown.connect
def forget_dead_child(pid: int, **_kwargs) -> None:
    """prometheus-client's multiprocess mode: a finished child's live gauges go with it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def serve_metrics_if_asked() -> None:
    """Start this worker's metrics server, if asked for one, with every series at zero."""
    from longshore.observability import metrics

    port = metrics_port()
    node = current_node()
    if not port or node is None:
        return
    metrics.prime(served_stacks())
    runtime, name = get_runtime(), node.identity.name
    metrics.serve_worker_metrics(port, runtime.settings.worker.metrics_addr, nodename=name,
                                 slots=node.identity.slots, running=lambda: runtime.store.attempts.running(name),
                                 holding=lambda: runtime.store.attempts.holding(name))
    log.info("serving metrics on port %s", port)
