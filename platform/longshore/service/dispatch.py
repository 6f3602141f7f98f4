"""Concluding an attempt and publishing attempts: the store write first, then the message.

The store write and the publish are not atomic. What was written but not published
(the process died in between, the broker was away, or a retry's delay has not
passed) stays in the store with no `published_at`, and `publish_due` publishes it
when it is due, once, whoever runs it.
"""

from __future__ import annotations

import logging
import time
from typing import Mapping

from longshore.broker.publish import PUBLISH_ERRORS
from longshore.domain.outcome import Outcome
from longshore.domain.policy import Decision, Finish, Requeue, RetryJob
from longshore.domain.records import Job
from longshore.domain.status import AttemptStatus
from longshore.domain.steps import Step
from longshore.service.runtime import Runtime

log = logging.getLogger(__name__)


def publish_attempt(rt: Runtime, job_id: str, attempt: int, stack: str, priority: int) -> bool:
    """Put an attempt's first step on its stack's queue and record it; False (left for `publish_due`)
    when the broker cannot be reached."""
    try:
        rt.publisher.publish_pull(job_id, attempt, stack, priority=priority)
    except PUBLISH_ERRORS:
        log.warning("could not publish job %s attempt %s; it waits in the store", job_id, attempt, exc_info=True)
        return False
    rt.store.jobs.mark_published(job_id, attempt, by=rt.embedded_name)
    return True


def publish_due(rt: Runtime, *, stacks: list[str] | None = None, lost_publishers: list[str] = ()) -> int:
    """Publish the attempts that wait in the store and are due, or whose pull sat with a worker that is
    lost or never claimed it; the number published."""
    janitor = rt.settings.janitor
    published = 0
    for due in rt.store.reads.due(grace_seconds=janitor.unpublished_after_seconds, stacks=stacks,
                                  lost_publishers=lost_publishers,
                                  unclaimed_for_seconds=janitor.republish_after_seconds):
        if not rt.store.reads.take_publish(due, by=rt.embedded_name):
            continue  # another publisher took it
        try:
            rt.publisher.publish_pull(due.job_id, due.attempt, due.stack, priority=due.priority)
        except PUBLISH_ERRORS:
            rt.store.reads.give_back_publish(due)
            log.warning("could not publish job %s attempt %s; trying again later", due.job_id, due.attempt)
            break
        published += 1
    return published


def finish(rt: Runtime, job_id: str, attempt: int, outcome: Outcome, *, owner: str | None = None,
           took: tuple[Step, float] | None = None, known: Job | None = None,
           held: Mapping[Step, float] | None = None) -> bool:
    """End the job with `outcome` once (guarded in the store); False if it had ended or moved on. `took`: the
    step that ended it and its seconds, recorded in the same write, with `held` (earlier steps' seconds);
    `known`: the job as that step read it."""
    finished = rt.store.jobs.finish(job_id, attempt, outcome, owner=owner, took=took, known=known, held=held)
    if finished is None:
        return False
    rt.events.job_finished(finished)
    return True


def conclude(rt: Runtime, job_id: str, attempt: int, decision: Decision, *, stack: str | None = None,
             owner: str | None = None, unstarted_only: bool = False, publish: bool = True) -> bool:
    """Carry out what the policy decided for an ended attempt; False if the job had moved on.
    `owner` fences the write to the attempt's owner; `stack` is the job's (read when not given);
    without `publish` a new attempt waits in the store for `publish_due`."""
    if isinstance(decision, Finish):
        return finish(rt, job_id, attempt, decision.outcome, owner=owner)
    if isinstance(decision, RetryJob):
        ended, error, user_retry = AttemptStatus.ended_as(decision.outcome.status), decision.outcome.error, True
        not_before = time.time() + decision.delay_seconds if decision.delay_seconds > 0 else None
    elif isinstance(decision, Requeue):
        # A lost attempt is the platform's fault: it does not use up the job's own retries.
        ended, error, user_retry, not_before = AttemptStatus.LOST, decision.reason, False, None
    else:
        raise TypeError(f"not a decision: {decision!r}")
    if not rt.store.jobs.next_attempt(job_id, attempt, ended, error=error, exit_code=decision.outcome.exit_code,
                                      user_retry=user_retry, owner=owner, unstarted_only=unstarted_only,
                                      not_before=not_before):
        return False
    if publish and not_before is None:  # a delayed attempt waits in the store: no message held for its delay
        job = rt.store.jobs.get(job_id)
        publish_attempt(rt, job_id, attempt + 1, job.stack, job.priority)
    return True
