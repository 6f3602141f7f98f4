"""How an attempt ended, and what the policy decides follows it (pure)."""

from __future__ import annotations

import pytest

from longshore.domain.outcome import Outcome, container_outcome
from longshore.domain.policy import Finish, Requeue, RetryJob, decide
from longshore.domain.status import JobStatus
from longshore.settings import Settings


def ended(exit_code: int, *, timed_out: bool = False, oom_killed: bool = False) -> Outcome:
    return container_outcome(timed_out=timed_out, exit_code=exit_code, oom_killed=oom_killed, timeout_seconds=30,
                             memory_bytes=64 << 20, finished_at=1000.0)


@pytest.mark.parametrize("outcome,status,words", [
    (ended(0), JobStatus.SUCCEEDED, None),
    (ended(3), JobStatus.FAILED, "the job's command exited with code 3"),
    (ended(137, timed_out=True), JobStatus.TIMED_OUT, "killed after running past its timeout of 30 seconds"),
    (ended(137, oom_killed=True), JobStatus.OOM_KILLED, "out of memory (limit 64 MiB: its memory 64 MiB and its disk 0 MiB"),
    (ended(137, timed_out=True, oom_killed=True), JobStatus.TIMED_OUT, "timeout"),
])
def test_how_a_container_ended_is_a_result(outcome, status, words):
    assert outcome.status is status
    assert (outcome.error is None) if words is None else (words in outcome.error)


def test_a_success_finishes_whatever_retries_are_left():
    assert decide(ended(0), retries_left=3, retry_delay_seconds=1, engine_restarted=False, requeues_left=3) == Finish(ended(0))


def test_a_failure_with_retries_left_is_retried_after_its_delay():
    decision = decide(ended(3), retries_left=1, retry_delay_seconds=2.5, engine_restarted=False, requeues_left=3)
    assert decision == RetryJob(ended(3), 2.5)


def test_a_failure_without_retries_left_finishes_failed():
    assert decide(ended(3), retries_left=0, retry_delay_seconds=0, engine_restarted=False, requeues_left=3) == Finish(ended(3))


@pytest.mark.parametrize("outcome", [ended(1, timed_out=True), ended(137, oom_killed=True)])
def test_timeouts_and_oom_kills_are_never_retried(outcome):
    assert isinstance(decide(outcome, retries_left=5, retry_delay_seconds=0, engine_restarted=False, requeues_left=3), Finish)


def test_a_signal_death_during_an_engine_outage_is_requeued_without_using_retries():
    decision = decide(ended(137), retries_left=0, retry_delay_seconds=0, engine_restarted=True, requeues_left=3)
    assert isinstance(decision, Requeue) and "engine restarted" in decision.reason


@pytest.mark.parametrize("exit_code,asks", [(137, True), (143, True), (255, True), (1, False), (0, False)])
def test_only_signal_deaths_make_the_worker_ask_about_an_engine_outage(exit_code, asks):
    policies = Settings.from_env({}).policies
    assert policies.engine_may_have_killed(ended(exit_code)) is asks


def test_a_poison_job_ends_lost_when_its_requeue_budget_is_spent():
    # Given a job the platform lost as often as its budget allows, when it is lost once more
    decision = decide(ended(137), retries_left=5, retry_delay_seconds=0, engine_restarted=True, requeues_left=0)
    # Then it ends lost, with the reason, instead of hopping to another host
    assert isinstance(decision, Finish) and decision.outcome.status is JobStatus.LOST
    assert "engine restarted" in decision.outcome.error and "lost this job too often" in decision.outcome.error


def test_a_refused_result_is_named_in_the_error_whatever_the_exit_code():
    outcome = container_outcome(timed_out=False, exit_code=0, oom_killed=False, timeout_seconds=30,
                                memory_bytes=64 << 20, result_error="result refused: $RESULT_FILE is a directory")
    assert outcome.status is JobStatus.SUCCEEDED and outcome.error.startswith("result refused")
