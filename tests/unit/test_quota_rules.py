"""Quotas as data: a project's own values over the installation's, checked; the request-rate bucket."""

from __future__ import annotations

import pytest

from longshore.domain.quotas import Quotas, RequestRate, check_quotas
from longshore.errors import InvalidJob


def test_a_projects_own_quotas_win_and_unset_ones_are_the_installations():
    installation = Quotas(10000, 0, 100.0)
    assert Quotas(5, None, 0.0).effective(installation) == Quotas(5, 0, 0.0)
    assert Quotas().effective(installation) == installation


@pytest.mark.parametrize("fields, words", [
    ({"max_queued_jobs": -1}, "max_queued_jobs: must be a whole number"),
    ({"max_running_jobs": 1.5}, "max_running_jobs: must be a whole number"),
    ({"max_running_jobs": True}, "max_running_jobs: must be a whole number"),
    ({"requests_per_second": float("nan")}, "requests_per_second: must be 0"),
    ({"requests_per_second": 1e9}, "requests_per_second: must be 0"),
    ({"requests_per_second": "5"}, "requests_per_second: must be 0"),
])
def test_bad_quotas_are_refused_naming_the_field(fields, words):
    with pytest.raises(InvalidJob, match=words):
        check_quotas(**fields)


def test_the_bucket_passes_a_burst_of_twice_the_rate_then_says_how_long_to_wait():
    now = [0.0]
    rate = RequestRate(clock=lambda: now[0])
    assert [rate.take("a", 2) for _ in range(4)] == [0.0] * 4
    assert rate.take("a", 2) == pytest.approx(0.5)  # one token comes back every half second
    assert rate.take("b", 2) == 0.0  # another project has its own bucket
    now[0] += 0.5
    assert rate.take("a", 2) == 0.0 and rate.take("a", 2) > 0
    assert all(rate.take("a", 0) == 0.0 for _ in range(100))  # 0: no limit
