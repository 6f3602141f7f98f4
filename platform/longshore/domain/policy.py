"""Retry and requeue policy as data, and the one pure function that decides what follows an attempt.

Three kinds of "again", kept apart on purpose:
- a *step retry* is the platform retrying one engine or store call that hiccuped
  (Celery's retry, with backoff); the user never sees it;
- a *job retry* is a new attempt because the job's own command failed; it uses up
  the retries the job asked for;
- a *requeue* is a new attempt because the infrastructure lost the old one (its worker
  or engine went away); it never uses up the job's retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from longshore.domain.outcome import Outcome
from longshore.domain.status import JobStatus
from longshore.domain.steps import Step

#: Exit codes of a container stopped by a signal (SIGKILL, SIGTERM) or by the engine itself:
#: what a job's containers show when their engine restarts under them.
KILLED_BY_ENGINE_EXIT_CODES = frozenset({137, 143, 255})


@dataclass(frozen=True, kw_only=True)
class StepRetry:
    """How the platform retries one step on a transient failure: exponential backoff, full jitter."""

    max_retries: int
    backoff_seconds: int  #: the first backoff; it doubles on each retry
    backoff_max_seconds: int  #: no single backoff is longer than this


@dataclass(frozen=True, kw_only=True)
class Policies:
    """Every retry and requeue rule of the lifecycle, built once from settings."""

    steps: Mapping[Step, StepRetry]
    #: A step redelivered more often than this (its worker keeps dying) fails the job
    #: instead of killing workers forever.
    max_redeliveries: int
    #: How far around an engine outage a signal death still counts as the engine's doing.
    engine_outage_margin_seconds: float
    #: Platform requeues of one job before it ends `lost` instead of hopping from host to host.
    max_requeues: int
    engine_killed_exit_codes: frozenset[int] = KILLED_BY_ENGINE_EXIT_CODES

    def step(self, step: Step) -> StepRetry:
        """The retry rule of `step`."""
        return self.steps[step]

    def redeliveries_exhausted(self, count: int) -> bool:
        """True once a step of an attempt has been redelivered more than allowed."""
        return count > self.max_redeliveries

    def engine_may_have_killed(self, outcome: Outcome) -> bool:
        """True when a failure looks like a signal death the engine could have dealt (worth asking the store)."""
        return (outcome.status is JobStatus.FAILED and outcome.exit_code in self.engine_killed_exit_codes
                and outcome.finished_at is not None)


@dataclass(frozen=True)
class Finish:
    """The job ends with this outcome."""

    outcome: Outcome


@dataclass(frozen=True)
class RetryJob:
    """The job's own command failed and it has retries left: a new attempt after its delay."""

    outcome: Outcome
    delay_seconds: float


@dataclass(frozen=True)
class Requeue:
    """The infrastructure lost the attempt: a new attempt that does not use up the job's retries."""

    outcome: Outcome
    reason: str


Decision = Finish | RetryJob | Requeue


def requeue_or_lose(outcome: Outcome, reason: str, *, requeues_left: int) -> Requeue | Finish:
    """The infrastructure lost an attempt: requeue it, unless the job's requeue budget is spent,
    in which case it ends `lost` with the reason (a poison job must not hop from host to host forever)."""
    if requeues_left > 0:
        return Requeue(outcome, reason)
    return Finish(Outcome(status=JobStatus.LOST, exit_code=outcome.exit_code,
                          error=f"{reason}; the platform lost this job too often, giving up rather than "
                                "requeueing it again"))


def decide(outcome: Outcome, *, retries_left: int, retry_delay_seconds: float, engine_restarted: bool,
           requeues_left: int) -> Decision:
    """What follows an attempt whose container ended with `outcome`.

    `engine_restarted` says the engine was down when the container died by a signal
    (`Policies.engine_may_have_killed`, confirmed by the worker registry).
    """
    if outcome.status is JobStatus.FAILED and engine_restarted:
        return requeue_or_lose(outcome, "attempt lost: the Docker engine restarted while the job ran",
                               requeues_left=requeues_left)
    if outcome.status is JobStatus.FAILED and retries_left > 0:
        return RetryJob(outcome, retry_delay_seconds)
    return Finish(outcome)
