"""Carrying out a step's `Next`: its record, its slot, its conclusion, then the step after it.

The step after a pull is a create, and after a create a start, on the same worker: `carry_out` hands
those back to the task that ran the step, which runs them at once (`run_here`) rather than sending each
through the broker to its own queue: two messages fewer per job (unless a monitor such as Flower asks
for task events, when every step is a message it can list). Each stays a step with its own Celery task and its
own record (a start's, in the worker's own process, rides with the attempt's next write: `service.held_seconds`):
one that fails here (the engine or the store away) is sent as its message, where its retry policy takes over.
A worker that dies in the middle has the message of the step before redelivered: a pull's goes on from the
create (`lifecycle.pull`), a create's is counted as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import time
from typing import Iterable

from longshore.broker.publish import PUBLISH_ERRORS
from longshore.domain.records import Job
from longshore.domain.steps import Step
from longshore.domain.policy import Finish
from longshore.service.dispatch import conclude, finish
from longshore.service.lifecycle import STEPS, Next, StepContext
from longshore.store import STORE_ERRORS

log = logging.getLogger(__name__)

#: The steps the task of the step before runs at once, by the step before (see the module's docstring).
#: Only these pairs: a start a wait sends (its start was lost) is a message, counted if redelivered.
RUN_HERE = {Step.PULL: Step.CREATE, Step.CREATE: Step.START}
#: The steps whose record is their duration alone, held for the attempt's next write where the context holds
#: them (`StepContext.held_seconds`, `service.held_seconds`): no later step or guard depends on a start's record.
HELD_STEPS = frozenset({Step.START})
#: The steps `run_here` hands the job it was given: those run after the step before, a pull whose attempt
#: admission claimed (`worker.admission`), and a reap sent by the wait that concluded its attempt.
GIVEN_THE_JOB = frozenset({Step.PULL, *RUN_HERE.values(), Step.REAP})


def carry_out(ctx: StepContext, step: Step, job_id: str, attempt: int, after: Next, seconds: float, *,
              chain: bool = False) -> Step | None:
    """Make a step's `Next` happen; with `chain`, return its next step instead of sending it when RUN_HERE
    pairs the two and the job is still current when the record is written (else the next step is sent, and
    reads the job itself). A record the store refuses means the attempt is no longer this worker's: nothing
    more is done (its owner's watcher cleans up). A start's record is held where the context holds them, and
    what is held for the attempt goes in this step's record or finishing write (`service.held_seconds`)."""
    rt, me = ctx.runtime, ctx.worker
    stack = after.record.stack if after.record else None
    if (step in HELD_STEPS and ctx.held_seconds is not None and after.record is not None and not after.record.fields
            and not (after.release or after.conclude)):
        ctx.held_seconds.hold((job_id, attempt), step, seconds)  # written with the attempt's next write
        rt.events.step_done(stack, step, seconds)
        after = dataclasses.replace(after, record=None)
    ends_job = step is Step.WAIT and isinstance(after.conclude, Finish)
    concluded = False  # the attempt's end was written here: the reap sent run here may trust the job as read
    # The step run here next goes on with the job this step read: only while that job is still current.
    here_next = chain and after.send is not None and RUN_HERE.get(step) is after.send
    # earlier steps' seconds held for this step's write (held again if it fails)
    writes = ctx.held_seconds is not None and after.record is not None
    with ctx.held_seconds.for_write((job_id, attempt)) if writes else contextlib.nullcontext({}) as held:
        if ends_job and after.record is not None and not after.record.fields:
            # A wait that ends the job: its record goes in the finishing write, one transaction rather than
            # two. If the job had ended or moved on, the record and the conclusion are carried out as below.
            if finish(rt, job_id, attempt, after.conclude.outcome, owner=me.name, took=(step, seconds),
                      known=after.job, held=held):
                rt.events.step_done(stack, step, seconds)
                after, concluded = dataclasses.replace(after, record=None, release=False, conclude=None), True
        if after.record is not None:
            record = functools.partial(rt.store.attempts.record_step, job_id, attempt, step, seconds,
                                       owner=me.name, release=after.release, **after.record.fields,
                                       **{f"{earlier.value}_seconds": took for earlier, took in held.items()})
            if not record(job_current=here_next):
                if not (here_next and record()):
                    log.info("attempt %s of %s is no longer %s's: dropping its %s", attempt, job_id, me.name,
                             step.value)
                    return None
                here_next = False  # its job moved on since it was read: the next step, a message, reads it itself
            rt.events.step_done(after.record.stack, step, seconds)
    if after.record is None and after.release:  # a record carries its release
        rt.store.attempts.release(job_id, attempt)
    if after.conclude is not None:
        concluded = conclude(rt, job_id, attempt, after.conclude, stack=stack, owner=me.name)
    if here_next:
        return after.send
    try:
        read = after.job if concluded else None
        if after.send is not None and not (ctx.send_here and ctx.send_here(after.send, job_id, attempt, read)):
            rt.publisher.send_step(after.send, job_id, attempt, me.name)
        if after.hand_back is not None:
            rt.publisher.publish_pull(job_id, attempt, after.hand_back.stack, priority=after.hand_back.priority)
    except PUBLISH_ERRORS:
        # The broker is away: the watcher sends the attempt's next step again once it is back.
        log.warning("could not send the %s of %s attempt %s; the watcher will", after.send or "pull", job_id, attempt)
    return None


def run_here(ctx: StepContext, step: Step | None, job_id: str, attempt: int, job: Job | None = None) -> None:
    """Run `step`, and the steps it hands back, in this task; `job`: the job as the step before read it (each
    step here takes it from the one before rather than reading it again). One that fails goes to the broker
    as its own message (its retry policy, its redelivery count); the failure is logged, never lost."""
    while step is not None:
        started = time.perf_counter()
        try:
            here = dataclasses.replace(ctx, job=job if step in GIVEN_THE_JOB else None)
            after = STEPS[step](here, job_id, attempt)
            step = carry_out(here, step, job_id, attempt, after, time.perf_counter() - started, chain=True)
            job = after.job
        except Exception as exc:  # whatever it was, the step's own task meets it again and deals with it
            log.warning("%s of %s attempt %s failed here (%r): sending it as its own message", step.value, job_id,
                        attempt, exc)
            ctx.runtime.events.step_retried(step)
            write_held(ctx, [(job_id, attempt)])  # its message may run in another process
            try:
                ctx.runtime.store.attempts.count_infra_retry(job_id, attempt)  # as a retry of its task is
            except STORE_ERRORS:
                pass  # the store is away: the step's own task meets it too
            try:
                ctx.runtime.publisher.send_step(step, job_id, attempt, ctx.worker.name)
            except PUBLISH_ERRORS:
                log.warning("could not send the %s of %s attempt %s; the watcher will", step.value, job_id, attempt)
            return


def write_held(ctx: StepContext, keys: Iterable[tuple[str, int]] | None = None) -> None:
    """Write on their own the seconds the context holds for these attempts (all: None), whose next write will
    not be in this process: their wait went as a message, or the worker stops. Fenced to the owner as any
    record; those the store cannot take now are held again."""
    if ctx.held_seconds is None:
        return
    held = ctx.held_seconds.take_all() if keys is None else {key: ctx.held_seconds.take(key) for key in keys}
    for (job_id, attempt), seconds in held.items():
        for step, took in seconds.items():
            try:
                ctx.runtime.store.attempts.record_step(job_id, attempt, step, took, owner=ctx.worker.name)
            except STORE_ERRORS:
                ctx.held_seconds.restore((job_id, attempt), {step: took})
