"""What the service layer needs from the outside, as small interfaces: publishing, and event hooks."""

from __future__ import annotations

from typing import Protocol

from longshore.domain.records import Finished, Job
from longshore.domain.steps import Step


class Publisher(Protocol):
    """Puts lifecycle messages on the broker and asks it who is connected (`broker.publish.CeleryPublisher`)."""

    def publish_pull(self, job_id: str, attempt: int, stack: str, *, priority: int = 0) -> None:
        """Put an attempt's first step on its stack's queue, with the job's priority (0-2)."""

    def send_step(self, step: Step, job_id: str, attempt: int, nodename: str) -> None:
        """Send an attempt's next step to the queue of the worker that owns it."""

    def send_sweep(self, nodename: str, *, expires_seconds: float) -> None:
        """Ask worker `nodename` to sweep its engine."""

    def consumers(self, nodenames: list[str]) -> dict[str, int] | None:
        """Consumers of each worker's own queue; None when the broker cannot tell."""


class LifecycleEvents:
    """Hooks the service calls as jobs move. They do nothing here; a worker plugs in its metrics
    (`observability.metrics.PrometheusEvents`), as dramatiq's middleware hooks do."""

    def job_started(self, job: Job) -> None:
        """A job's container is being started (the job as it was when its attempt was created)."""

    def job_finished(self, finished: Finished) -> None:
        """A job reached its final status."""

    def step_done(self, stack: str, step: Step, seconds: float) -> None:
        """A lifecycle step did its work for an attempt, in `seconds`."""

    def step_retried(self, step: Step) -> None:
        """The platform retries a step after a transient failure."""

    def container_removed(self, reason: str) -> None:
        """The janitor removed a container the happy path left behind."""

    def docker_call(self, call: str, outcome: str, seconds: float) -> None:
        """An engine call ended: outcome "ok" or the kind of its failure."""
