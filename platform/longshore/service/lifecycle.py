"""The life of a job: pull → create → start → (watch) → wait → reap, one plain function per step.

Each step receives ids (job id, attempt number), re-reads the job and the attempt (a create or start run
straight after the step before takes the job it read), does its engine work, and returns a `Next`: what to
record, whether the attempt's slot is released, how the attempt concludes, and which step follows:
`service.carry` makes that happen (store write, then message, or the next step in the same task).

- **Ownership.** The claim (by the worker's admission, or by a pull sent as a message) makes the attempt its
  worker's, within its slots; every later write is fenced to the owner, so a late or duplicated step of any
  other worker touches nothing. The later steps run on the owner, so they use the same Docker engine.
- **No message is held while a container runs.** After `start`, the owner's watcher (`worker.watcher`,
  `service.supervise`) follows the engine's events: when the container exits, or reaches its deadline (it
  kills it), it sends `wait`, which collects what the container left and concludes the attempt.
- **Idempotent.** The container's name is derived from the attempt, so a second `create` adopts the first
  container; `start` starts only a created container (made afresh if a failed start left the engine refusing
  it); `wait` does nothing while the container runs.
- **Failures.** A transient engine, store or broker failure raises and the worker retries the step, then
  leaves it to the watcher to send again; a permanent engine failure fails the job with the error in words; a
  container that vanished is the infrastructure's fault and requeues the job (within its requeue budget).
- The attempt is concluded as soon as its container exited and its output was read; removing the container
  (reap) is a separate message, off the job's critical path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from longshore.broker.publish import PUBLISH_ERRORS
from longshore.domain.outcome import Outcome, container_outcome
from longshore.domain.policy import Decision, Finish, decide, requeue_or_lose
from longshore.domain.records import Attempt, Job, WorkerIdentity
from longshore.domain.stacks import PullPolicy
from longshore.domain.status import AttemptStatus, JobStatus
from longshore.domain.steps import Step, container_name
from longshore.engine.client import timestamp
from longshore.errors import DockerFailure, InvalidJob, TransientDockerFailure, UnknownStack
from longshore.service.containers import container_spec
from longshore.service.held_seconds import HeldSeconds
from longshore.service.remake import start_again
from longshore.service.runtime import Runtime
from longshore.service.secrets import SecretsUnavailable
from longshore.store import STORE_ERRORS, Claim, Owned

log = logging.getLogger(__name__)

#: A container killed at its deadline has stopped by then, give or take the engine's own delay.
DEADLINE_TOLERANCE_SECONDS = 0.5
#: How often a pull whose worker is full looks for a free slot again.
CLAIM_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class StepContext:
    """What one step needs: the runtime, the worker running it, and whether its message was redelivered."""

    runtime: Runtime
    worker: WorkerIdentity
    redelivered: bool = False  #: its message came back: the worker that held it died (not a retry)
    #: For a create or start run straight after the step before, in its task (`service.carry.run_here`): the
    #: job that step read, whose record was fenced to the owner and to the job being unfinished at this
    #: attempt: trusted instead of a second read (every write stays fenced). For a pull: the job as this
    #: worker's admission claimed it (the pull claims nothing more). None for every other step.
    job: Job | None = None
    #: Where this process runs a step itself rather than sending it as a message (the watcher's reaps), with the
    #: job as the sending step read it: returns False for a step it does not take. None: every step is a message.
    send_here: Callable[[Step, str, int, Job | None], bool] | None = None
    held_seconds: HeldSeconds | None = None  #: the worker's own process: starts' seconds wait for the next write there


@dataclass(frozen=True)
class Record:
    """The step did its work for the attempt: its duration (and these fields) go on the attempt."""

    stack: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Next:
    """What follows a step, carried out in this order: record, release, conclude, send, hand back."""

    record: Record | None = None
    release: bool = False  #: the attempt no longer holds a slot (its container exited, or never was)
    conclude: Decision | None = None
    send: Step | None = None  #: the attempt's next step, to the owner's own queue
    hand_back: Job | None = None  #: this worker is full: put the pull back on this job's stack's queue
    #: the job as this step read it: for the step run next in the same task, the write that ends the job, and
    #: the reap a wait that concluded the attempt sends to run here
    job: Job | None = None


NOTHING = Next()


# -- the steps ------------------------------------------------------------------

def pull(ctx: StepContext, job_id: str, attempt: int) -> Next:
    """Claim the attempt for this worker (within its slots) and make the job's image present on its engine."""
    rt, me = ctx.runtime, ctx.worker
    if ctx.job is not None and (ctx.job.id, ctx.job.attempt) == (job_id, attempt):
        claim, job = Claim.CLAIMED, ctx.job  # this worker's admission claimed it (`worker.admission`)
    else:
        claim, job = claim_attempt(ctx, job_id, attempt)
    if claim is Claim.FULL:
        return Next(hand_back=job)
    if claim not in (Claim.CLAIMED, Claim.MINE):
        return NOTHING  # another worker has it, or the job moved on: a duplicate is harmless
    if claim is Claim.MINE and (rt.store.jobs.attempt(job_id, attempt).step_seconds.get("pull") is not None):
        if not ctx.redelivered:
            return NOTHING  # a duplicate of a pull that completed (or its retry): its next steps are on their way
        # Its worker died after the pull, in the create or start its task ran next (`service.carry`): that
        # counts as their redelivery, and the attempt goes on from its create (which adopts a container made).
        return check_redelivery(ctx, Step.CREATE, job_id, attempt) or Next(send=Step.CREATE)
    try:
        stack = rt.manifest.get(job.stack)
        rt.engine.ensure_image(job.image, always_pull=stack.pull is PullPolicy.ALWAYS,
                               on_progress=lambda: _touch(rt, job_id, attempt, me.name))
    except UnknownStack as exc:
        return _cannot_run(exc)
    except TransientDockerFailure:
        raise
    except DockerFailure as failure:
        return Next(release=True, conclude=Finish(Outcome.platform_failure(str(failure))))  # nothing was created
    return Next(record=Record(job.stack), send=Step.CREATE, job=job)


def create(ctx: StepContext, job_id: str, attempt: int) -> Next:
    """Create the attempt's container with its limits, payload and labels; check the limits held."""
    rt = ctx.runtime
    job, record = _mine(ctx, job_id, attempt)
    if job is None:
        return NOTHING
    if record is not None and record.started_at is not None:  # None: run straight after its pull, unstarted
        # Run again after the start that followed it (its worker died in that start): never a second
        # container for an attempt that started; its wait looks at the first (gone: the attempt is lost).
        return Next(send=Step.WAIT)
    try:
        spec = container_spec(rt, job, attempt, ctx.worker.name)
    except (SecretsUnavailable, UnknownStack, InvalidJob) as exc:  # InvalidJob: its code's archive is gone
        return _cannot_run(exc)
    try:
        container_id = rt.engine.create(spec, on_progress=lambda: _touch(rt, job_id, attempt, ctx.worker.name))
    except TransientDockerFailure:
        raise
    except DockerFailure as failure:
        return _failed(failure)
    return Next(record=Record(job.stack, {"container_id": container_id, "container_name": spec.name}),
                send=Step.START, job=job)


def start(ctx: StepContext, job_id: str, attempt: int) -> Next:
    """Mark the job running (fenced to the owner), then start its container once; the watcher follows it."""
    rt, me = ctx.runtime, ctx.worker
    job, _ = _mine(ctx, job_id, attempt)
    if job is None:
        return _reap_if_cancelled_before_start(ctx, job_id, attempt)
    first = job.status is JobStatus.QUEUED
    if first:
        if not rt.store.jobs.begin_running(job_id, attempt, owner=me.name, known=job):
            return _reap_if_cancelled_before_start(ctx, job_id, attempt)  # cancelled since it was read
        rt.events.job_started(job)
    try:
        if first:  # each start marks the job running before it starts the container: none started it yet
            exists = rt.engine.start(container_name(job_id, attempt))
        else:  # a repeated start must not restart a container that ran; one refused for good is made afresh
            exists = start_again(rt, me.name, job, attempt, on_progress=lambda: _touch(rt, job_id, attempt, me.name))
        if not exists:  # reaped all the same: its contract folder goes now, not at the next sweep
            return Next(conclude=_lost(rt, job, "its container vanished before it started"), release=True,
                        send=Step.REAP)
    except TransientDockerFailure:
        raise
    except DockerFailure as failure:
        return _failed(failure)
    except (SecretsUnavailable, UnknownStack, InvalidJob) as exc:  # made afresh (`service.remake`), as created
        return _cannot_run(exc)
    return Next(record=Record(job.stack))


def wait(ctx: StepContext, job_id: str, attempt: int) -> Next:
    """The container exited (or reached its deadline): collect what it left and conclude the attempt. Sent by
    the owner's watcher; does nothing while the container runs within its deadline."""
    rt = ctx.runtime
    job, record = _mine(ctx, job_id, attempt)
    if job is None or job.status is not JobStatus.RUNNING:
        return NOTHING  # not started yet (its start step is on its way), or it moved on
    name = container_name(job_id, attempt)
    limits = rt.settings.jobs
    try:
        inspected = rt.engine.inspect(name)
        if inspected is None:
            if _being_repaired(rt, job_id, attempt):  # its container may be between a removal and a create
                return Next(send=Step.START)  # which finishes that if the start that began it stopped
            inspected = rt.engine.inspect(name)  # a repair may have ended between the inspect and the read
            if inspected is None:
                return Next(conclude=_lost(rt, job, "its container vanished"), release=True, send=Step.REAP)
        state = inspected["State"]
        if state.get("Status") == "created":
            return Next(send=Step.START)  # its start was lost on the way
        deadline = _deadline(state, job)
        if state.get("Running"):
            if deadline is None or time.time() < deadline:
                return NOTHING
            rt.engine.kill(name)  # the watcher should have; it stops within the engine's own delay
            inspected = rt.engine.inspect(name) or {}
            if (inspected.get("State") or {}).get("Running"):
                return NOTHING  # the die event sends wait again
        report = rt.engine.collect(name, output_limit_bytes=limits.output_limit_bytes,
                                   result_limit_bytes=limits.result_limit_bytes, inspected=inspected or None)
    except TransientDockerFailure:
        raise
    except DockerFailure as failure:
        return _failed(failure)
    timed_out = (report.exit_code == 137 and not report.oom_killed and deadline is not None
                 and report.finished_at is not None and report.finished_at >= deadline - DEADLINE_TOLERANCE_SECONDS)
    outcome = container_outcome(
        timed_out=timed_out, exit_code=report.exit_code, oom_killed=report.oom_killed,
        timeout_seconds=job.timeout_seconds, memory_bytes=job.memory_bytes, disk_bytes=job.disk_bytes,
        inodes=_scratch_inodes(rt, job), output=report.output, output_truncated=report.output_truncated,
        result=report.result, result_error=report.result_error, finished_at=report.finished_at)
    engine_restarted = _engine_restarted(ctx, outcome)
    if engine_restarted is None:
        log.info("%s attempt %s died by a signal just now: judged once an engine outage could have been seen",
                 job_id, attempt)
        return NOTHING  # the watcher's tick sends the wait again within seconds
    decision = decide(outcome, retries_left=job.retries - job.retries_used,
                      retry_delay_seconds=job.retry_delay_seconds, engine_restarted=engine_restarted,
                      requeues_left=rt.settings.policies.max_requeues - job.requeues)
    return Next(record=Record(job.stack), release=record.released_at is None, conclude=decision, send=Step.REAP,
                job=job)


def kill(ctx: StepContext, job_id: str, attempt: int) -> Next:
    """Stop the container of an attempt that has ended (a cancelled job); then reap it."""
    if not _over(ctx.runtime.store.attempts.current(job_id, attempt)):
        return NOTHING  # a stale kill for an attempt that is still running: not ours to stop
    ctx.runtime.engine.kill(container_name(job_id, attempt))
    return Next(release=True, send=Step.REAP)


def reap(ctx: StepContext, job_id: str, attempt: int) -> Next:
    """Remove the container of an attempt that has ended; already gone is fine."""
    rt = ctx.runtime
    if ctx.job is not None and (ctx.job.id, ctx.job.attempt) == (job_id, attempt):
        # sent by the wait that concluded the attempt here (its end written, its slot released): it is over
        rt.engine.remove(container_name(job_id, attempt))
        return Next(record=Record(ctx.job.stack, {"reaped_at": time.time()}))
    current = rt.store.attempts.current(job_id, attempt)
    if not _over(current):
        return NOTHING  # never remove a container its attempt still needs
    rt.engine.remove(container_name(job_id, attempt))
    return NOTHING if current is None else Next(  # None: its job was deleted (retention), nothing to record
        record=Record(current.job.stack, {"reaped_at": time.time()}), release=current.attempt.released_at is None)


STEPS = {Step.PULL: pull, Step.CREATE: create, Step.START: start, Step.WAIT: wait, Step.KILL: kill, Step.REAP: reap}


# -- around every step (`service.carry` carries out a step's `Next`) --------------------

#: The steps whose worker dying while they run may be the job's doing (a huge image, a container that
#: takes the engine down as it starts): redelivered too often, the job is requeued elsewhere. A pull's
#: claim, a wait's collection and a reap are harmless to repeat.
REDELIVERY_CAPPED = frozenset({Step.CREATE, Step.START})


def check_redelivery(ctx: StepContext, step: Step, job_id: str, attempt: int) -> Next | None:
    """Count a redelivered step of this worker's attempt; past the cap, requeue the job instead of running
    the step again."""
    try:
        job, _ = _mine(ctx, job_id, attempt)
        if job is None:
            return None  # not this worker's (any more): the step itself does nothing
        count = ctx.runtime.store.attempts.count_redelivery(job_id, attempt)
    except STORE_ERRORS:
        return None  # the store is down: the step itself will retry until it is back
    if not ctx.runtime.settings.policies.redeliveries_exhausted(count):
        return None
    # Stop its container before a new attempt can start anywhere: a job never runs twice at once.
    ctx.runtime.engine.kill(container_name(job_id, attempt))
    why = f"the worker running it was lost {count} times during its {step.value} step"
    return Next(release=True, conclude=_lost(ctx.runtime, job, why), send=Step.REAP)


def hand_back(ctx: StepContext, job_id: str, attempt: int) -> None:
    """A pull that gave up in an outage goes back to its stack's queue if it can (the job is unclaimed);
    if it cannot, it is published again once its hand-over is old (`publish_due`)."""
    rt = ctx.runtime
    try:
        job = rt.store.jobs.get(job_id)
        record = rt.store.jobs.attempt(job_id, attempt)
        if job.attempt == attempt and not job.status.final and record is not None and record.worker is None:
            rt.publisher.publish_pull(job_id, attempt, job.stack, priority=job.priority)
    except (*STORE_ERRORS, *PUBLISH_ERRORS):
        log.info("could not hand %s attempt %s back now; it is published again later", job_id, attempt)


def give_up(step: Step, retries: int, exc: BaseException) -> Next:
    """A step failed for a reason that is not the infrastructure's: the job fails with it in words."""
    error = f"the platform could not {step.value} the container after {retries} retries: {exc}"
    return Next(release=True, conclude=Finish(Outcome.platform_failure(error)), send=Step.REAP)


# -- helpers ------------------------------------------------------------------------

def claim_attempt(ctx: StepContext, job_id: str, attempt: int) -> tuple[Claim, Job | None]:
    """Claim the attempt (with the job as the claim read it); while this worker is full, wait a little for
    a slot (the message is held only that long) before handing the job back for another worker."""
    rt, me = ctx.runtime, ctx.worker
    deadline = time.monotonic() + rt.settings.worker.claim_wait_seconds
    while True:
        claim = rt.store.attempts.claim(job_id, attempt, worker=me.name, engine=me.engine_id, host=me.host,
                                        slots=me.slots, default_max_running=rt.settings.quotas.max_running_jobs)
        if claim[0] is not Claim.FULL or time.monotonic() >= deadline:
            return claim
        time.sleep(CLAIM_POLL_SECONDS)


def _touch(rt: Runtime, job_id: str, attempt: int, owner: str) -> None:
    try:
        rt.store.attempts.touch(job_id, attempt, owner=owner)
    except STORE_ERRORS:
        pass  # the pull goes on; the watcher may send it again, which is harmless


def _mine(ctx: StepContext, job_id: str, attempt: int) -> tuple[Job | None, Attempt | None]:
    """The job and attempt if the attempt is current, unfinished and this worker's; (None, None) otherwise.
    A create or start run straight after the step before has the job that step read, and no attempt (None)."""
    if ctx.job is not None and (ctx.job.id, ctx.job.attempt) == (job_id, attempt):
        return ctx.job, None
    current = ctx.runtime.store.attempts.current(job_id, attempt)
    if current is None:
        return None, None  # no such job (or attempt) any more
    job, record = current.job, current.attempt
    if (job.attempt != attempt or job.status.final or record.worker != ctx.worker.name
            or record.status not in (AttemptStatus.QUEUED, AttemptStatus.RUNNING)):
        log.info("ignoring %s attempt %s on %s (%s, attempt %s, owner %s)", job_id, attempt, ctx.worker.name,
                 job.status.value, job.attempt, record.worker)
        return None, None
    return job, record


def _reap_if_cancelled_before_start(ctx: StepContext, job_id: str, attempt: int) -> Next:
    """This worker created the attempt's container, and the attempt ended before its start (a cancel): the
    container is removed now. Its attempt no longer holds a slot, so the watcher does not look at it."""
    current = ctx.runtime.store.attempts.current(job_id, attempt)
    mine = current is not None and current.attempt.worker == ctx.worker.name
    return Next(send=Step.REAP) if mine and _over(current) else NOTHING


def _over(current: Owned | None) -> bool:
    """True once the attempt can no longer run (`Owned.over`), or its job is gone."""
    return current is None or current.over


def _scratch_inodes(rt: Runtime, job: Job) -> int | None:  # how many files the job's scratch dirs hold
    return rt.manifest.stacks[job.stack].sandbox.inodes if job.stack in rt.manifest.stacks else None


def _deadline(state: dict, job: Job) -> float | None:
    """When the container must be killed: its start, as the engine recorded it, plus the job's timeout."""
    started = timestamp(state.get("StartedAt"))
    return None if started is None else started + job.timeout_seconds


def _being_repaired(rt: Runtime, job_id: str, attempt: int) -> bool:
    """A repeated start holds the attempt's lease (`service.remake`), as the store says after the engine did."""
    current = rt.store.attempts.current(job_id, attempt)
    return current is not None and current.attempt.repair_at is not None


def _lost(rt: Runtime, job: Job, why: str) -> Decision:
    """The infrastructure lost the attempt: requeue it within the job's requeue budget."""
    return requeue_or_lose(Outcome(status=JobStatus.FAILED), f"attempt lost: {why}",
                           requeues_left=rt.settings.policies.max_requeues - job.requeues)


def _cannot_run(exc: Exception) -> Next:
    """This worker cannot make the job's container (its stack, its secrets, its code): the job fails."""
    return Next(release=True, conclude=Finish(Outcome.platform_failure(f"this worker cannot run it: {exc}")))


def _failed(failure: DockerFailure) -> Next:
    """A permanent engine failure: the job fails at once with the error in words, then is reaped."""
    return Next(release=True, conclude=Finish(Outcome.platform_failure(str(failure))), send=Step.REAP)


def _engine_restarted(ctx: StepContext, outcome: Outcome) -> bool | None:
    """A signal death while this worker's engine was unreachable (a restart kills its containers). None
    while it cannot be told yet: a signal death within the outage margin of now, no outage recorded (the
    heartbeat may not have seen the engine go: a wait run at once on the exit must not call it the job's)."""
    policies = ctx.runtime.settings.policies
    if not policies.engine_may_have_killed(outcome):
        return False
    margin = policies.engine_outage_margin_seconds
    if ctx.runtime.store.workers.engine_was_down(ctx.worker.name, outcome.finished_at, margin_seconds=margin):
        return True
    return None if time.time() - outcome.finished_at < margin else False
