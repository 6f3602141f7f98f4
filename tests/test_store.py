"""Guarded, atomic status transitions, against the real PostgreSQL."""

from __future__ import annotations

import pytest

from longshore.status import ALLOWED_TRANSITIONS, JobStatus
from longshore.store import NewJob, Store


@pytest.fixture
def store(postgres):
    return Store(postgres)


def new_job(**overrides):
    fields = dict(stack="busybox", image="longshore/busybox:1", command=["true"], env={}, payload="{}",
                  timeout_seconds=10, memory_bytes=64 << 20, cpus=0.5)
    return NewJob(**{**fields, **overrides})


def test_a_job_finishes_once_and_never_moves_backwards(store):
    job_id = store.create_job(new_job())
    assert store.mark_running(job_id, 1)
    assert store.finish(job_id, 1, JobStatus.SUCCEEDED, exit_code=0)
    # A duplicate or late message can neither finish it again nor restart it
    assert not store.finish(job_id, 1, JobStatus.FAILED, exit_code=1)
    assert not store.mark_running(job_id, 1)
    job = store.get_job(job_id)
    assert (job.status, job.exit_code) == (JobStatus.SUCCEEDED, 0)


def test_a_stale_attempt_cannot_touch_the_job(store):
    job_id = store.create_job(new_job())
    assert not store.mark_running(job_id, 2)
    assert not store.finish(job_id, 2, JobStatus.SUCCEEDED)
    assert store.get_job(job_id).status is JobStatus.QUEUED


def test_final_statuses_allow_no_transition():
    for status in JobStatus:
        assert (ALLOWED_TRANSITIONS[status] == frozenset()) == status.final


def test_waiting_returns_when_another_connection_finishes_the_job(store, postgres):
    import threading

    job_id = store.create_job(new_job())
    other = Store(postgres)
    threading.Timer(0.3, lambda: other.finish(job_id, 1, JobStatus.SUCCEEDED, exit_code=0)).start()
    assert store.wait_finished(job_id, timeout=10).status is JobStatus.SUCCEEDED
