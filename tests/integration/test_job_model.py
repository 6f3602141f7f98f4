"""IronWorker's job model, first part: priority, delays, labels and filters, manual retry, through the CLI,
the Python API and Celery-native submit, on RabbitMQ and PostgreSQL with real workers."""

from __future__ import annotations

import json
import time

import pytest

from support.helpers import longshore_cli as cli, wait_until
from support.services import BROKER_URL


def queue_depth(name: str) -> int:
    from kombu import Connection

    with Connection(BROKER_URL) as conn:
        _, depth, _ = conn.default_channel.queue_declare(name, passive=True)
    return depth


def test_a_higher_priority_job_starts_before_lower_ones_already_queued(client, start_worker):
    # Given a worker of one slot, busy with a job
    start_worker("busybox", slots=1)
    busy = client.submit("busybox", ["sleep", "3"])
    wait_until(lambda: busy.status.value == "running", timeout=30, what="the busy job to run")
    # When five priority-0 jobs are queued, then one of priority 2
    low = [client.submit("busybox", ["true"], label="low") for _ in range(5)]
    high = client.submit("busybox", ["true"], priority=2, label="high")
    # Then the priority-2 job starts next, before every priority-0 job
    for handle in [busy, *low, high]:
        assert handle.wait(timeout=90).status.value == "succeeded"
    started = {handle.id: handle.job().started_at for handle in [*low, high]}
    assert started[high.id] < min(started[h.id] for h in low), started


def test_a_delayed_job_waits_in_the_store_runs_once_when_due_and_a_cancelled_one_never(client, start_worker):
    from longshore.broker.routing import stack_queue

    # Given two workers (each publishes what is due: two publishers)
    start_worker("busybox", slots=2)
    start_worker("busybox", slots=2)
    # When a job is delayed 20 s, and another delayed job is cancelled while it waits
    delayed = client.submit("busybox", ["echo", "later"], delay=20)
    cancelled = client.submit("busybox", ["echo", "never"], delay=3)
    assert cancelled.cancel().status.value == "cancelled"
    # Then while it waits it is a row in the store, not a message: nothing is held for its delay
    time.sleep(2)
    job = delayed.job()
    assert job.status.value == "queued" and job.published_at is None
    assert job.not_before == pytest.approx(job.created_at + 20, abs=0.01)
    assert queue_depth(stack_queue("busybox")) == 0
    assert "delayed:   until" in cli("status", delayed.id).stdout
    # And it runs after its delay (±2 s), once
    done = delayed.wait(timeout=60)
    assert done.status.value == "succeeded" and delayed.logs() == "later\n"
    assert 20 <= done.started_at - done.created_at <= 22 + 1, done.started_at - done.created_at
    assert [a.number for a in delayed.attempts()] == [1]
    # And the cancelled one never ran: no worker ever claimed it
    assert cancelled.job().status.value == "cancelled"
    assert [a.worker for a in cancelled.attempts()] == [None]


def test_labels_and_list_filters(client, start_worker):
    start_worker("busybox")
    tag = f"report-{time.time_ns()}"
    mine = [client.submit("busybox", ["true"], label=tag) for _ in range(2)]
    other = client.submit("busybox", ["false"], label=tag + "-other")
    for handle in [*mine, other]:
        handle.wait(timeout=60)
    # The Python API and the CLI filter by label, status, stack and time
    assert {j.id for j in client.list_jobs(label=tag)} == {h.id for h in mine}
    assert [j.id for j in client.list_jobs(label=tag + "-other", status="failed")] == [other.id]
    assert client.list_jobs(label=tag, status="failed") == []
    assert client.list_jobs(label=tag, stack="alpha") == []
    listed = cli("ls", "--label", tag, "--status", "succeeded", "--since", "10m")
    assert listed.returncode == 0 and {line.split()[0] for line in listed.stdout.splitlines()[1:]} == {
        h.id for h in mine}, listed.stdout
    assert tag in listed.stdout  # the label column
    future = cli("ls", "--label", tag, "--since", "2999-01-01T00:00:00")
    assert future.returncode == 0 and len(future.stdout.splitlines()) == 1
    bad = cli("ls", "--since", "yesterday-ish")
    assert bad.returncode == 2 and "is neither an age like 15m nor an ISO 8601 time" in bad.stderr


def test_a_finished_job_is_retried_as_a_new_linked_job(client, start_worker):
    start_worker("busybox")
    # Given a job that failed
    first = client.submit("busybox", ["sh", "-c", "cat $PAYLOAD_FILE; exit 3"], payload={"n": 1}, priority=1,
                          label="nightly")
    assert first.wait(timeout=60).status.value == "failed"
    # When it is retried from the CLI
    retried = cli("retry", first.id)
    assert retried.returncode == 0, retried.stderr
    second = client.JobHandle(retried.stdout.strip())
    # Then a new job runs with the same command, payload and settings, linked both ways
    done = second.wait(timeout=60)
    assert (done.status.value, done.exit_code, second.logs()) == ("failed", 3, '{"n": 1}')
    assert (done.retry_of, done.priority, done.label, done.command) == (first.id, 1, "nightly", first.job().command)
    assert [h.id for h in first.retried_as()] == [second.id]
    assert json.loads(cli("status", first.id, "--json").stdout)["retried_as"] == [second.id]
    assert f"retry of:  {first.id}" in cli("status", second.id).stdout
    # And from Python, after a delay
    third = client.retry(first.id, delay=2)
    assert third.job().published_at is None and third.wait(timeout=60).status.value == "failed"
    assert [h.id for h in first.retried_as()] == [second.id, third.id]


def test_retry_refuses_what_cannot_be_retried(client, start_worker):
    from longshore.errors import InvalidJob, JobNotFound

    start_worker("busybox")
    # A queued job cannot be retried
    waiting = client.submit("busybox", ["true"], delay=600)
    with pytest.raises(InvalidJob, match=f"job_id: job {waiting.id} is queued; only a job that ran and ended"):
        client.retry(waiting.id)
    waiting.cancel()
    # A job whose secrets were erased needs them again, and is retried with them
    secret = client.submit("busybox", ["sh", "-c", 'test "$TOKEN" = s3cr3t'], secret_env={"TOKEN": "s3cr3t"})
    assert secret.wait(timeout=60).status.value == "succeeded"
    refused = cli("retry", secret.id)
    assert refused.returncode == 125 and "had secret variables TOKEN, erased when it ended" in refused.stderr
    again = cli("retry", secret.id, "--secret-env", "TOKEN=s3cr3t")
    assert again.returncode == 0, again.stderr
    assert client.JobHandle(again.stdout.strip()).wait(timeout=60).status.value == "succeeded"
    # An unknown job is named
    with pytest.raises(JobNotFound):
        client.retry("no-such-job")
    missing = cli("retry", "no-such-job")
    assert missing.returncode == 1 and "no job with id 'no-such-job'" in missing.stderr


def test_celery_native_submit_takes_priority_delay_and_label(client, start_worker):
    from longshore.service.runtime import get_runtime

    start_worker("busybox")
    sent = get_runtime().publisher.app.send_task(
        "longshore.submit", kwargs={"stack": "busybox", "command": ["echo", "native"], "priority": 2, "delay": 1,
                                    "label": "from-celery"}, queue="longshore.control")

    def stored():
        found = client.list_jobs(label="from-celery")
        return found and found[0]

    job = wait_until(stored, timeout=30, what="the Celery-native job")
    assert (job.id, job.priority, job.not_before is not None) == (sent.id, 2, True)
    assert client.JobHandle(sent.id).wait(timeout=60).status.value == "succeeded"


def test_a_pull_left_in_the_previous_releases_queue_still_runs(client, start_worker, rabbitmq):
    # Given a job whose pull waits in the stack's version-1 queue (no priorities), as the previous release left it
    from kombu import Connection, Queue

    from longshore.service.runtime import get_runtime

    job = client.submit("busybox", ["echo", "from v1"], delay=600)  # stored, not published
    runtime = get_runtime()
    with runtime.store.engine.begin() as conn:
        from longshore.store.schema import jobs

        conn.execute(jobs.update().where(jobs.c.id == job.id).values(not_before=None, published_at=time.time()))
    with Connection(BROKER_URL) as conn:
        legacy = Queue("stack.busybox.v1", routing_key="stack.busybox.v1", durable=True)
        runtime.publisher.app.send_task("longshore.pull_image", (job.id, 1), queue=legacy, connection=conn)
    # When a worker of this release starts, then it drains that queue and the job runs
    start_worker("busybox")
    assert job.wait(timeout=60).status.value == "succeeded" and job.logs() == "from v1\n"


def test_progress_written_inside_a_running_job_shows_in_its_status_within_seconds(client, start_worker):
    start_worker("busybox")
    # Given a job that reports its progress twice as it runs (its network is off: it writes a file)
    job = client.submit("busybox", ["sh", "-c", 'echo "30 reading input" > $PROGRESS_FILE; sleep 4; '
                                                'echo "80 writing output" > $PROGRESS_FILE; sleep 10'])
    # Then each report is seen while it runs, in the Python API and in `longshore status`
    first = wait_until(lambda: (j := job.job()).progress == 30 and j, timeout=10, what="progress 30")
    assert first.status.value == "running" and first.progress_message == "reading input"
    wait_until(lambda: job.job().progress == 80, timeout=10, what="progress 80")
    shown = cli("status", job.id)
    assert "progress:  80% writing output" in shown.stdout and job.job().status.value == "running"
    assert job.wait(timeout=30).status.value == "succeeded"
