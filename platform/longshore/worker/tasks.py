"""Longshore's Celery tasks: thin adapters from a message to a service function.

Every lifecycle step task goes through `LifecycleTask.run_step`, the one wrapper
that does the cross-cutting work: it counts redeliveries (and gives up past the
cap), times the step and carries out the step's `Next` (running a create or start that
follows at once, `service.carry`); the task class retries
transient failures with the step's policy, counts each retry, and fails the job
when the retries run out.
What a step does is `service.lifecycle`.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from celery import Task

from longshore.broker.publish import PUBLISH_ERRORS
from longshore.broker.routing import JANITOR_TASK, SCHEDULE_TASK, STEP_TASKS, SUBMIT_TASK, SWEEP_TASK
from longshore.domain.steps import Step
from longshore.errors import TransientDockerFailure
from longshore.observability.metrics import PrometheusEvents
from longshore.service import carry
from longshore.service import janitor as janitor_service
from longshore.service import lifecycle
from longshore.service.lifecycle import Next, StepContext
from longshore.service.runtime import get_runtime
from longshore.service.scheduling import schedule_from_message
from longshore.service.submit import submit_from_message
from longshore.store import STORE_ERRORS, TRANSIENT_ERRORS
from longshore.worker import signals  # noqa: F401  (connects the worker's signal handlers)
from longshore.worker import task_events
from longshore.worker.identity import identity

log = logging.getLogger(__name__)

runtime = get_runtime()
runtime.events = PrometheusEvents()
app = runtime.publisher.app

StepFunction = Callable[[StepContext, str, int], Next]
#: Failures of the engine, the store or the broker: never the job's fault.
INFRASTRUCTURE_ERRORS = (TransientDockerFailure, *STORE_ERRORS, *PUBLISH_ERRORS)


def retry_options(step: Step) -> dict[str, Any]:
    """Celery's retry options for a step, from its policy."""
    policy = runtime.settings.policies.step(step)
    return {"max_retries": policy.max_retries, "retry_backoff": policy.backoff_seconds,
            "retry_backoff_max": policy.backoff_max_seconds}


class LifecycleTask(Task):
    """Base of the step tasks: the one wrapper around every step (see the module's docstring)."""

    # A store outage (PostgreSQL restarting) is as transient as an engine hiccup.
    autoretry_for = (TransientDockerFailure, *TRANSIENT_ERRORS)
    retry_jitter = True
    step: Step

    def context(self) -> StepContext:
        """The step's context; `redelivered` when this message came back because its worker died."""
        return StepContext(get_runtime(), identity(), redelivered=self._redelivered())

    def run_step(self, step: StepFunction, job_id: str, attempt: int) -> None:
        """Run one step and carry out its `Next`; inside the task body, so transient failures retry."""
        started = time.perf_counter()
        context = self.context()
        after = None
        if self._redelivered() and self.step in lifecycle.REDELIVERY_CAPPED:
            after = lifecycle.check_redelivery(context, self.step, job_id, attempt)
        if after is None:
            after = step(context, job_id, attempt)
        # While a monitor lists every step (task events on), each one travels as its own message
        following = carry.carry_out(context, self.step, job_id, attempt, after, time.perf_counter() - started,
                                    chain=not task_events.asked())
        carry.run_here(context, following, job_id, attempt, job=after.job)

    def on_retry(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        """Count each platform retry on the attempt, where users and operators can see it."""
        rt = get_runtime()
        rt.events.step_retried(self.step)
        try:
            rt.store.attempts.count_infra_retry(args[0], args[1])
        except STORE_ERRORS:
            log.warning("could not count a retry of %s attempt %s (store unavailable)", args[0], args[1])

    def on_failure(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        """The step gave up. The infrastructure's fault (retries spent during an outage): the attempt
        stays as it is and its worker's watcher sends the step again once things are back. Anything
        else: the job fails with the reason in words."""
        job_id, attempt = args[0], args[1]
        if isinstance(exc, INFRASTRUCTURE_ERRORS) or self.step is Step.REAP:
            log.warning("%s of %s attempt %s gave up for now (%s); it is sent again when things are back",
                        self.step.value, job_id, attempt, exc)
            if self.step is Step.PULL:
                lifecycle.hand_back(self.context(), job_id, attempt)
            return
        carry.carry_out(self.context(), self.step, job_id, attempt,
                        lifecycle.give_up(self.step, self.request.retries, exc), 0)

    def _redelivered(self) -> bool:
        return bool((self.request.delivery_info or {}).get("redelivered"))


def step_task(step: Step):
    """Register a step adapter under its wire name, with its retry policy."""
    return app.task(bind=True, base=LifecycleTask, name=STEP_TASKS[step], step=step, **retry_options(step))


@step_task(Step.PULL)
def pull_image(self: LifecycleTask, job_id: str, attempt: int) -> None:
    """Make the job's image present on this worker's engine (see `service.lifecycle.pull`)."""
    self.run_step(lifecycle.pull, job_id, attempt)


@step_task(Step.CREATE)
def create_container(self: LifecycleTask, job_id: str, attempt: int) -> None:
    """Create the attempt's container (see `service.lifecycle.create`)."""
    self.run_step(lifecycle.create, job_id, attempt)


@step_task(Step.START)
def start_container(self: LifecycleTask, job_id: str, attempt: int) -> None:
    """Start the container once (see `service.lifecycle.start`)."""
    self.run_step(lifecycle.start, job_id, attempt)


@step_task(Step.WAIT)
def wait_container(self: LifecycleTask, job_id: str, attempt: int) -> None:
    """Wait for the container and conclude the attempt (see `service.lifecycle.wait`)."""
    self.run_step(lifecycle.wait, job_id, attempt)


@step_task(Step.KILL)
def kill_container(self: LifecycleTask, job_id: str, attempt: int) -> None:
    """Stop a cancelled job's container (see `service.lifecycle.kill`)."""
    self.run_step(lifecycle.kill, job_id, attempt)


@step_task(Step.REAP)
def reap_container(self: LifecycleTask, job_id: str, attempt: int) -> None:
    """Remove the attempt's container (see `service.lifecycle.reap`)."""
    self.run_step(lifecycle.reap, job_id, attempt)


@app.task(name=JANITOR_TASK, ignore_result=True)
def janitor() -> str:
    """Periodic (Celery beat): check the store, then ask every live worker to sweep its engine."""
    report = janitor_service.janitor_tick(get_runtime())
    log.info("janitor: %s", report.summary())
    return report.summary()


@app.task(name=SWEEP_TASK, ignore_result=True)
def sweep_engine() -> str:
    """Sent to each worker's own queue: clean that worker's Docker engine."""
    report = janitor_service.sweep_own_engine(get_runtime())
    log.info("engine sweep: %s", report.summary())
    return report.summary()


@app.task(bind=True, name=SUBMIT_TASK, acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=True,
          retry_jitter=True, max_retries=runtime.settings.retry.step_retries)
def submit_job(self: Task, *args: Any, **fields: Any) -> str:
    """Celery-native entry point: the same fields as `longshore.submit`, as keyword arguments; the job id is
    this message's id. Any signature binds, so a bad message reaches the validator and is recorded as
    rejected, never dropped by Celery's own argument check."""
    return submit_from_message(get_runtime(), self.request.id, args, fields)


@app.task(bind=True, name=SCHEDULE_TASK, acks_late=True, autoretry_for=TRANSIENT_ERRORS, retry_backoff=True,
          retry_jitter=True, max_retries=runtime.settings.retry.step_retries)
def create_schedule(self: Task, *args: Any, **fields: Any) -> str:
    """Celery-native schedules: the fields of `longshore.schedule` as keyword arguments; the schedule's id
    is this message's id. A bad message is stored as an ended schedule whose `last_error` says why."""
    return schedule_from_message(get_runtime(), self.request.id, args, fields)
