"""IronWorker's API v2 served by `longshore api`, driven by IronWorker's own Python client (`iron-worker==1.3.8`,
unmodified) through a realistic session, and two projects probing each other."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from support.helpers import wait_until
from support.services import REPO, missing


def iron(port: int, project: dict, token: str | None = None):
    from iron_worker import IronWorker

    return IronWorker(project_id=project["id"], token=token or project["token"], host="127.0.0.1", port=port,
                      protocol="http")


def register_image_code(base: str, project: dict, name: str, command: str, **extra) -> dict:
    """An image code, as the iron CLI registers one (IronWorker's Python client cannot): one `data` part."""
    data = {"name": name, "image": "longshore/busybox:1", "stack": "busybox", "command": command, "runtime": "",
            "file_name": "", "env_vars": None, **extra}
    answer = requests.post(f"{base}/2/projects/{project['id']}/codes", files={"data": (None, json.dumps(data))},
                           headers={"Authorization": f"OAuth {project['token']}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.timeout(240)
def test_ironworkers_python_client_runs_a_realistic_session(api, client, tmp_path, monkeypatch, docker_engine):
    base, port, (team, other) = api
    worker = iron(port, team)
    # Codes: an image code (raw multipart, as the iron CLI sends it) and a zip code from the client itself
    assert register_image_code(base, team, "echo", "sh -c 'cat $PAYLOAD_FILE; echo; echo task=$TASK_ID'")["id"] == "echo"
    register_image_code(base, team, "fail", "sh -c 'echo broken >&2; exit 3'")
    register_image_code(base, team, "sleeper", "sh -c 'sleep 60'")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello").mkdir()
    (tmp_path / "hello" / "hello.py").write_text(
        "import json, sys\nargs = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
        "print('hello', json.load(open(args['-payload']))['name'], 'id', args['-id'])\n")
    uploaded = worker.upload("hello", name="hello", executable="hello/hello.py")  # zipped, posted as b'PK…' text
    assert uploaded.id == "hello"
    assert {code.name for code in worker.codes()} == {"echo", "fail", "sleeper", "hello"}
    assert worker.code("hello").runtime == "python"
    # Tasks: payloads read back from the logs, a verbatim string payload, statuses as IronWorker names them
    echo = worker.queue(code_name="echo", payload={"n": 1})
    text = worker.queue(code_name="echo", payload="plain text, not JSON")
    hello = worker.queue(code_name="hello", payload={"name": "Ada"})
    failed = worker.queue(code_name="fail")
    late = worker.queue(code_name="sleeper", timeout=2)
    assert worker.wait_for_task(echo).status == "complete"
    assert worker.log(echo) == f'{{"n": 1}}\ntask={echo.id}\n'
    # The task's log size, read without its log, in the task and in a page of tasks
    tasks, auth = f"{base}/2/projects/{team['id']}/tasks", {"Authorization": f"OAuth {team['token']}"}
    paged = requests.get(f"{tasks}?code_name=echo", headers=auth, timeout=10).json()["tasks"]
    assert requests.get(f"{tasks}/{echo.id}", headers=auth, timeout=10).json()["log_size"] == len(worker.log(echo))
    assert [t["log_size"] for t in paged if t["id"] == echo.id] == [len(worker.log(echo))]
    assert worker.wait_for_task(text).status == "complete" and worker.log(text).startswith("plain text, not JSON\n")
    assert worker.wait_for_task(hello).status == "complete" and worker.log(hello) == f"hello Ada id {hello.id}\n"
    failed = worker.wait_for_task(failed)
    assert failed.status == "error" and "3" in failed.message and worker.log(failed) == "broken\n"
    assert worker.wait_for_task(late).status == "timeout"
    # A running task: its progress, then a cancel that stops and removes its container
    running = worker.queue(code_name="sleeper", label="to-cancel")
    wait_until(lambda: worker.task(running).status == "running", timeout=30, what="the sleeper to run")
    assert worker.setProgress(running.id, 40, "resizing")["msg"] == "Progress set"
    shown = worker.task(running)
    assert (shown.percent, shown.message) == (40, "resizing") and shown.label == "to-cancel"
    worker.cancel(running)
    assert worker.wait_for_task(running).status == "cancelled"
    wait_until(lambda: not docker_engine.api.containers(all=True, filters={"label": f"io.longshore.job={running.id}"}),
               timeout=30, what="the cancelled task's container to be removed")
    # Lists with IronWorker's filters; a retry; a task queued by webhook
    assert {t.id for t in worker.tasks(error=1)} == {failed.id}
    assert {t.id for t in worker.tasks(code_name="echo", complete=1)} == {echo.id, text.id}
    assert failed.id not in {t.id for t in worker.tasks(complete=1, per_page=100)}
    again = worker.retry(echo.id)["tasks"][0]["id"]
    assert worker.wait_for_task(worker.task(again)).status == "complete"
    hooked = requests.post(f"{base}/2/projects/{team['id']}/tasks/webhook?code_name=echo", data="from a hook",
                           headers={"Authorization": f"OAuth {team['token']}"}, timeout=10).json()
    assert worker.log(worker.wait_for_task(worker.task(hooked["id"]))).startswith("from a hook\n")
    # A schedule that fires, listed with its fields; its task carries the schedule's id
    scheduled = worker.queue(code_name="echo", payload={"from": "schedule"}, run_every=60, run_times=1,
                             start_at=datetime.datetime.now(datetime.timezone.utc))
    assert scheduled.scheduled
    [listed] = worker.tasks(scheduled=True)
    assert (listed.id, listed.run_every, listed.run_times) == (scheduled.id, 60, 1)
    fired = wait_until(lambda: [t for t in worker.tasks(code_name="echo", per_page=100)
                                if getattr(t, "schedule_id", None) == scheduled.id], timeout=25,
                       what="the schedule's task")
    assert worker.wait_for_task(fired[0]).status == "complete"
    worker.cancel(worker.task(scheduled.id, scheduled=True))
    # The other project sees none of it, through its own token or with the first project's id
    outsider = iron(port, other)
    assert outsider.codes() == [] and outsider.tasks() == []
    for call in (lambda: outsider.task(echo.id), lambda: outsider.log(echo.id), lambda: outsider.cancel(running.id),
                 lambda: iron(port, team, token=other["token"]).tasks()):
        with pytest.raises(requests.HTTPError) as refused:
            call()
        assert refused.value.response.status_code == 404
        assert refused.value.response.json()["msg"] in ("Task not found", "Project not found")
    # A wrong token is refused, and the client raises
    with pytest.raises(requests.HTTPError) as wrong:
        iron(port, team, token="not-a-token").codes()
    assert wrong.value.response.status_code == 401


def test_bad_requests_get_clear_4xx_answers_and_queue_nothing(api, client):
    base, _port, (team, _other) = api
    headers = {"Authorization": f"OAuth {team['token']}", "Content-Type": "application/json"}
    url = f"{base}/2/projects/{team['id']}"
    register_image_code(base, team, "echo", "true")
    for body, words in ((b"not json", "JSON object"), (json.dumps({"tasks": []}), "non-empty list"),
                        (json.dumps({"tasks": [{"code_name": "echo"}, {"code_name": "nope"}]}), "no code named"),
                        (json.dumps({"tasks": [{"code_name": "echo", "priority": 7}]}), "priority"),
                        (json.dumps({"tasks": [{"code_name": "echo", "timeout": "long"}]}), "timeout")):
        answer = requests.post(f"{url}/tasks", data=body, headers=headers, timeout=10)
        assert answer.status_code in (400, 404) and words in answer.json()["msg"], answer.text
        assert answer.headers["Content-Type"] == "application/json"
    assert requests.get(f"{url}/tasks", headers=headers, timeout=10).json() == {"tasks": []}  # nothing queued
    bad_zip = requests.post(f"{url}/codes", headers={"Authorization": headers["Authorization"]}, timeout=10, files={
        "data": (None, json.dumps({"name": "z", "runtime": "python", "file_name": "x.py"})),
        "file": ("z.zip", b"PK not really a zip")})
    assert bad_zip.status_code == 400 and "archive: is not a zip" in bad_zip.json()["msg"]
    assert requests.get(f"{url}/tasks/nope/log", headers=headers, timeout=10).status_code == 404
    huge = requests.post(f"{url}/tasks", data=b"x" * (9 << 20), headers=headers, timeout=30)
    assert huge.status_code == 413 and "over the limit" in huge.json()["msg"]
    chunked = requests.post(f"{url}/tasks", data=iter([b'{"tasks": ', b"[]}"]), headers=headers, timeout=10)
    assert chunked.status_code == 411
    many = json.dumps({"tasks": [{"code_name": "echo"}] * 101})
    assert "over the limit of 100" in requests.post(f"{url}/tasks", data=many, headers=headers, timeout=10).text
    for path in ("tasks/%00", "codes/%00", "schedules/%00", "codes/a%00b/revisions"):
        assert requests.get(f"{url}/{path}", headers=headers, timeout=10).status_code == 404, path
    assert requests.get(f"{url}/tasks?code_name=%00", headers=headers, timeout=10).json() == {"tasks": []}
    assert requests.get(f"{url}/tasks?page={10 ** 20}", headers=headers, timeout=10).status_code in (400, 422)
    nested = "[" * 100_000 + "]" * 100_000
    assert requests.post(f"{url}/tasks", data=nested, headers=headers, timeout=10).status_code == 400
    # Schedules: a bad second one stores neither
    both = {"schedules": [{"code_name": "echo", "run_every": 3600}, {"code_name": "echo", "run_every": 5}]}
    refused = requests.post(f"{url}/schedules", data=json.dumps(both), headers=headers, timeout=10)
    assert refused.status_code == 400 and "run_every" in refused.json()["msg"]
    assert requests.get(f"{url}/schedules", headers=headers, timeout=10).json() == {"schedules": []}
    # Code uploads: a hostile "bytes literal", `data` sent as a file, a runtime that is not a string
    auth = {"Authorization": headers["Authorization"]}
    for files, status in (
            ({"data": (None, json.dumps({"name": "z", "file_name": "x.py"})),
              "file": ("z.zip", b"b'', " + b"1," * 100_000)}, 400),
            ({"data": ("d.json", json.dumps({"name": "img", "image": "longshore/busybox:1", "stack": "busybox"}))}, 200),
            ({"data": (None, json.dumps({"name": "r", "runtime": ["python"]}))}, 400)):
        answer = requests.post(f"{url}/codes", files=files, headers=auth, timeout=30)
        assert answer.status_code == status, answer.text


NODE_SESSION = REPO / "tests" / "support" / "ironworker_node"


@pytest.fixture(scope="session")
def node_client():
    """IronWorker's Node client, installed from npm (once per machine) into a folder of its own."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        missing("Node.js and npm", "node or npm not installed")
    folder = Path(tempfile.gettempdir()) / "longshore-ironworker-node-0.1.8"
    if not (folder / "node_modules" / "iron_worker" / "package.json").exists():
        folder.mkdir(exist_ok=True)
        shutil.copy(NODE_SESSION / "package.json", folder / "package.json")
        installed = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder)],
                                   capture_output=True, text=True, timeout=300)
        if installed.returncode != 0:
            missing("the iron_worker package from npm", installed.stderr[-500:])
    return folder / "node_modules"


@pytest.mark.timeout(240)
def test_ironworkers_node_client_runs_a_session(api, client, node_client):
    base, port, (team, _other) = api
    register_image_code(base, team, "echo", "sh -c 'cat $PAYLOAD_FILE'")
    register_image_code(base, team, "fail", "sh -c 'exit 3'")
    register_image_code(base, team, "sleeper", "sleep 60")
    env = {**os.environ, "NODE_PATH": str(node_client), "IRON_HOST": "127.0.0.1", "IRON_PORT": str(port),
           "IRON_SCHEME": "http", "IRON_PROJECT_ID": team["id"], "IRON_TOKEN": team["token"]}
    done = subprocess.run(["node", str(NODE_SESSION / "session.js")], env=env, capture_output=True, text=True,
                          timeout=200)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"echo": "complete", "log": '{"n":2}', "listed": True, "failed": "error",
                      "progress": [70, "from node"], "cancelled": "cancelled", "retried": "complete",
                      "codes": ["echo", "fail", "sleeper"], "scheduled": True, "clusters": {"clusters": []},
                      "wrongToken": report["wrongToken"]}
    assert "Unauthorized" in report["wrongToken"]
