"""Queue names and declarations: one queue per stack, one per worker, one for control.

A job's pull runs from its stack's queue on any worker serving that stack; the
rest of that attempt (create, start, wait, reap) is sent to the queue of the
worker that pulled, so it runs against the same Docker engine.
"""

from __future__ import annotations

from kombu import Exchange, Queue

from longshore.stacks import stack_queue

#: Where `longshore.submit` (the Celery-native entry point) waits; every worker serves it.
CONTROL_QUEUE = "longshore.control"
#: A worker queue nobody consumes for a day is dropped by RabbitMQ; the janitor
#: requeues the attempts of a worker that went away long before that.
WORKER_QUEUE_EXPIRES_MILLISECONDS = 24 * 3600 * 1000

default_exchange = Exchange("", type="direct")


def durable_queue(name: str, **arguments: int) -> Queue:
    """A durable queue on the default exchange, routed by its own name."""
    return Queue(name, exchange=default_exchange, routing_key=name, durable=True,
                 queue_arguments=arguments or None)


def worker_queue_name(nodename: str) -> str:
    """The queue holding the post-pull steps of attempts that worker `nodename` pulled."""
    return f"longshore.worker.{nodename}"


def worker_queue(nodename: str) -> Queue:
    """The declaration of a worker's own queue."""
    return durable_queue(worker_queue_name(nodename), **{"x-expires": WORKER_QUEUE_EXPIRES_MILLISECONDS})


def declared_queues(stack_names: list[str]) -> list[Queue]:
    """The queues every client and worker declares: control and one per stack."""
    return [durable_queue(CONTROL_QUEUE)] + [durable_queue(stack_queue(name)) for name in stack_names]


_local_worker: list[str] = []


def set_local_worker(nodename: str) -> None:
    """Remember this process's worker node name (inherited by prefork children)."""
    _local_worker[:] = [nodename]


def local_worker() -> str:
    """The node name of the worker running in this process."""
    if not _local_worker:
        raise RuntimeError("no Longshore worker has been set up in this process")
    return _local_worker[0]
