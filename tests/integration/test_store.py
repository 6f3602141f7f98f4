"""Guarded, atomic status transitions, against the real PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from longshore.domain.outcome import Outcome
from longshore.domain.records import NewJob
from longshore.domain.status import JobStatus
from longshore.store import Store


@pytest.fixture
def store(postgres):
    return Store(postgres)


def new_job(**overrides):
    fields = dict(stack="busybox", image="longshore/busybox:1", command=["true"], env={}, payload="{}",
                  timeout_seconds=10, memory_bytes=64 << 20, cpus=0.5)
    return NewJob(**{**fields, **overrides})


def ended(status: JobStatus, exit_code: int | None = None) -> Outcome:
    return Outcome(status=status, exit_code=exit_code)


def test_a_job_finishes_once_and_never_moves_backwards(store):
    job_id = store.jobs.create(new_job())
    assert store.jobs.mark_running(job_id, 1)
    assert store.jobs.finish(job_id, 1, ended(JobStatus.SUCCEEDED, 0))
    # A duplicate or late message can neither finish it again nor restart it
    assert not store.jobs.finish(job_id, 1, ended(JobStatus.FAILED, 1))
    assert not store.jobs.mark_running(job_id, 1)
    job = store.jobs.get(job_id)
    assert (job.status, job.exit_code) == (JobStatus.SUCCEEDED, 0)


def test_a_stale_attempt_cannot_touch_the_job(store):
    job_id = store.jobs.create(new_job())
    assert not store.jobs.mark_running(job_id, 2)
    assert not store.jobs.finish(job_id, 2, ended(JobStatus.SUCCEEDED))
    assert store.jobs.get(job_id).status is JobStatus.QUEUED


def test_waiting_returns_when_another_connection_finishes_the_job(store, postgres):
    job_id = store.jobs.create(new_job())
    other = Store(postgres)
    threading.Timer(0.3, lambda: other.jobs.finish(job_id, 1, ended(JobStatus.SUCCEEDED, 0))).start()
    assert store.jobs.wait_finished(job_id, timeout=10).status is JobStatus.SUCCEEDED
