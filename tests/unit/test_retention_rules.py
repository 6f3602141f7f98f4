"""Retention as data: when a job's data or row is past its retention, and how a pass batches the deletes."""

from __future__ import annotations

import pytest

from longshore.domain.retention import SECONDS_PER_DAY, drain, ended_before
from longshore.errors import ConfigError
from longshore.settings import Settings


def test_a_retention_of_days_reaches_back_that_long_and_zero_keeps_forever():
    now = 1_000 * SECONDS_PER_DAY
    assert ended_before(now, 30) == now - 30 * SECONDS_PER_DAY
    assert ended_before(now, 0.5) == now - SECONDS_PER_DAY / 2
    assert ended_before(now, 0) is None


def test_the_installation_keeps_output_30_days_and_jobs_forever_unless_told_otherwise():
    janitor = Settings.from_env({}).janitor
    assert (janitor.retention_output_days, janitor.retention_job_days) == (0, 0)  # nothing is erased unless asked: an upgrade never deletes data
    told = Settings.from_env({"LONGSHORE_RETENTION_OUTPUT_DAYS": "7", "LONGSHORE_RETENTION_JOB_DAYS": "90"}).janitor
    assert (told.retention_output_days, told.retention_job_days) == (7, 90)
    with pytest.raises(ConfigError, match="LONGSHORE_RETENTION_JOB_DAYS"):
        Settings.from_env({"LONGSHORE_RETENTION_JOB_DAYS": "-1"})


def test_a_pass_takes_full_batches_until_one_comes_back_short():
    # Given 1,250 jobs to delete, taken at most 500 a batch
    left, asked = [1250], []

    def batch(limit: int) -> int:
        asked.append(limit)
        done = min(limit, left[0])
        left[0] -= done
        return done

    # When a pass drains them, then it took three batches, none larger than 500, and stopped at the short one
    assert drain(batch, batch_jobs=500, budget_seconds=60) == 1250
    assert asked == [500, 500, 500] and left == [0]


def test_a_pass_starts_no_batch_once_its_time_is_spent_and_the_next_pass_goes_on():
    # Given endless full batches, each taking two seconds of a five-second budget
    now = [0.0]

    def batch(limit: int) -> int:
        now[0] += 2
        return limit

    # When a pass drains, then it stops after the batch that crossed the budget
    assert drain(batch, batch_jobs=10, budget_seconds=5, clock=lambda: now[0]) == 30
    # And a batch with nothing to do ends a pass at once
    assert drain(lambda limit: 0, batch_jobs=10, budget_seconds=5, clock=lambda: now[0]) == 0
