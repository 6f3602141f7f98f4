"""A job's life in one file: pull → create → start → wait → reap, one Celery task per step.

Each step receives ids (job id, attempt number), re-reads the job from the store,
and does nothing if that attempt is no longer current or the job has ended: a
duplicate or late message is harmless. Steps are idempotent under redelivery:
the container's name is derived from the attempt, so a second `create` adopts
the first container instead of making another.

The pull runs on any worker serving the job's stack; the later steps are sent to
the queue of the worker that pulled, so they use the same Docker engine. The job
is finished as soon as its container exited and its output was read; removing
the container (reap) is a separate message, off the job's critical path.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import sqlalchemy as sa
from celery import Task

from longshore import metrics
from longshore.celery import app
from longshore.engine import (
    LABEL_ATTEMPT, LABEL_DEADLINE, LABEL_INSTALLATION, LABEL_JOB, LABEL_WORKER, PAYLOAD_PATH, RESULT_PATH, TASK_DIR,
    ContainerSpec, DockerFailure, ExitReport, TransientDockerFailure,
)
from longshore.routing import local_worker, worker_queue
from longshore.runtime import get_runtime
from longshore.stacks import PullPolicy, stack_queue
from longshore.status import JobStatus
from longshore.store import Job

log = logging.getLogger(__name__)

#: Celery retry policy of each step for transient engine (and store) failures:
#: exponential backoff with full jitter, capped at 30 s a wait, so ten retries ride
#: out an engine restart of a minute or two. Permanent failures are never retried.
RETRY_POLICIES: dict[str, dict[str, Any]] = {
    "pull": {"max_retries": 10, "retry_backoff": 1, "retry_backoff_max": 30},
    "create": {"max_retries": 10, "retry_backoff": 1, "retry_backoff_max": 30},
    "start": {"max_retries": 10, "retry_backoff": 1, "retry_backoff_max": 30},
    "wait": {"max_retries": 10, "retry_backoff": 1, "retry_backoff_max": 30},
    "reap": {"max_retries": 10, "retry_backoff": 2, "retry_backoff_max": 120},
}


#: Exit codes of a container stopped by a signal (SIGKILL, SIGTERM) or by the engine itself.
KILLED_BY_ENGINE_EXIT_CODES = frozenset({137, 143, 255})

#: A step redelivered more often than this (its worker keeps dying) fails the job
#: instead of killing workers forever.
MAX_REDELIVERIES = 3


def container_name(job_id: str, attempt: int) -> str:
    """The one name an attempt's container can have: what makes create idempotent."""
    return f"longshore-{job_id}-{attempt}"


class LifecycleStep(Task):
    """Base of the step tasks: transient engine failures retry; exhausted retries fail the job."""

    # A store outage (PostgreSQL restarting) is as transient as an engine hiccup.
    autoretry_for = (TransientDockerFailure, sa.exc.OperationalError, sa.exc.InterfaceError)
    retry_jitter = True
    step = ""

    def __call__(self, job_id: str, attempt: int, *args: Any, **kwargs: Any) -> Any:
        if _redelivered(self) and self.step != "reap":
            try:
                count = get_runtime().store.count_redelivery(job_id, attempt)
            except sa.exc.SQLAlchemyError:
                count = 0  # the store is down: the step itself will retry until it is back
            if count > MAX_REDELIVERIES:
                error = (f"the worker running this job was lost {count} times during its {self.step} step; "
                         "giving up rather than redelivering it forever")
                if _finish(job_id, attempt, JobStatus.FAILED, error=error):
                    _send(reap_container, job_id, attempt, local_worker())
                return None
        return super().__call__(job_id, attempt, *args, **kwargs)

    def on_retry(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        """Count each platform retry on the attempt, where users and operators can see it."""
        metrics.STEP_RETRIES.labels(self.step).inc()
        try:
            get_runtime().store.count_infra_retry(args[0], args[1])
        except sa.exc.SQLAlchemyError:
            log.warning("could not count a retry of %s attempt %s (store unavailable)", args[0], args[1])

    def on_failure(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        """The step gave up: the job fails with the reason in words, and its container is reaped."""
        job_id, attempt = args[0], args[1]
        if self.step == "reap":
            log.error("could not remove container of %s attempt %s: %s", job_id, attempt, exc)
            return
        error = f"the platform could not {self.step} the container after {self.request.retries} retries: {exc}"
        if _finish(job_id, attempt, JobStatus.FAILED, error=error):
            _send(reap_container, job_id, attempt, local_worker())


def _send(task: Task, job_id: str, attempt: int, nodename: str) -> None:
    """Send the attempt's next step to the queue of the worker that pulled it."""
    task.apply_async((job_id, attempt), queue=worker_queue(nodename))


def _current(job_id: str, attempt: int) -> Job | None:
    """The job if `attempt` is its current, unfinished attempt; None for a stale message."""
    job = get_runtime().store.get_job(job_id)
    if job.attempt != attempt or job.status.final:
        log.info("ignoring stale step for %s attempt %s (%s, attempt %s)", job_id, attempt, job.status.value, job.attempt)
        return None
    return job


def _finish(job_id: str, attempt: int, status: JobStatus, **fields: Any) -> bool:
    """Finish the job once (guarded in the store) and count it."""
    store = get_runtime().store
    if not store.finish(job_id, attempt, status, **fields):
        return False
    job = store.get_job(job_id)
    metrics.JOBS_FINISHED.labels(job.stack, status.value).inc()
    if job.started_at and job.finished_at:
        metrics.JOB_DURATION.labels(job.stack).observe(max(job.finished_at - job.started_at, 0))
    return True


def _record_step(job: Job, attempt: int, step: str, seconds: float, **fields: Any) -> None:
    """Store a step's duration on the attempt and observe it."""
    get_runtime().store.record_step(job.id, attempt, step, seconds, **fields)
    metrics.STEP_DURATION.labels(job.stack, step).observe(seconds)


def _fail(job_id: str, attempt: int, failure: DockerFailure, nodename: str) -> None:
    """A permanent failure: the job fails at once with the error in words, then is reaped."""
    _finish(job_id, attempt, JobStatus.FAILED, error=str(failure))
    _send(reap_container, job_id, attempt, nodename)


@app.task(bind=True, base=LifecycleStep, name="longshore.pull_image", step="pull", **RETRY_POLICIES["pull"])
def pull_image(self: LifecycleStep, job_id: str, attempt: int) -> None:
    """Make the job's image present on this worker's engine (pulling if missing or asked to)."""
    runtime = get_runtime()
    if not runtime.store.claim_attempt(job_id, attempt, worker=local_worker(), host=runtime.settings.hostname,
                                       reclaim=_redelivered(self) or self.request.retries > 0):
        return
    job = runtime.store.get_job(job_id)
    stack = runtime.manifest.get(job.stack)
    started = time.perf_counter()
    try:
        runtime.engine.ensure_image(job.image, always_pull=stack.pull is PullPolicy.ALWAYS)
    except TransientDockerFailure:
        raise
    except DockerFailure as failure:
        _finish(job_id, attempt, JobStatus.FAILED, error=str(failure))
        return
    _record_step(job, attempt, "pull", time.perf_counter() - started)
    _send(create_container, job_id, attempt, local_worker())


@app.task(bind=True, base=LifecycleStep, name="longshore.create_container", step="create", **RETRY_POLICIES["create"])
def create_container(self: LifecycleStep, job_id: str, attempt: int) -> None:
    """Create the attempt's container with its limits, payload and labels; check the limits held."""
    runtime = get_runtime()
    job = _current(job_id, attempt)
    if job is None:
        return
    stack = runtime.manifest.get(job.stack)
    name = container_name(job_id, attempt)
    spec = ContainerSpec(
        name=name,
        image=job.image,
        command=job.command,
        env={**job.env, "TASK_ID": job_id, "PAYLOAD_FILE": PAYLOAD_PATH, "TASK_DIR": TASK_DIR,
             "RESULT_FILE": RESULT_PATH},
        user=stack.user,
        memory_bytes=job.memory_bytes,
        cpus=job.cpus,
        labels={
            LABEL_JOB: job_id,
            LABEL_ATTEMPT: str(attempt),
            LABEL_WORKER: local_worker(),
            LABEL_DEADLINE: f"{time.time() + job.timeout_seconds:.0f}",
            LABEL_INSTALLATION: runtime.settings.installation,
        },
        payload=job.payload,
        output_limit_bytes=runtime.settings.output_limit_bytes,
    )
    started = time.perf_counter()
    try:
        container_id = runtime.engine.create(spec)
    except TransientDockerFailure:
        raise
    except DockerFailure as failure:
        _fail(job_id, attempt, failure, local_worker())
        return
    _record_step(job, attempt, "create", time.perf_counter() - started,
                              container_id=container_id, container_name=name)
    _send(start_container, job_id, attempt, local_worker())


@app.task(bind=True, base=LifecycleStep, name="longshore.start_container", step="start", **RETRY_POLICIES["start"])
def start_container(self: LifecycleStep, job_id: str, attempt: int) -> None:
    """Start the container once and mark the job running."""
    runtime = get_runtime()
    job = _current(job_id, attempt)
    name = container_name(job_id, attempt)
    if job is None:
        _send(reap_container, job_id, attempt, local_worker())
        return
    started = time.perf_counter()
    try:
        # A redelivered start must not restart a container that already ran.
        seen_before = job.status is JobStatus.RUNNING or _redelivered(self) or self.request.retries > 0
        state = runtime.engine.state(name) if seen_before else None
        if state is None or state.get("Status") == "created":
            runtime.engine.start(name)
    except TransientDockerFailure:
        raise
    except DockerFailure as failure:
        _fail(job_id, attempt, failure, local_worker())
        return
    if runtime.store.mark_running(job_id, attempt):
        metrics.JOB_QUEUE_WAIT.labels(job.stack).observe(max(time.time() - job.created_at, 0))
    elif runtime.store.get_job(job_id).status.final:
        # Ended (cancelled) while starting: stop it now rather than let it run unwatched.
        runtime.engine.kill(name)
        _send(reap_container, job_id, attempt, local_worker())
        return
    _record_step(job, attempt, "start", time.perf_counter() - started)
    _send(wait_container, job_id, attempt, local_worker())


@app.task(bind=True, base=LifecycleStep, name="longshore.wait_container", step="wait", **RETRY_POLICIES["wait"])
def wait_container(self: LifecycleStep, job_id: str, attempt: int) -> None:
    """Wait for the container to exit (killing it at the timeout), collect what it left, finish the job.

    One message waits at most a slice (LONGSHORE_WAIT_SLICE_SECONDS), then hands on to a
    fresh one: no message stays unacknowledged long enough to trip RabbitMQ's consumer_timeout.
    """
    runtime = get_runtime()
    job = _current(job_id, attempt)
    name = container_name(job_id, attempt)
    if job is None:
        # Ended elsewhere (cancelled, requeued): its container must not run on unwatched.
        runtime.engine.kill(name)
        _send(reap_container, job_id, attempt, local_worker())
        return
    started = time.perf_counter()
    remaining = job.timeout_seconds - (time.time() - (job.started_at or time.time()))
    slice_seconds = min(max(remaining, 0), runtime.settings.wait_slice_seconds)
    try:
        exit_code = runtime.engine.wait(name, slice_seconds)
        if exit_code is None and remaining > slice_seconds:
            _send(wait_container, job_id, attempt, local_worker())
            return
        if exit_code is None:
            runtime.engine.kill(name)
        report = runtime.engine.collect(
            name,
            output_limit_bytes=runtime.settings.output_limit_bytes,
            result_limit_bytes=runtime.settings.result_limit_bytes,
        )
    except TransientDockerFailure:
        raise
    except DockerFailure as failure:
        _fail(job_id, attempt, failure, local_worker())
        return
    status, error = _outcome(job, exit_code, report.oom_killed)
    _record_step(job, attempt, "wait", time.perf_counter() - started)
    if status is JobStatus.FAILED and _killed_by_engine_restart(report, local_worker()):
        # The engine went away while we waited and the container died by a signal: the
        # infrastructure's fault, so a new attempt that does not use up the job's retries.
        if runtime.store.next_attempt(job_id, attempt, outcome=status, exit_code=report.exit_code,
                                      error="attempt lost: the Docker engine restarted while the job ran"):
            publish_pull(job_id, attempt + 1, job.stack)
    elif status is JobStatus.FAILED and job.retries_used < job.retries:
        # The job's own retries: a new attempt, after the delay it asked for.
        if runtime.store.next_attempt(job_id, attempt, outcome=status, exit_code=report.exit_code, error=error,
                                      user_retry=True):
            publish_pull(job_id, attempt + 1, job.stack, countdown=job.retry_delay_seconds)
    else:
        _finish(
            job_id, attempt, status, exit_code=report.exit_code, error=error, output=report.output,
            output_truncated=report.output_truncated, result=report.result,
        )
    _send(reap_container, job_id, attempt, local_worker())


@app.task(bind=True, base=LifecycleStep, name="longshore.kill_container", step="kill", **RETRY_POLICIES["start"])
def kill_container(self: LifecycleStep, job_id: str, attempt: int) -> None:
    """Stop a cancelled job's container now; its wait step sees the job ended and hands on to reap."""
    get_runtime().engine.kill(container_name(job_id, attempt))
    _send(reap_container, job_id, attempt, local_worker())


@app.task(bind=True, base=LifecycleStep, name="longshore.reap_container", step="reap", **RETRY_POLICIES["reap"])
def reap_container(self: LifecycleStep, job_id: str, attempt: int) -> None:
    """Remove the attempt's container; already gone is fine."""
    runtime = get_runtime()
    started = time.perf_counter()
    runtime.engine.remove(container_name(job_id, attempt))
    _record_step(runtime.store.get_job(job_id), attempt, "reap", time.perf_counter() - started, reaped_at=time.time())


def publish_pull(job_id: str, attempt: int, stack_name: str, *, countdown: float = 0) -> None:
    """Put an attempt's first step on its stack's queue, and record that it got there."""
    pull_image.apply_async((job_id, attempt), queue=stack_queue(stack_name), countdown=countdown or None)
    get_runtime().store.mark_published(job_id)


def request_cancel(job_id: str) -> Job:
    """Cancel a job: a queued one never starts; a running one's container is killed and reaped."""
    store = get_runtime().store
    job = store.get_job(job_id)
    was_running = job.status is JobStatus.RUNNING
    job = store.cancel(job_id)
    if job.status is JobStatus.CANCELLED:
        current = store.list_attempts(job_id)[-1]
        if current.worker and (was_running or current.container_id):
            _send(kill_container, job_id, current.number, current.worker)
    return job


def _outcome(job: Job, exit_code: int | None, oom_killed: bool) -> tuple[JobStatus, str | None]:
    """Turn how the container ended into the job's status and an error in words."""
    if exit_code is None:
        return JobStatus.TIMED_OUT, f"killed after running past its timeout of {job.timeout_seconds:g} seconds"
    if oom_killed:
        return JobStatus.OOM_KILLED, (
            f"killed: out of memory (limit {job.memory_bytes // (1 << 20)} MiB); "
            "raise the job's memory limit"
        )
    if exit_code == 0:
        return JobStatus.SUCCEEDED, None
    return JobStatus.FAILED, f"the job's command exited with code {exit_code}"


def _killed_by_engine_restart(report: ExitReport, nodename: str) -> bool:
    """A signal death while this worker's engine was unreachable (a restart kills its containers)."""
    if report.exit_code not in KILLED_BY_ENGINE_EXIT_CODES or report.finished_at is None:
        return False
    settings = get_runtime().settings
    return get_runtime().store.engine_was_down(nodename, report.finished_at,
                                               margin_seconds=2 * settings.heartbeat_seconds + 1)


def _redelivered(task: Task) -> bool:
    return bool((task.request.delivery_info or {}).get("redelivered"))


@app.task(name="longshore.janitor", ignore_result=True)
def janitor() -> str:
    """Periodic (Celery beat): check the store, then ask every live worker to sweep its engine."""
    from longshore.janitor import UNPUBLISHED_AFTER_SECONDS, check_store

    runtime = get_runtime()
    settings = runtime.settings
    report = check_store(runtime, lost_after_seconds=settings.worker_lost_seconds,
                         unpublished_after_seconds=max(settings.reap_grace_seconds, UNPUBLISHED_AFTER_SECONDS))
    for nodename in runtime.store.live_workers(settings.worker_lost_seconds):
        sweep_engine.apply_async(queue=worker_queue(nodename), expires=settings.janitor_interval_seconds)
    log.info("janitor: %s", report.summary())
    return report.summary()


@app.task(name="longshore.sweep_engine", ignore_result=True)
def sweep_engine() -> str:
    """Sent to each worker's own queue: clean that worker's Docker engine."""
    from longshore.janitor import requeue_vanished, sweep_engine as sweep

    runtime = get_runtime()
    grace = runtime.settings.reap_grace_seconds
    report = sweep(runtime, grace_seconds=grace).merge(requeue_vanished(runtime, local_worker(), grace_seconds=grace))
    log.info("engine sweep: %s", report.summary())
    return report.summary()
