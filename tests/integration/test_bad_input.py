"""Bad input at every entry point (the CLI, the Python API, a raw Celery message): a clear error naming the
problem, never a traceback, and nothing half-done: no job queued, no container started, and a refused Celery
message recorded as `rejected` under an id its sender can read."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from support.helpers import wait_until

BIG = "9" * 12  # 999999999999g: more bytes than the database's bigint holds


def longshore(env, *args):
    return subprocess.run(["longshore", *args], env=env, capture_output=True, text=True, timeout=60)


def jobs_stored(env) -> int:
    """How many jobs the embedded store under `env`'s LONGSHORE_HOME holds (none if it was never made)."""
    path = Path(env["LONGSHORE_HOME"]) / "longshore.db"
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT count(*) FROM jobs").fetchone()[0]


@pytest.mark.parametrize("args,words", [
    (["--memory", "1000g"], "memory: 1000g is over stack busybox's maximum of 4g"),
    (["--memory", f"{BIG}g"], "memory: "),
    (["--memory", "lots"], "memory: 'lots' is not a size"),
    (["--disk", "10g"], "disk: 10g is over stack busybox's maximum of 128m"),
    (["--timeout", "nan"], "timeout: "),
    (["--timeout", "-1"], "timeout: "),
    (["--timeout", "1e12"], "timeout: "),
    (["--cpus", "0"], "cpus: "),
    (["--cpus", "inf"], "cpus: "),
    (["--retries", "-1"], "retries: "),
    (["--retries", "100000"], "retries: "),
    (["--stack", "cobol"], "stack: unknown stack 'cobol'"),
    (["--stack", "../etc"], "stack: "),
    (["--image", "longshore/BusyBox:1"], "image: 'longshore/BusyBox:1' is not an image reference"),
    (["--image", "x" * 300], "image: "),
    (["--image", "docker.io/library/alpine:3"], "image: "),
    (["--env", "HOME=/root"], "env: HOME is set by the platform"),
    (["--env", "1BAD=x"], "env: '1BAD' is not a variable name"),
    (["--env", "NOEQUALS"], "'NOEQUALS' is not K=V"),
    (["--secret-env", "LONGSHORE_NOT_SET_ANYWHERE"], "'LONGSHORE_NOT_SET_ANYWHERE' is not set"),
    (["--secret-env", "A=1", "--env", "A=2"], "secret_env: A is also in env"),
    (["--payload", "{not json"], "not valid JSON"),
    (["--payload", "NaN"], "payload: "),
    (["--payload", "@/no/such/file"], "cannot read payload file"),
    (["--payload", "@{deep}"], "nested too deeply"),
])
def test_the_cli_refuses_bad_input_naming_it_and_queues_nothing(embedded_env, tmp_path, args, words):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    args = [arg.replace("{deep}", str(deep)) for arg in args]
    # Given a fresh installation, when a job is run with one bad input
    done = longshore(embedded_env, "run", *args, "--", "true")
    # Then the command fails with a message that names the problem, and no traceback
    assert done.returncode in (2, 125), (done.returncode, done.stderr)
    assert words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr) < 2000, done.stderr
    # And no job was stored
    assert jobs_stored(embedded_env) == 0


@pytest.mark.parametrize("command", [
    ["status", "../../etc/passwd"], ["status", ""], ["logs", "x" * 5000], ["cancel", "no-such-job"],
    ["status", "\udcff"], ["ls", "--status", "exploded"], ["ls", "--limit", "-5"],
])
def test_the_cli_answers_a_bad_id_or_filter_without_a_traceback(embedded_env, command):
    done = longshore(embedded_env, *command)
    assert done.returncode != 0
    assert done.stderr.startswith(("longshore: ", "Error: ", "Usage: ")), done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr) < 2000, done.stderr


@pytest.fixture
def client(distributed):
    import longshore

    return longshore


@pytest.mark.parametrize("fields,words", [
    ({"command": "echo hi"}, "command: must be a list of strings"),
    ({"memory": "1000g"}, "memory: 1000g is over stack busybox's maximum"),
    ({"memory": f"{BIG}g"}, "memory: "),
    ({"env": {"A": 1}}, "env.A: must be a mapping of variable names to strings"),
    ({"payload": float("nan")}, "payload: is not JSON"),
    ({"timeout": True}, "timeout: "),
    ({"disk": "-1m"}, "disk: "),
])
def test_the_python_api_refuses_bad_input_with_invalid_job(client, fields, words):
    from longshore.errors import InvalidJob

    with pytest.raises(InvalidJob) as refused:
        client.submit(**{"stack": "busybox", "command": ["true"], **fields})
    assert words in str(refused.value)


def send_submit(*, kwargs=None, args=(), task_id=None) -> str:
    """Send `longshore.submit` as any Celery program could, returning the message's id."""
    from longshore.service.runtime import get_runtime

    app = get_runtime().publisher.app
    return app.send_task("longshore.submit", args=args, kwargs=kwargs or {}, task_id=task_id,
                         queue="longshore.control").id


def wait_recorded(client, job_id):
    from longshore.errors import JobNotFound

    def recorded():
        try:
            return client.JobHandle(job_id).job()
        except JobNotFound:
            return None

    return wait_until(recorded, timeout=30, what=f"the submission {job_id} to be recorded")


@pytest.mark.parametrize("kwargs,words", [
    ({"stack": 7, "command": ["true"]}, "stack: must be a stack name"),
    ({"stack": "busybox", "command": "true"}, "command: must be a list of strings"),
    ({"stack": "busybox", "command": ["true"], "stak": "typo"}, "stak"),
    ({"stack": "busybox", "command": ["true"], "memory": "1000g"}, "memory: 1000g is over"),
    ({"stack": "busybox", "command": ["true"], "timeout": "soon"}, "timeout: "),
    ({"stack": "busybox", "command": ["true"], "env": {"A": ["x"]}}, "env.A: "),
    ({"stack": "busybox", "command": ["true"], "job_id": "mine"}, "job_id: a Celery-native submit's job id is its message's id"),
    ({"stack": "busybox", "command": ["true"], "manifest": 1, "limits": 2}, "manifest"),
    ({"stack": "cobol", "command": ["true"]}, "stack: unknown stack 'cobol'"),
])
def test_a_bad_celery_message_is_recorded_as_rejected_under_its_id(client, start_worker, docker_engine,
                                                                    kwargs, words):
    # Given a worker serving the control queue
    start_worker("busybox")
    # When a program sends longshore.submit with bad fields
    job_id = send_submit(kwargs=kwargs)
    # Then the sender can read, under the message's id, that it was rejected and why
    job = wait_recorded(client, job_id)
    assert job.status.value == "rejected" and job.error.startswith("rejected: ") and words in job.error, job.error
    # And nothing ran: no attempt, no container
    assert client.JobHandle(job_id).attempts() == []
    assert not docker_engine.containers.list(all=True, filters={"label": f"io.longshore.job={job_id}"})


def test_positional_arguments_are_rejected_not_dropped(client, start_worker):
    start_worker("busybox")
    job_id = send_submit(args=("busybox", ["true"]))
    job = wait_recorded(client, job_id)
    assert job.status.value == "rejected" and "2 positional argument(s)" in job.error


def test_a_message_id_that_cannot_name_a_job_is_recorded_under_its_digest(client, start_worker):
    # Given a worker, and a sender choosing an id with a slash and spaces
    start_worker("busybox")
    bad_id = "../jobs/the one I chose"
    send_submit(kwargs={"stack": "busybox", "command": ["true"]}, task_id=bad_id)
    # Then it is rejected under rejected-<digest of the id>, which `longshore status` finds from the bad id
    digest_id = "rejected-" + hashlib.sha256(bad_id.encode()).hexdigest()[:32]
    job = wait_recorded(client, digest_id)
    assert job.status.value == "rejected" and "job_id: the message's id must be" in job.error
    shown = subprocess.run(["longshore", "status", bad_id], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "rejected" in shown.stdout, shown.stderr


def test_a_redelivered_or_repeated_submit_never_replaces_the_job(client, start_worker):
    # Given a good submission that ran
    start_worker("busybox")
    job_id = send_submit(kwargs={"stack": "busybox", "command": ["echo", "first"]})
    wait_recorded(client, job_id)
    assert client.JobHandle(job_id).wait(timeout=30).status.value == "succeeded"
    # When the same id is sent again with other (even bad) fields
    send_submit(kwargs={"stack": 7}, task_id=job_id)
    send_submit(kwargs={"stack": "busybox", "command": ["echo", "second"]}, task_id=job_id)
    wait_recorded(client, send_submit(kwargs={"stack": 7}))  # a marker sent after both
    time.sleep(2)  # the worker's slots may take the three in any order
    # Then the first job is untouched, and ran once
    handle = client.JobHandle(job_id)
    assert handle.job().status.value == "succeeded" and handle.logs() == "first\n"
    assert len(handle.attempts()) == 1
