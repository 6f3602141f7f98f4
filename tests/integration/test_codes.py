"""Codes: uploaded once with their defaults and config, queued by name (latest or pinned revision), paused
and resumed, capped in concurrency across workers; through the CLI and the Python API, with real workers."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from support.helpers import longshore_cli as cli, wait_until


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_an_image_code_runs_by_name_with_its_config_and_a_pinned_revision_still_runs(client, start_worker):
    start_worker("busybox")
    name = unique("report")
    # Given a code uploaded from the CLI with a command, env and config
    uploaded = cli("codes", "upload", name, "--stack", "busybox", "--env", "MODE=full", "--config", '{"db": "one"}',
                   "--", "sh", "-c", 'echo "$MODE $(cat $CONFIG_FILE) $(cat $PAYLOAD_FILE)"')
    assert uploaded.returncode == 0 and uploaded.stdout.strip() == f"{name} revision 1", uploaded.stderr
    # When a job of it is queued by name
    first = cli("run", "--code", name, "--payload", '{"n": 1}')
    # Then it runs the code's command with its env, config and the job's payload
    assert first.returncode == 0 and first.stdout == 'full {"db": "one"} {"n": 1}\n', first.stderr
    # When a second revision is uploaded from Python
    assert client.upload_code(name, "busybox", command=["sh", "-c", "echo two $(cat $CONFIG_FILE)"],
                              config={"db": "two"}) == 2
    # Then new jobs run it, and a job pinned to revision 1 still runs revision 1
    latest = client.submit(code=name)
    pinned = client.submit(code=f"{name}@1", env={"MODE": "pinned"})
    assert latest.wait(timeout=60).status.value == "succeeded" and latest.logs() == 'two {"db": "two"}\n'
    assert pinned.wait(timeout=60).status.value == "succeeded" and pinned.logs() == 'pinned {"db": "one"} {}\n'
    assert (pinned.job().code, pinned.job().code_revision) == (name, 1)
    # And the revisions are listed, the jobs found by code, and a deleted code takes no new job
    listed = json.loads(cli("codes", "revisions", name, "--json").stdout)
    assert [r["revision"] for r in listed] == [1, 2] and listed[0]["config"] == {"db": "one"}
    assert {j.id for j in client.list_jobs(code=name)} >= {latest.id, pinned.id}
    assert name in cli("codes", "ls").stdout
    assert cli("codes", "delete", name).returncode == 0
    refused = cli("run", "--code", name)
    assert refused.returncode == 125 and f"code: no code named '{name}'" in refused.stderr
    assert name not in cli("codes", "ls").stdout


HELLO = """\
import json, os, sys
from lib.greet import greet

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
payload = json.load(open(args["-payload"]))
config = json.load(open(os.environ["CONFIG_FILE"]))
with open(os.path.join(args["-d"], "scratch"), "w") as scratch:  # TASK_DIR is writable, the code is not
    scratch.write("ok")
print(sys.argv[0], greet(config["greeting"], payload["name"]), args["-id"] == os.environ["TASK_ID"],
      args["-config"] == os.environ["CONFIG_FILE"], args["-d"] == os.environ["TASK_DIR"], os.getcwd())
"""


def test_a_zip_code_on_the_python_stack_reads_its_payload_and_config_and_a_pinned_revision_still_runs(
        client, start_worker, tmp_path):
    start_worker("python", slots=2)
    name = unique("hello")
    # Given an archive code made from a folder on the CLI: an entry file importing a module beside it
    folder = tmp_path / "code"
    (folder / "lib").mkdir(parents=True)
    (folder / "hello.py").write_text(HELLO)
    (folder / "lib" / "greet.py").write_text("def greet(word, name):\n    return f'{word}, {name}!'\n")
    uploaded = cli("codes", "upload", name, "--stack", "python", "--zip", str(folder), "--entry", "hello.py",
                   "--config", '{"greeting": "hello"}')
    assert uploaded.returncode == 0 and uploaded.stdout.strip() == f"{name} revision 1", uploaded.stderr
    # When its job runs, it gets IronWorker's arguments, its payload and config, in its code's folder
    first = client.submit(code=name, payload={"name": "Ada"})
    assert first.wait(timeout=60).status.value == "succeeded", first.job().error
    assert first.logs() == "hello.py hello, Ada! True True True /longshore/code\n"
    # When revision 2 (a zip from Python) changes the module, new jobs run it and revision 1 still runs
    (folder / "lib" / "greet.py").write_text("def greet(word, name):\n    return f'{word.upper()} {name}'\n")
    assert client.upload_code(name, "python", archive=folder, entry="hello.py", config={"greeting": "hi"}) == 2
    latest, pinned = client.submit(code=name, payload={"name": "Bo"}), client.submit(code=f"{name}@1",
                                                                                      payload={"name": "Cy"})
    assert latest.wait(timeout=60).status.value == "succeeded" and "HI Bo True" in latest.logs()
    assert pinned.wait(timeout=60).status.value == "succeeded" and "hello, Cy! True" in pinned.logs()
    revisions = json.loads(cli("codes", "revisions", name, "--json").stdout)
    assert [(r["revision"], r["entry"]) for r in revisions] == [(1, "hello.py"), (2, "hello.py")]


def test_unsafe_archives_are_refused_at_upload_and_nothing_is_stored(client, tmp_path):
    import io
    import zipfile

    name = unique("evil")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.py", "print('hi')")
        archive.writestr("../../etc/cron.d/evil", "* * * * * root sh")
    (tmp_path / "evil.zip").write_bytes(buffer.getvalue())
    refused = cli("codes", "upload", name, "--stack", "python", "--zip", str(tmp_path / "evil.zip"),
                  "--entry", "hello.py")
    assert refused.returncode == 125 and "'../../etc/cron.d/evil' would land outside" in refused.stderr
    on_busybox = cli("codes", "upload", name, "--stack", "alpha", "--zip", str(tmp_path / "evil.zip"),
                     "--entry", "hello.py")
    assert on_busybox.returncode == 125 and "stack alpha runs no archive codes" in on_busybox.stderr
    assert "Traceback" not in refused.stderr + on_busybox.stderr
    assert name not in cli("codes", "ls").stdout


def test_bad_codes_are_refused_with_a_clear_error(client):
    from longshore.errors import InvalidJob

    assert cli("codes", "upload", "bad name", "--stack", "busybox").returncode == 125
    bad = cli("codes", "upload", unique("x"), "--stack", "busybox", "--memory", "1000g")
    assert bad.returncode == 125 and "memory: 1000g is over stack busybox's maximum" in bad.stderr
    name = unique("one")
    client.upload_code(name, "busybox", command=["true"])
    with pytest.raises(InvalidJob, match=f"code: code '{name}' has no revision 7"):
        client.submit(code=f"{name}@7")
    with pytest.raises(InvalidJob, match="stack: code .* runs on stack busybox, not 'alpha'"):
        client.submit("alpha", code=name)
    missing = cli("pause", "no-such-code")
    assert missing.returncode == 1 and "no code named 'no-such-code'" in missing.stderr


def test_a_paused_codes_jobs_wait_and_run_after_resume(client, start_worker):
    start_worker("busybox")
    name = unique("paused")
    client.upload_code(name, "busybox", command=["echo", "resumed"])
    # Given a paused code
    assert cli("pause", name).returncode == 0
    # When three jobs are queued for it, and time passes
    jobs = [client.submit(code=name) for _ in range(3)]
    time.sleep(4)
    # Then they stay queued, never claimed by a worker
    assert {j.status.value for j in jobs} == {"queued"}
    assert all(a.worker is None for j in jobs for a in j.attempts())
    # When it is resumed, then they run
    assert cli("resume", name).returncode == 0
    for job in jobs:
        assert job.wait(timeout=60).status.value == "succeeded" and job.logs() == "resumed\n"


def test_max_concurrency_holds_across_workers(client, start_worker, docker_engine):
    # Given two workers of 4 slots, and a code that may run 2 jobs at once
    start_worker("busybox", slots=4)
    start_worker("busybox", slots=4)
    name = unique("capped")
    client.upload_code(name, "busybox", command=["sleep", "2"], max_concurrency=2)
    # When 6 jobs of it are queued, sampling the engine meanwhile
    seen, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            running = docker_engine.api.containers(filters={"label": "io.longshore.job", "status": "running"})
            seen.append(sum(1 for c in running if c["Labels"]["io.longshore.job"] in ids))
            time.sleep(0.1)

    jobs = [client.submit(code=name) for _ in range(6)]
    ids = {j.id for j in jobs}
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        finished = [j.wait(timeout=120) for j in jobs]
    finally:
        stop.set()
        sampler.join()
    # Then every job succeeded (none failed for waiting), and never more than 2 ran at once
    assert [f.status.value for f in finished] == ["succeeded"] * 6
    assert max(seen) == 2, seen


def test_celery_native_submit_queues_a_job_of_a_code(client, start_worker):
    from longshore.service.runtime import get_runtime

    start_worker("busybox")
    name = unique("native")
    client.upload_code(name, "busybox", command=["sh", "-c", "cat $PAYLOAD_FILE"])
    sent = get_runtime().publisher.app.send_task("longshore.submit", kwargs={"code": name, "payload": {"via": "celery"}},
                                                 queue="longshore.control")

    def stored():
        found = client.list_jobs(code=name)
        return found and client.JobHandle(found[0].id)

    job = wait_until(stored, timeout=30, what="the job of the code")
    assert job.id == sent.id and job.wait(timeout=60).status.value == "succeeded"
    assert job.logs() == '{"via": "celery"}'
