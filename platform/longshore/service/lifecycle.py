"""The life of a job: pull → create → start → wait → reap, one plain function per step.

Each step receives ids (job id, attempt number), re-reads the job from the store,
does its engine work, and returns a `Next`: what to record, how the attempt
concludes, and which step follows. `carry_out` makes that happen (store write,
then message), and the worker's task adapters run one step per message.

- A step does nothing if its attempt is no longer current or the job has ended: a
  duplicate or late message for the same worker is harmless.
- Steps are idempotent under redelivery: the container's name is derived from the
  attempt, so a second `create` adopts the first container instead of making another.
- The pull runs on any worker serving the job's stack (it claims the attempt); the
  later steps are sent to the queue of the worker that pulled, so they use the same
  Docker engine.
- The job is concluded as soon as its container exited and its output was read;
  removing the container (reap) is a separate message, off the job's critical path.
- A transient engine or store failure raises, and the worker retries the step
  (`domain.policy.StepRetry`); a permanent one fails the job with the error in words.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from longshore.domain.outcome import Outcome, container_outcome
from longshore.domain.policy import Decision, Finish, decide
from longshore.domain.records import Job
from longshore.domain.stacks import PullPolicy
from longshore.domain.status import JobStatus
from longshore.domain.steps import Step, container_name
from longshore.engine.container import LABEL_ATTEMPT, LABEL_DEADLINE, LABEL_INSTALLATION, LABEL_JOB, LABEL_WORKER, \
    ContainerSpec
from longshore.engine.contract import contract_env
from longshore.errors import DockerFailure, TransientDockerFailure
from longshore.service.dispatch import conclude
from longshore.service.runtime import Runtime
from longshore.store import STORE_ERRORS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepContext:
    """What one step needs: the runtime, the worker running it, and whether its message came back."""

    runtime: Runtime
    nodename: str
    again: bool = False  #: redelivered, or a platform retry of the same message


@dataclass(frozen=True)
class Record:
    """The step did its work for the attempt: its duration (and these fields) go on the attempt."""

    stack: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Next:
    """What follows a step, carried out in this order: record, conclude, send."""

    record: Record | None = None
    conclude: Decision | None = None
    send: Step | None = None  #: the attempt's next step, to this worker's own queue


NOTHING = Next()


# -- the steps ------------------------------------------------------------------

def pull(ctx: StepContext, job_id: str, attempt: int) -> Next:
    """Claim the attempt for this worker and make the job's image present on its engine."""
    rt = ctx.runtime
    if not rt.store.jobs.claim(job_id, attempt, worker=ctx.nodename, host=rt.settings.worker.hostname,
                               reclaim=ctx.again):
        return NOTHING
    job = rt.store.jobs.get(job_id)
    stack = rt.manifest.get(job.stack)
    try:
        rt.engine.ensure_image(job.image, always_pull=stack.pull is PullPolicy.ALWAYS)
    except TransientDockerFailure:
        raise
    except DockerFailure as failure:
        return Next(conclude=Finish(Outcome.platform_failure(str(failure))))  # nothing was created
    return Next(record=Record(job.stack), send=Step.CREATE)


def create(ctx: StepContext, job_id: str, attempt: int) -> Next:
    """Create the attempt's container with its limits, payload and labels; check the limits held."""
    rt = ctx.runtime
    job = current(rt, job_id, attempt)
    if job is None:
        return NOTHING
    spec = container_spec(rt, job, attempt, ctx.nodename)
    try:
        container_id = rt.engine.create(spec)
    except TransientDockerFailure:
        raise
    except DockerFailure as failure:
        return _failed(failure)
    return Next(record=Record(job.stack, {"container_id": container_id, "container_name": spec.name}),
                send=Step.START)


def start(ctx: StepContext, job_id: str, attempt: int) -> Next:
    """Start the container once and mark the job running."""
    rt = ctx.runtime
    job = current(rt, job_id, attempt)
    name = container_name(job_id, attempt)
    if job is None:
        return Next(send=Step.REAP)
    try:
        # A redelivered start must not restart a container that already ran.
        seen_before = job.status is JobStatus.RUNNING or ctx.again
        state = rt.engine.state(name) if seen_before else None
        if state is None or state.get("Status") == "created":
            rt.engine.start(name)
    except TransientDockerFailure:
        raise
    except DockerFailure as failure:
        return _failed(failure)
    if rt.store.jobs.mark_running(job_id, attempt):
        rt.events.job_started(job)
    elif rt.store.jobs.get(job_id).status.final:
        # Ended (cancelled) while starting: stop it now rather than let it run unwatched.
        rt.engine.kill(name)
        return Next(send=Step.REAP)
    return Next(record=Record(job.stack), send=Step.WAIT)


def wait(ctx: StepContext, job_id: str, attempt: int) -> Next:
    """Wait for the container to exit (killing it at the timeout), collect what it left, conclude.

    One message waits at most a slice (LONGSHORE_WAIT_SLICE_SECONDS), then hands on to a
    fresh one: no message stays unacknowledged long enough to trip RabbitMQ's consumer_timeout.
    """
    rt = ctx.runtime
    job = current(rt, job_id, attempt)
    name = container_name(job_id, attempt)
    if job is None:
        # Ended elsewhere (cancelled, requeued): its container must not run on unwatched.
        rt.engine.kill(name)
        return Next(send=Step.REAP)
    remaining = job.timeout_seconds - (time.time() - (job.started_at or time.time()))
    slice_seconds = min(max(remaining, 0), rt.settings.worker.wait_slice_seconds)
    limits = rt.settings.jobs
    try:
        exit_code = rt.engine.wait(name, slice_seconds)
        if exit_code is None and remaining > slice_seconds:
            return Next(send=Step.WAIT)
        if exit_code is None:
            rt.engine.kill(name)
        report = rt.engine.collect(name, output_limit_bytes=limits.output_limit_bytes,
                                   result_limit_bytes=limits.result_limit_bytes)
    except TransientDockerFailure:
        raise
    except DockerFailure as failure:
        return _failed(failure)
    outcome = container_outcome(
        timed_out=exit_code is None, exit_code=report.exit_code, oom_killed=report.oom_killed,
        timeout_seconds=job.timeout_seconds, memory_bytes=job.memory_bytes, output=report.output,
        output_truncated=report.output_truncated, result=report.result, finished_at=report.finished_at)
    decision = decide(outcome, retries_left=job.retries - job.retries_used,
                      retry_delay_seconds=job.retry_delay_seconds,
                      engine_restarted=_engine_restarted(ctx, outcome))
    return Next(record=Record(job.stack), conclude=decision, send=Step.REAP)


def kill(ctx: StepContext, job_id: str, attempt: int) -> Next:
    """Stop a cancelled job's container now; its wait step sees the job ended and hands on to reap."""
    ctx.runtime.engine.kill(container_name(job_id, attempt))
    return Next(send=Step.REAP)


def reap(ctx: StepContext, job_id: str, attempt: int) -> Next:
    """Remove the attempt's container; already gone is fine."""
    rt = ctx.runtime
    rt.engine.remove(container_name(job_id, attempt))
    return Next(record=Record(rt.store.jobs.get(job_id).stack, {"reaped_at": time.time()}))


STEPS = {Step.PULL: pull, Step.CREATE: create, Step.START: start, Step.WAIT: wait, Step.KILL: kill, Step.REAP: reap}


# -- around every step ------------------------------------------------------------

def carry_out(ctx: StepContext, step: Step, job_id: str, attempt: int, after: Next, seconds: float) -> None:
    """Make a step's `Next` happen: record its duration, conclude the attempt, send the next step."""
    rt = ctx.runtime
    if after.record is not None:
        rt.store.jobs.record_step(job_id, attempt, step, seconds, **after.record.fields)
        rt.events.step_done(after.record.stack, step, seconds)
    if after.conclude is not None:
        conclude(rt, job_id, attempt, after.conclude, stack=after.record.stack if after.record else None)
    if after.send is not None:
        rt.publisher.send_step(after.send, job_id, attempt, ctx.nodename)


def check_redelivery(ctx: StepContext, step: Step, job_id: str, attempt: int) -> Next | None:
    """Count a redelivered step; past the cap, fail the job (and reap) instead of running it again."""
    try:
        count = ctx.runtime.store.jobs.count_redelivery(job_id, attempt)
    except STORE_ERRORS:
        return None  # the store is down: the step itself will retry until it is back
    if not ctx.runtime.settings.policies.redeliveries_exhausted(count):
        return None
    error = (f"the worker running this job was lost {count} times during its {step.value} step; "
             "giving up rather than redelivering it forever")
    return Next(conclude=Finish(Outcome.platform_failure(error)), send=Step.REAP)


def give_up(step: Step, retries: int, exc: BaseException) -> Next:
    """A step exhausted its platform retries: the job fails with the reason in words, and is reaped."""
    error = f"the platform could not {step.value} the container after {retries} retries: {exc}"
    return Next(conclude=Finish(Outcome.platform_failure(error)), send=Step.REAP)


# -- helpers ------------------------------------------------------------------------

def current(rt: Runtime, job_id: str, attempt: int) -> Job | None:
    """The job if `attempt` is its current, unfinished attempt; None for a stale message."""
    job = rt.store.jobs.get(job_id)
    if job.attempt != attempt or job.status.final:
        log.info("ignoring stale step for %s attempt %s (%s, attempt %s)", job_id, attempt, job.status.value,
                 job.attempt)
        return None
    return job


def container_spec(rt: Runtime, job: Job, attempt: int, nodename: str) -> ContainerSpec:
    """The container an attempt runs in: the stack's user, the job's limits, the contract, the labels."""
    return ContainerSpec(
        name=container_name(job.id, attempt),
        image=job.image,
        command=job.command,
        env={**job.env, **contract_env(job.id)},
        user=rt.manifest.get(job.stack).user,
        memory_bytes=job.memory_bytes,
        cpus=job.cpus,
        pids_limit=rt.settings.jobs.pids_limit,
        labels={
            LABEL_JOB: job.id,
            LABEL_ATTEMPT: str(attempt),
            LABEL_WORKER: nodename,
            LABEL_DEADLINE: f"{time.time() + job.timeout_seconds:.0f}",
            LABEL_INSTALLATION: rt.settings.installation,
        },
        payload=job.payload,
        output_limit_bytes=rt.settings.jobs.output_limit_bytes,
    )


def _failed(failure: DockerFailure) -> Next:
    """A permanent engine failure: the job fails at once with the error in words, then is reaped."""
    return Next(conclude=Finish(Outcome.platform_failure(str(failure))), send=Step.REAP)


def _engine_restarted(ctx: StepContext, outcome: Outcome) -> bool:
    """A signal death while this worker's engine was unreachable (a restart kills its containers)."""
    policies = ctx.runtime.settings.policies
    if not policies.engine_may_have_killed(outcome):
        return False
    return ctx.runtime.store.workers.engine_was_down(ctx.nodename, outcome.finished_at,
                                                     margin_seconds=policies.engine_outage_margin_seconds)
