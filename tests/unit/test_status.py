"""The one transition table (pure)."""

from __future__ import annotations

from longshore.domain.status import ALLOWED_TRANSITIONS, FINAL_STATUSES, AttemptStatus, JobStatus, sources_of


def test_final_statuses_allow_no_transition():
    for status in JobStatus:
        assert (ALLOWED_TRANSITIONS[status] == frozenset()) == status.final


def test_a_job_returns_to_queued_only_from_an_unfinished_status():
    assert sources_of(JobStatus.QUEUED) == {JobStatus.QUEUED, JobStatus.RUNNING}


def test_only_a_queued_job_starts_running():
    assert sources_of(JobStatus.RUNNING) == {JobStatus.QUEUED}


def test_every_final_status_but_rejected_is_reachable_from_queued_and_running():
    for status in FINAL_STATUSES - {JobStatus.REJECTED}:
        assert sources_of(status) == {JobStatus.QUEUED, JobStatus.RUNNING}
    assert sources_of(JobStatus.REJECTED) == set()  # a rejected job is stored so, never moved there


def test_every_final_job_status_of_a_job_that_ran_is_an_attempt_status():
    for status in FINAL_STATUSES - {JobStatus.REJECTED}:
        assert AttemptStatus.ended_as(status).value == status.value


def test_every_status_maps_onto_one_of_ironworkers():
    from longshore.domain.status import JobStatus

    assert {s.ironworker for s in JobStatus} == {"queued", "running", "complete", "error", "cancelled", "killed",
                                                 "timeout"}
    assert (JobStatus.SUCCEEDED.ironworker, JobStatus.TIMED_OUT.ironworker, JobStatus.OOM_KILLED.ironworker) == (
        "complete", "timeout", "killed")
