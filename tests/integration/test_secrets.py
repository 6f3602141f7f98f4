"""Secret variables: the job sees them; nothing else shows them (status, ls, JSON, logs of the worker, metrics,
the database), they are sealed at rest and erased when the job ends."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import uuid
from urllib.request import urlopen

import pytest

from support.helpers import free_port, wait_until
from support.services import DATABASE_URL


@pytest.fixture
def client(distributed):
    import longshore

    return longshore


def stored_row(job_id: str) -> dict:
    import psycopg2

    with psycopg2.connect(DATABASE_URL) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT row_to_json(j)::text FROM jobs j WHERE id = %s", (job_id,))
        [job] = cursor.fetchone()
        cursor.execute("SELECT coalesce(json_agg(a)::text, '') FROM attempts a WHERE job_id = %s", (job_id,))
        [attempts] = cursor.fetchone()
    return {"job": json.loads(job), "text": job + attempts}


def cli(*args: str) -> str:
    done = subprocess.run(["longshore", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_a_secret_reaches_the_job_and_is_shown_nowhere(client, start_worker):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    digest = hashlib.md5(secret.encode()).hexdigest()
    # Given a job with a secret variable, queued while no worker runs
    job = client.submit("busybox", ["sh", "-c", 'printf %s "$TOKEN" | md5sum'], secret_env={"TOKEN": secret},
                        env={"PLAIN": "visible"})
    # Then at rest it is sealed: the row holds a token, not the value; its name is shown, its value is not
    queued = stored_row(job.id)
    assert queued["job"]["secret_env"] and secret not in queued["text"]
    assert queued["job"]["secret_names"] == ["TOKEN"]
    assert json.loads(cli("status", job.id, "--json"))["secret_names"] == ["TOKEN"]
    # When a worker runs it
    metrics_port = free_port()
    worker = start_worker("busybox", args=["--metrics-port", str(metrics_port)])
    done = job.wait(timeout=60)
    # Then the job saw the value
    assert done.status.value == "succeeded", done.error
    assert job.logs().startswith(digest)
    # And nothing shows it: the CLI, the Python records, the worker's log, its metrics, the database
    shown = [cli("status", job.id), cli("status", job.id, "--json"), cli("ls"), cli("logs", job.id),
             repr(done), json.dumps(done.to_dict()), repr(job.attempts()), worker.log_path.read_text(),
             urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()]
    assert not [text for text in shown if secret in text]
    # And the sealed value itself is erased now that the job has ended
    ended = stored_row(job.id)
    assert ended["job"]["secret_env"] is None and secret not in ended["text"]
    assert ended["job"]["secret_names"] == ["TOKEN"] and ended["job"]["env"] == {"PLAIN": "visible"}


def test_a_worker_without_the_key_fails_the_job_clearly_and_shows_nothing(client, start_worker):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    # Given a worker whose installation key is another one (a misconfigured host)
    from cryptography.fernet import Fernet

    start_worker("busybox", env={"LONGSHORE_SECRET_KEYS": Fernet.generate_key().decode()})
    # When a job with a secret runs there
    job = client.submit("busybox", ["true"], secret_env={"TOKEN": secret})
    done = job.wait(timeout=60)
    # Then it fails as the platform's fault, saying why, and never started a container
    assert done.status.value == "failed" and "secret variables cannot be opened" in done.error, done.error
    assert [a.container_id for a in job.attempts()] == [None]
    assert secret not in done.error and stored_row(job.id)["job"]["secret_env"] is None


def test_flower_shows_the_kwargsrepr_of_a_celery_native_submit_not_its_secrets(client, start_worker, tmp_path):
    # Given Flower, and a worker
    port = free_port()
    log = open(tmp_path / "flower.log", "w")
    flower = subprocess.Popen(["longshore", "flower", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "FLOWER_UNAUTHENTICATED_API": "true"},
                              start_new_session=True)
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthcheck"), timeout=30, what="Flower")
        worker = start_worker("busybox")
        from longshore.service.runtime import get_runtime

        # (its task events on, as Flower asks every 5 s: asked now, so the submit below is seen)
        control = get_runtime().publisher.app.control
        wait_until(lambda: any(worker.name in reply for reply in control.broadcast(
            "enable_events", reply=True, timeout=2, destination=[worker.name])), timeout=30, what="task events on")
        # When a Celery program submits with a secret and a kwargsrepr, as docs/security.md says to
        secret = f"s3cr3t-{uuid.uuid4().hex}"
        sent = get_runtime().publisher.app.send_task(
            "longshore.submit", kwargs={"stack": "busybox", "command": ["true"], "secret_env": {"TOKEN": secret}},
            kwargsrepr="{'secret_env': '<hidden>'}", queue="longshore.control")

        # Then Flower lists the task with the kwargsrepr, and never the secret
        def listed():
            tasks = json.loads(urlopen(f"http://127.0.0.1:{port}/api/tasks", timeout=5).read())
            return tasks.get(sent.id, {}).get("kwargs") and tasks

        tasks = wait_until(listed, timeout=30, interval=0.5, what="the submit task in Flower")
        assert tasks[sent.id]["kwargs"] == "{'secret_env': '<hidden>'}"
        assert secret not in json.dumps(tasks)
        job = wait_until(lambda: _stored(client, sent.id), timeout=30, what="the job to be stored")
        assert job.wait(timeout=60).status.value == "succeeded"
    finally:
        os.killpg(flower.pid, signal.SIGTERM)
        flower.wait(20)
        log.close()


def _stored(client, job_id: str):
    from longshore.errors import JobNotFound

    try:
        client.JobHandle(job_id).job()
    except JobNotFound:
        return None
    return client.JobHandle(job_id)


def _answers(url: str) -> bool:
    try:
        return urlopen(url, timeout=2).status == 200
    except OSError:
        return False
