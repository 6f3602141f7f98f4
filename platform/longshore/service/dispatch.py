"""Concluding an attempt and publishing a new one: the store write first, then the message.

The store write and the publish are not atomic; what was written but never
published is found by the janitor (`published_at` stays empty) and published then.
"""

from __future__ import annotations

import dataclasses
import logging

from longshore.domain.outcome import Outcome
from longshore.domain.policy import Decision, Finish, Requeue, RetryJob
from longshore.service.runtime import Runtime

log = logging.getLogger(__name__)


def publish_attempt(rt: Runtime, job_id: str, attempt: int, stack: str, *, countdown: float = 0) -> None:
    """Put an attempt's first step on its stack's queue, and record that it got there."""
    rt.publisher.publish_pull(job_id, attempt, stack, countdown=countdown)
    rt.store.jobs.mark_published(job_id)


def finish(rt: Runtime, job_id: str, attempt: int, outcome: Outcome) -> bool:
    """End the job with `outcome` once (guarded in the store); False if it had ended or moved on."""
    if not rt.store.jobs.finish(job_id, attempt, outcome):
        return False
    rt.events.job_finished(rt.store.jobs.get(job_id))
    return True


def conclude(rt: Runtime, job_id: str, attempt: int, decision: Decision, *, stack: str | None = None) -> bool:
    """Carry out what the policy decided for an ended attempt; False if the job had moved on.
    `stack` is the job's (read from the store when not given) for publishing a new attempt."""
    if isinstance(decision, Finish):
        return finish(rt, job_id, attempt, decision.outcome)
    if isinstance(decision, RetryJob):
        ended, user_retry, countdown = decision.outcome, True, decision.delay_seconds
    elif isinstance(decision, Requeue):
        # A lost attempt is the platform's fault: it does not use up the job's own retries.
        ended, user_retry, countdown = dataclasses.replace(decision.outcome, error=decision.reason), False, 0
    else:
        raise TypeError(f"not a decision: {decision!r}")
    if not rt.store.jobs.next_attempt(job_id, attempt, ended, user_retry=user_retry):
        return False
    publish_attempt(rt, job_id, attempt + 1, stack or rt.store.jobs.get(job_id).stack, countdown=countdown)
    return True
