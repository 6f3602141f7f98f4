"""Queue names and declarations, and the task names on the wire.

One queue per stack, one per worker, one for control. A job's pull runs from its
stack's queue on any worker serving that stack; the rest of that attempt (create,
start, wait, reap) is sent to the queue of the worker that pulled, so it runs
against the same Docker engine. Task names and their arguments are a wire schema:
they never change under running workers.
"""

from __future__ import annotations

from kombu import Exchange, Queue

from longshore.domain.stacks import stack_queue
from longshore.domain.steps import Step

#: Where `longshore.submit` (the Celery-native entry point) waits; every worker serves it.
CONTROL_QUEUE = "longshore.control"

#: The lifecycle's tasks, each called with (job_id, attempt).
STEP_TASKS = {
    Step.PULL: "longshore.pull_image",
    Step.CREATE: "longshore.create_container",
    Step.START: "longshore.start_container",
    Step.WAIT: "longshore.wait_container",
    Step.KILL: "longshore.kill_container",
    Step.REAP: "longshore.reap_container",
}
SUBMIT_TASK = "longshore.submit"
JANITOR_TASK = "longshore.janitor"
SWEEP_TASK = "longshore.sweep_engine"

default_exchange = Exchange("", type="direct")


def durable_queue(name: str, **arguments: int) -> Queue:
    """A durable queue on the default exchange, routed by its own name."""
    return Queue(name, exchange=default_exchange, routing_key=name, durable=True,
                 queue_arguments=arguments or None)


def worker_queue_name(nodename: str) -> str:
    """The queue holding the post-pull steps of attempts that worker `nodename` pulled."""
    return f"longshore.worker.{nodename}"


def worker_queue(nodename: str, *, expires_seconds: float) -> Queue:
    """The declaration of a worker's own queue. A queue nobody consumes for `expires_seconds`
    is dropped by RabbitMQ; the janitor requeues a vanished worker's attempts long before that."""
    return durable_queue(worker_queue_name(nodename), **{"x-expires": int(expires_seconds * 1000)})


def declared_queues(stack_names: list[str]) -> list[Queue]:
    """The queues every client and worker declares: control and one per stack."""
    return [durable_queue(CONTROL_QUEUE)] + [durable_queue(stack_queue(name)) for name in stack_names]


def worker_queues(stack_names: list[str]) -> list[str]:
    """The shared queues a worker serving `stack_names` consumes (its own queue is added at setup)."""
    return [CONTROL_QUEUE] + [stack_queue(name) for name in stack_names]
