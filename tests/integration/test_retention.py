"""Retention against the real PostgreSQL: jobs that ended long ago lose their data (or go, with their attempts
and webhook deliveries) a bounded batch at a time; recent and unfinished jobs keep everything."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest
import sqlalchemy as sa

from longshore.domain.outcome import Outcome
from longshore.domain.records import NewJob
from longshore.domain.retention import SECONDS_PER_DAY
from longshore.domain.status import JobStatus
from longshore.errors import InvalidJob, JobNotFound
from longshore.store import Store
from longshore.store.schema import attempts, jobs, webhook_deliveries

#: Jobs of these tests end in 1970, long before any other test's: "the oldest first" is about them alone.
LONG_AGO = 1_000.0


@pytest.fixture
def store(postgres):
    return Store(postgres)


def new_job(**overrides) -> NewJob:
    fields = dict(stack="busybox", image="longshore/busybox:1", command=["true"], env={"MODE": "kept?"},
                  payload='{"n": 1}', disk_bytes=16 << 20, timeout_seconds=10, memory_bytes=64 << 20, cpus=0.5,
                  config='{"key": "value"}')
    return NewJob(**{**fields, **overrides})


def ended(store, *, ended_at: float, status: JobStatus = JobStatus.SUCCEEDED, **overrides) -> str:
    """A job that ran and ended at `ended_at` (created a second before), with output and a result."""
    me = f"retention-test-{uuid.uuid4().hex[:8]}"
    store.workers.register(me, host="h", engine_id="engine", instance="i", pid=1, stacks=["busybox"], slots=4)
    job_id = store.jobs.create(new_job(**overrides))
    store.attempts.claim(job_id, 1, worker=me, engine="engine", host="h", slots=4)
    store.jobs.begin_running(job_id, 1, owner=me)
    store.jobs.finish(job_id, 1, Outcome(status=status, exit_code=0, output=b"secret output", result=b"{}"), owner=me)
    backdate(store, job_id, created_at=ended_at - 1, started_at=ended_at - 1, finished_at=ended_at)
    return job_id


def backdate(store, job_id: str, **times: float) -> None:
    with store.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(**times))


def kept_everything(job) -> bool:
    return (job.output, job.result, job.payload, job.env, job.config, job.erased_at) == (
        b"secret output", b"{}", '{"n": 1}', {"MODE": "kept?"}, '{"key": "value"}', None)


def test_jobs_that_ended_long_ago_lose_their_data_and_recent_or_unfinished_ones_keep_it(store):
    from longshore.service import submit as submitting
    from longshore.service.runtime import get_runtime

    # Given a job that ended 40 days ago, one that ended yesterday, and one queued and one running for 40 days
    now = time.time()
    old = ended(store, ended_at=now - 40 * SECONDS_PER_DAY)
    recent = ended(store, ended_at=now - SECONDS_PER_DAY)
    queued = store.jobs.create(new_job())
    backdate(store, queued, created_at=now - 40 * SECONDS_PER_DAY)
    running = store.jobs.create(new_job())
    me = f"retention-test-{uuid.uuid4().hex[:8]}"
    store.workers.register(me, host="h", engine_id="engine", instance="i", pid=1, stacks=["busybox"], slots=4)
    store.attempts.claim(running, 1, worker=me, engine="engine", host="h", slots=4)
    store.jobs.begin_running(running, 1, owner=me)
    backdate(store, running, created_at=now - 40 * SECONDS_PER_DAY, started_at=now - 40 * SECONDS_PER_DAY)
    # When the data of jobs that ended over 30 days ago is deleted
    store.retention.erase_data(ended_before=now - 30 * SECONDS_PER_DAY, limit=1000)
    # Then the old job lost its output, result, payload, config and env, and says when; the rest it keeps
    job = store.jobs.get(old)
    assert (job.output, job.result, job.payload, job.env, job.config) == (None, None, "", {}, None)
    assert job.erased_at == pytest.approx(time.time(), abs=60)
    assert (job.status, job.exit_code, job.created_at) == (JobStatus.SUCCEEDED, 0, now - 40 * SECONDS_PER_DAY - 1)
    assert [attempt.status.value for attempt in store.jobs.attempts(old)] == ["succeeded"]
    # And the recent and the unfinished jobs keep everything
    assert kept_everything(store.jobs.get(recent))
    for unfinished in (queued, running):
        job = store.jobs.get(unfinished)
        assert (job.payload, job.env, job.config, job.erased_at) == ('{"n": 1}', {"MODE": "kept?"}, '{"key": "value"}',
                                                                       None)
    # And the erased job cannot be retried: its payload is gone
    with pytest.raises(InvalidJob, match="submit it anew"):
        submitting.retry(get_runtime(), old)


def test_a_batch_erases_at_most_its_limit_oldest_first_and_never_twice(store):
    # Given five jobs that ended long ago, one second apart
    ids = [ended(store, ended_at=LONG_AGO + i) for i in range(5)]
    cutoff = LONG_AGO + 100
    # When batches of two are taken, then each erases two, the oldest first, and the last what is left
    assert store.retention.erase_data(ended_before=cutoff, limit=2) == 2
    assert [store.jobs.get(job_id).erased_at is not None for job_id in ids] == [True, True, False, False, False]
    assert store.retention.erase_data(ended_before=cutoff, limit=2) == 2
    assert store.retention.erase_data(ended_before=cutoff, limit=2) == 1
    # And once all are erased, nothing is left to do
    assert store.retention.erase_data(ended_before=cutoff, limit=2) == 0


def test_jobs_past_the_job_retention_go_with_their_attempts_and_deliveries_and_the_counts_follow(store):
    # Given, on a stack of their own, a job with a webhook that ended long ago and one queued as long ago
    stack = f"retained-{uuid.uuid4().hex[:6]}"
    gone = ended(store, ended_at=LONG_AGO, stack=stack, webhook="https://hooks.example.com/h")
    waiting = store.jobs.create(new_job(stack=stack))
    backdate(store, waiting, created_at=LONG_AGO)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(webhook_deliveries.c.job_id == gone)).scalar() == 3
    # When jobs that ended before then are deleted
    while store.retention.delete_jobs(ended_before=LONG_AGO + 100, limit=1):
        pass
    # Then the ended job is gone with its attempts and deliveries; the queued one stays
    with pytest.raises(JobNotFound):
        store.jobs.get(gone)
    with store.engine.connect() as conn:
        for table in (attempts, webhook_deliveries):
            assert conn.execute(sa.select(sa.func.count()).where(table.c.job_id == gone)).scalar() == 0
    assert store.jobs.get(waiting).status is JobStatus.QUEUED
    # And the exporter's counts no longer hold the deleted job, but still count that it succeeded
    counts = store.reads.installation_counts(overdue_margin_seconds=60)
    assert counts.current[(stack, "succeeded")] == 0 and counts.totals[(stack, "succeeded")] == 1
    assert counts.current[(stack, "queued")] == 1


def test_the_janitors_pass_applies_the_installations_retention(store):
    from longshore.service.janitor import JanitorReport, apply_retention
    from longshore.service.runtime import get_runtime

    # Given an installation keeping data 30 days and jobs 60, and jobs that ended 90, 40 and 1 day ago
    rt = get_runtime()
    janitor = dataclasses.replace(rt.settings.janitor, retention_output_days=30, retention_job_days=60)
    rt = dataclasses.replace(rt, settings=dataclasses.replace(rt.settings, janitor=janitor), store=store)
    now = time.time()
    ninety, forty, one = (ended(store, ended_at=now - days * SECONDS_PER_DAY) for days in (90, 40, 1))
    # When the janitor applies retention
    report = JanitorReport()
    apply_retention(rt, report)
    # Then the job of 90 days is gone, that of 40 has no data left, that of yesterday is whole
    with pytest.raises(JobNotFound):
        store.jobs.get(ninety)
    assert store.jobs.get(forty).erased_at is not None
    assert kept_everything(store.jobs.get(one))
    assert report.deleted >= 1 and report.erased >= 1 and "deleted" in report.summary()
