"""Publishing by task name: what the service layer's `Publisher` port is, on Celery."""

from __future__ import annotations

from celery import Celery

from longshore.broker.routing import STEP_TASKS, SWEEP_TASK, worker_queue
from longshore.domain.stacks import stack_queue
from longshore.domain.steps import Step


class CeleryPublisher:
    """Sends lifecycle messages through a Celery app, by task name (no task import needed)."""

    def __init__(self, app: Celery, *, worker_queue_expires_seconds: float):
        self.app = app
        self._expires_seconds = worker_queue_expires_seconds

    def publish_pull(self, job_id: str, attempt: int, stack: str, *, countdown: float = 0) -> None:
        """Put an attempt's first step on its stack's queue (after `countdown` seconds)."""
        self.app.send_task(STEP_TASKS[Step.PULL], (job_id, attempt), queue=stack_queue(stack),
                           countdown=countdown or None)

    def send_step(self, step: Step, job_id: str, attempt: int, nodename: str) -> None:
        """Send an attempt's next step to the queue of the worker that pulled it."""
        self.app.send_task(STEP_TASKS[step], (job_id, attempt), queue=self._worker_queue(nodename))

    def send_sweep(self, nodename: str, *, expires_seconds: float) -> None:
        """Ask worker `nodename` to sweep its engine (dropped if not taken within `expires_seconds`)."""
        self.app.send_task(SWEEP_TASK, queue=self._worker_queue(nodename), expires=expires_seconds)

    def _worker_queue(self, nodename: str):
        return worker_queue(nodename, expires_seconds=self._expires_seconds)
