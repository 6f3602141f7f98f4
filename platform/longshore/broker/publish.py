"""Publishing by task name, and asking the broker who consumes what: the service's `Publisher` port on Celery."""

from __future__ import annotations

import logging

import amqp.exceptions
import kombu.exceptions
from celery import Celery

from longshore.broker.routing import STEP_TASKS, SWEEP_TASK, stack_queue_declaration, worker_queue, worker_queue_name
from longshore.domain.steps import Step

log = logging.getLogger(__name__)

#: What a publish raises when the broker cannot be reached (after kombu's own retries).
PUBLISH_ERRORS: tuple[type[Exception], ...] = (kombu.exceptions.OperationalError, ConnectionError, OSError,
                                               amqp.exceptions.ConnectionError)


class CeleryPublisher:
    """Sends lifecycle messages through a Celery app, by task name (no task import needed)."""

    def __init__(self, app: Celery, *, worker_queue_expires_seconds: float):
        self.app = app
        self._expires_seconds = worker_queue_expires_seconds

    def publish_pull(self, job_id: str, attempt: int, stack: str, *, priority: int = 0) -> None:
        """Put an attempt's first step on its stack's queue, with the job's priority (0-2)."""
        self.app.send_task(STEP_TASKS[Step.PULL], (job_id, attempt), queue=stack_queue_declaration(stack),
                           priority=priority)

    def send_step(self, step: Step, job_id: str, attempt: int, nodename: str) -> None:
        """Send an attempt's next step to the queue of the worker that owns it."""
        self.app.send_task(STEP_TASKS[step], (job_id, attempt), queue=self.worker_queue(nodename))

    def send_sweep(self, nodename: str, *, expires_seconds: float) -> None:
        """Ask worker `nodename` to sweep its engine (dropped if not taken within `expires_seconds`)."""
        self.app.send_task(SWEEP_TASK, queue=self.worker_queue(nodename), expires=expires_seconds)

    def worker_queue(self, nodename: str):
        """The declaration of worker `nodename`'s own queue."""
        return worker_queue(nodename, expires_seconds=self._expires_seconds)

    def consumers(self, nodenames: list[str]) -> dict[str, int] | None:
        """How many consumers each worker's own queue has (0: nobody is connected as that worker);
        None when the broker cannot tell (it is away, or it is the embedded in-memory one)."""
        if self.app.conf.broker_url.startswith("memory://"):
            return None
        counts = {}
        try:
            with self.app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=3)
                for name in nodenames:
                    channel = connection.channel()
                    try:
                        _, _, counts[name] = channel.queue_declare(worker_queue_name(name), passive=True)
                    except connection.channel_errors:  # no such queue: nobody consumes it
                        counts[name] = 0
                    finally:
                        _close_quietly(channel)
        except PUBLISH_ERRORS:
            log.info("cannot ask the broker who is connected", exc_info=True)
            return None
        return counts


def _close_quietly(channel) -> None:
    try:
        channel.close()
    except Exception:  # a channel the broker already closed (404 on the passive declare)
        pass
