"""The distributed path: RabbitMQ, PostgreSQL, real workers by stack, a real Docker engine."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from support.helpers import wait_until
from support.services import BROKER_URL


@pytest.fixture
def client(distributed):
    import longshore

    return longshore


def test_jobs_run_only_on_workers_serving_their_stack(client, start_worker, wait_reaped):
    # Given a worker serving only stack alpha
    alpha_worker = start_worker("alpha")
    # When jobs for alpha and beta are submitted
    alphas = [client.submit("alpha", ["sh", "-c", f"echo alpha {i}"]) for i in range(3)]
    betas = [client.submit("beta", ["sh", "-c", f"echo beta {i}"]) for i in range(2)]
    # Then alpha's succeed while beta's stay queued
    for job in alphas:
        assert job.wait(timeout=60).status.value == "succeeded"
    time.sleep(1.0)
    assert [job.status.value for job in betas] == ["queued", "queued"]
    # When a worker for beta starts, then beta's succeed too
    beta_worker = start_worker("beta")
    for job in betas:
        finished = job.wait(timeout=60)
        assert finished.status.value == "succeeded", finished.error
    assert betas[1].logs() == "beta 1\n"
    # And every attempt records the worker that ran it
    jobs = alphas[0]._runtime.store.jobs
    assert {jobs.attempts(j.id)[0].worker for j in alphas} == {alpha_worker.name}
    assert {jobs.attempts(j.id)[0].worker for j in betas} == {beta_worker.name}
    # And no job container is left a few seconds after the last job
    assert wait_reaped([j.id for j in alphas + betas], timeout=10) == []
    # And each attempt says how long each of its steps took (a start's seconds are held for the attempt's next
    # write, its wait's or its reap's: none is lost)
    for job in alphas + betas:
        took = jobs.attempts(job.id)[0].step_seconds
        assert all((took[step] or 0) > 0 for step in ("pull", "create", "start", "wait", "reap")), took


def test_a_plain_celery_client_enqueues_a_job_that_runs(client, start_worker, wait_reaped):
    # Given a worker, and a program that knows Celery but not Longshore
    start_worker("busybox")
    program = textwrap.dedent(f"""
        import sys
        from celery import Celery
        app = Celery(broker={BROKER_URL!r})
        result = app.send_task(
            "longshore.submit",
            kwargs={{"stack": "busybox", "command": ["sh", "-c", "cat $PAYLOAD_FILE"],
                    "payload": {{"from": "celery"}}, "env": {{}}, "timeout": 30}},
            queue="longshore.control",
        )
        print(result.id)
        assert "longshore" not in sys.modules
    """)
    # When it sends longshore.submit
    sent = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("LONGSHORE_")})
    assert sent.returncode == 0, sent.stderr
    job_id = sent.stdout.strip()
    # Then the job (whose id is the message's id) runs and succeeds
    handle = client.JobHandle(job_id)
    wait_until(lambda: _exists(handle), timeout=30, what="the submit message to be handled")
    finished = handle.wait(timeout=30)
    assert finished.status.value == "succeeded", finished.error
    assert handle.logs() == '{"from": "celery"}'
    assert wait_reaped([job_id]) == []


def _exists(handle) -> bool:
    try:
        handle.job()
    except LookupError:
        return False
    return True


def test_a_missing_image_fails_fast_with_a_clear_error_and_no_retry(client, start_worker, registry):
    start_worker("busybox")
    started = time.monotonic()
    job = client.submit("busybox", ["true"], image=f"{registry}/longshore/no-such-image:1")
    finished = job.wait(timeout=30)
    assert time.monotonic() - started < 10
    assert finished.status.value == "failed"
    assert "pull failed (404)" in finished.error and finished.exit_code is None
    attempts = job.attempts()
    assert len(attempts) == 1 and attempts[0].container_id is None


def test_an_unknown_registry_fails_fast(client, start_worker):
    start_worker("busybox")
    job = client.submit("busybox", ["true"], image="registry.invalid/longshore/busybox:1")
    finished = job.wait(timeout=30)
    assert finished.status.value == "failed"
    assert "registry registry.invalid is unknown" in finished.error


def test_an_unknown_stack_is_refused_at_submit_with_nothing_queued(client, rabbitmq):
    from kombu import Connection

    from longshore.errors import UnknownStack
    from longshore.service.runtime import get_runtime

    reads = get_runtime().store.reads
    before = len(reads.list_jobs(limit=10_000))
    with pytest.raises(UnknownStack, match=r"unknown stack 'cobol'; known stacks: alpha, beta, busybox, fresh"):
        client.submit("cobol", ["true"])
    assert len(reads.list_jobs(limit=10_000)) == before
    with Connection(rabbitmq) as connection:
        channel = connection.channel()
        with pytest.raises(Exception, match="NOT_FOUND"):
            channel.queue_declare("stack.cobol", passive=True)


def test_an_image_is_pulled_from_a_registry(client, start_worker, registry_only_image):
    # Given an image that exists only in the registry
    start_worker("fresh")
    # When a job on an always-pull stack uses it
    job = client.submit("fresh", ["echo", "pulled"], image=registry_only_image)
    finished = job.wait(timeout=60)
    # Then it was pulled and ran
    assert finished.status.value == "succeeded", finished.error
    assert job.logs() == "pulled\n"
    assert job.attempts()[0].step_seconds["pull"] > 0


def test_a_worker_that_stops_while_its_job_runs_writes_how_long_the_start_took(client, start_worker, wait_reaped):
    # Given a job running on a worker (its start's seconds held there for its wait: `service.held_seconds`)
    first = start_worker("busybox", slots=1)
    job = client.submit("busybox", ["sleep", "60"])
    wait_until(lambda: job.status.value == "running", timeout=30, what="the job to run")
    # When the worker stops (a deploy) while the job still runs
    first.stop()
    # Then the start's seconds are in the store all the same
    [attempt] = job.attempts()
    assert attempt.finished_at is None and (attempt.step_seconds["start"] or 0) > 0, attempt.step_seconds
    # And its next life follows the job on: a cancel stops and removes the container
    start_worker("busybox", slots=1, name=first.name)
    job.cancel()
    assert job.wait(timeout=30).status.value == "cancelled"
    assert wait_reaped([job.id], timeout=30) == []
