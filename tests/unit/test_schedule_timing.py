"""The schedule's timing and the catch-up rule (pure)."""

from __future__ import annotations

import pytest

from longshore.domain.schedules import Plan, Timing, build_timing, plan
from longshore.errors import InvalidJob

EVERY_MINUTE = Timing(start_at=1000.0, run_every=60.0, run_times=None, end_at=None)


def test_nothing_is_due_before_the_next_occurrence():
    assert plan(EVERY_MINUTE, 0, 0, now=999.9) is None
    assert plan(EVERY_MINUTE, 1, 1, now=1059.9) is None


def test_an_occurrence_runs_when_due_and_the_next_follows():
    assert plan(EVERY_MINUTE, 0, 0, now=1000.0) == Plan(occurrence=0, skipped=0, following=1)
    assert plan(EVERY_MINUTE, 1, 1, now=1061.0) == Plan(occurrence=1, skipped=0, following=2)


def test_after_downtime_only_the_latest_due_occurrence_runs_and_the_rest_are_skipped():
    # Down from just after occurrence 1 until past occurrence 6: one run (6), four skipped (2-5).
    assert plan(EVERY_MINUTE, 2, 2, now=1000 + 6 * 60 + 5) == Plan(occurrence=6, skipped=4, following=7)


def test_run_times_and_end_at_end_a_schedule():
    twice = Timing(start_at=1000.0, run_every=60.0, run_times=2, end_at=None)
    assert plan(twice, 0, 0, now=1000) == Plan(occurrence=0, skipped=0, following=1)
    assert plan(twice, 1, 1, now=1060) == Plan(occurrence=1, skipped=0, following=None)
    until = Timing(start_at=1000.0, run_every=60.0, run_times=None, end_at=1150.0)  # occurrences 0, 1, 2
    assert plan(until, 0, 0, now=5000) == Plan(occurrence=2, skipped=2, following=None)
    once = Timing(start_at=1000.0, run_every=None, run_times=None, end_at=None)
    assert plan(once, 0, 0, now=4000) == Plan(occurrence=0, skipped=0, following=None)


@pytest.mark.parametrize("fields, words", [
    ({"run_every": 59}, "run_every: must be a number of seconds, at least 60"),
    ({"run_every": float("nan")}, "run_every"),
    ({"run_every": True}, "run_every"),
    ({"run_times": 0}, "run_times: must be a whole number"),
    ({"run_times": 3}, "run_times: a schedule that runs more than once needs run_every"),
    ({"start_at": "tomorrow"}, "start_at: 'tomorrow' is not an ISO 8601 time"),
    ({"start_at": "2026-11-28T09:00:00"}, "has no time zone"),
    ({"start_at": 2000, "end_at": 1000, "run_every": 60}, "end_at: must not be before start_at"),
    ({"start_at": 10 ** 11}, "start_at: is more than ten years ahead"),
    ({"start_at": 1000 - 11 * 366 * 86400}, "start_at: is more than ten years ago"),
    ({"start_at": 10 ** 400}, "start_at: must be a Unix time"),
])
def test_bad_timings_are_refused_naming_the_field(fields, words):
    with pytest.raises(InvalidJob, match=words):
        build_timing(fields, now=1000.0)


def test_iso_times_are_read_with_their_zone():
    timing = build_timing({"start_at": "2026-11-28T09:00:00Z", "run_every": 3600, "end_at": "2026-11-28T12:00:00+01:00"},
                          now=1_700_000_000)
    assert (timing.start_at, timing.end_at - timing.start_at) == (1_795_856_400.0, 7200.0)


def test_an_occurrence_due_exactly_now_is_that_occurrence_whatever_the_rounding():
    import random

    rng = random.Random(7)
    for _ in range(2000):
        timing = Timing(start_at=rng.uniform(0, 2e9), run_every=rng.uniform(60, 1e5), run_times=None, end_at=None)
        k = rng.randrange(0, 10_000)
        assert plan(timing, k, 0, now=timing.due_at(k)) == Plan(occurrence=k, skipped=0, following=k + 1)


def test_nothing_runs_past_the_last_occurrence_end_at_allows():
    until = Timing(start_at=1000.0, run_every=60.0, run_times=None, end_at=1120.0)  # 0, 1, 2 (at 1120)
    assert plan(until, 2, 2, now=1120.0) == Plan(occurrence=2, skipped=0, following=None)
    assert plan(until, 3, 3, now=9999.0) is None
