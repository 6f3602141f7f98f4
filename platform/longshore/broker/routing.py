"""Queue names and declarations, and the task names on the wire.

One queue per stack, one per worker, one for control. A job's pull waits in its
stack's queue until a worker serving that stack has a free slot and takes it; the
rest of that attempt (create, start, wait, reap) runs from the queue of the worker
that took it, so it uses the same Docker engine.

Both are wire schemas that outlive a deploy:
- queue names carry a version (`stack.busybox.v2`): a queue's arguments cannot change
  once declared, so new arguments mean a new version, and workers drain the
  previous version's queues (version 0 had no suffix) until they are empty;
- task names and their positional arguments never change; a new argument must be a
  keyword with a default.
"""

from __future__ import annotations

import re

from kombu import Exchange, Queue

from longshore.domain.steps import Step

#: The version of the stack queues' names and arguments (2: priority queues).
STACK_QUEUE_VERSION = 2
#: The version of the workers' own queues (names and arguments).
WORKER_QUEUE_VERSION = 1
#: Stack queues are priority queues of IronWorker's priorities 0-2: of the jobs waiting, the highest goes first.
MAX_PRIORITY = 2
#: Where `longshore.submit` (the Celery-native entry point) waits; every worker serves it. It never
#: takes arguments, so its name is unversioned: Celery-native senders name it.
CONTROL_QUEUE = "longshore.control"
_STACK_QUEUE = re.compile(r"^stack\.(?P<stack>[a-z0-9][a-z0-9_-]*)(\.v\d+)?$")

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
SCHEDULE_TASK = "longshore.schedule"
JANITOR_TASK = "longshore.janitor"
SWEEP_TASK = "longshore.sweep_engine"

default_exchange = Exchange("", type="direct")


def durable_queue(name: str, **arguments: int) -> Queue:
    """A durable queue on the default exchange, routed by its own name."""
    return Queue(name, exchange=default_exchange, routing_key=name, durable=True,
                 queue_arguments=arguments or None)


def stack_queue(stack: str) -> str:
    """The queue where jobs of `stack` wait for a worker."""
    return f"stack.{stack}.v{STACK_QUEUE_VERSION}"


def stack_queue_declaration(stack: str) -> Queue:
    """The declaration of `stack`'s queue (every publisher and consumer must declare it alike)."""
    return durable_queue(stack_queue(stack), **{"x-max-priority": MAX_PRIORITY})


def legacy_stack_queues(stack: str) -> list[str]:
    """Earlier versions' queues of `stack`, which workers drain: version 0 had no suffix, version 1 had no
    priorities."""
    return [f"stack.{stack}"] + [f"stack.{stack}.v{v}" for v in range(1, STACK_QUEUE_VERSION)]


def stack_of_queue(name: str) -> str | None:
    """The stack a queue name (of any version) belongs to, None if it is not a stack queue."""
    match = _STACK_QUEUE.match(name)
    return match.group("stack") if match else None


def worker_queue_name(nodename: str) -> str:
    """The queue holding the steps of the attempts worker `nodename` owns."""
    return f"longshore.worker.{nodename}.v{WORKER_QUEUE_VERSION}"


def worker_queue(nodename: str, *, expires_seconds: float) -> Queue:
    """The declaration of a worker's own queue. A queue nobody consumes for `expires_seconds`
    is dropped by RabbitMQ; the janitor requeues a vanished worker's attempts long before that."""
    return durable_queue(worker_queue_name(nodename), **{"x-expires": int(expires_seconds * 1000)})


def declared_queues(stack_names: list[str]) -> list[Queue]:
    """The queues every client and worker declares: control and one per stack."""
    return [durable_queue(CONTROL_QUEUE)] + stack_queues(stack_names)


def stack_queues(stack_names: list[str]) -> list[Queue]:
    """The declarations of the current stack queues of `stack_names`."""
    return [stack_queue_declaration(name) for name in stack_names]
