"""Carrying out a step's `Next`: its record, its slot, its conclusion, then the step after it.

The step after a pull is a create, and after a create a start, on the same worker: `carry_out` hands
those back to the task that ran the step, which runs them at once (`run_here`) rather than sending each
through the broker to its own queue: two messages fewer per job (unless a monitor such as Flower asks
for task events, when every step is a message it can list). Each stays a step with its own record and its
own Celery task: one that fails here (the engine or the store away) is sent as its message, where its
retry policy takes over. A worker that dies in the middle has the message of the step before redelivered:
a pull's goes on from the create (`lifecycle.pull`), a create's is counted as before.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time

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
#: them (`StepContext.held`): nothing after a start depends on its record.
HELD_STEPS = frozenset({Step.START})
#: The steps `run_here` hands the job it was given: those run after the step before, a pull whose attempt
#: admission claimed (`worker.admission`), and a reap sent by the wait that concluded its attempt.
GIVEN_THE_JOB = frozenset({Step.PULL, *RUN_HERE.values(), Step.REAP})


def carry_out(ctx: StepContext, step: Step, job_id: str, attempt: int, after: Next, seconds: float, *,
              chain: bool = False) -> Step | None:
    """Make a step's `Next` happen; with `chain`, return its next step instead of sending it when RUN_HERE
    pairs the two and the job is still current when the record is written (else the next step is sent, and
    reads the job itself). A record the store refuses means the attempt is no longer this worker's: nothing
    more is done (its owner's watcher cleans up)."""
    rt, me = ctx.runtime, ctx.worker
    stack = after.record.stack if after.record else None
    if (step in HELD_STEPS and ctx.held is not None and after.record is not None and not after.record.fields
            and not (after.release or after.conclude)):
        ctx.held.hold((job_id, attempt), step, seconds)  # written with the attempt's next write
        rt.events.step_done(stack, step, seconds)
        after = dataclasses.replace(after, record=None)
    # earlier steps' seconds held for this step's write (none unless it writes)
    held = ctx.held.take((job_id, attempt)) if ctx.held is not None and after.record is not None else {}
    ends_job = step is Step.WAIT and isinstance(after.conclude, Finish)
    concluded = False  # the attempt's end was written here: the reap sent run here may trust the job as read
    if ends_job and after.record is not None and not after.record.fields:
        # A wait that ends the job: its record goes in the finishing write, one transaction rather than
        # two. If the job had ended or moved on, the record and the conclusion are carried out as below.
        if finish(rt, job_id, attempt, after.conclude.outcome, owner=me.name, took=(step, seconds), known=after.job,
                  held=held):
            rt.events.step_done(stack, step, seconds)
            after, concluded = dataclasses.replace(after, record=None, release=False, conclude=None), True
    # The step run here next goes on with the job this step read: only while that job is still current.
    here_next = chain and after.send is not None and RUN_HERE.get(step) is after.send
    if after.record is not None:
        record = functools.partial(rt.store.attempts.record_step, job_id, attempt, step, seconds, owner=me.name,
                                   release=after.release, **after.record.fields,
                                   **{f"{earlier.value}_seconds": took for earlier, took in held.items()})
        if not record(job_current=here_next):
            if not (here_next and record()):
                log.info("attempt %s of %s is no longer %s's: dropping its %s", attempt, job_id, me.name, step.value)
                return None
            here_next = False  # its job moved on since it was read: the next step, a message, reads it itself
        rt.events.step_done(after.record.stack, step, seconds)
    elif after.release:
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
            try:
                ctx.runtime.store.attempts.count_infra_retry(job_id, attempt)  # as a retry of its task is
            except STORE_ERRORS:
                pass  # the store is away: the step's own task meets it too
            try:
                ctx.runtime.publisher.send_step(step, job_id, attempt, ctx.worker.name)
            except PUBLISH_ERRORS:
                log.warning("could not send the %s of %s attempt %s; the watcher will", step.value, job_id, attempt)
            return
