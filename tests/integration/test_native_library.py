"""Codes, schedules and the project through Longshore's own API (/v1), `longshore.Client` and the CLI over HTTP,
with real workers: every route of them exercised, another project's records answered as absent ones, and bad
input answered with a 4xx naming the field, nothing stored."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import time
import uuid
import zipfile

import pytest
import requests

from support.api import laptop_cli, laptop_env
from support.helpers import wait_until

HELLO = """\
import json, os
payload = json.load(open(os.environ["PAYLOAD_FILE"]))
print("hello", payload["name"])
"""


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def session(token: str) -> requests.Session:
    caller = requests.Session()
    caller.headers["Authorization"] = f"Bearer {token}"
    return caller


def hello_folder(tmp_path) -> str:
    folder = tmp_path / "hello"
    folder.mkdir(exist_ok=True)
    (folder / "hello.py").write_text(HELLO)
    return str(folder)


def zipped(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def teams(api, client):
    """The API and its two projects; after the test, nothing of theirs waits or runs, no schedule is left."""
    yield api
    base, _port, projects = api
    for team in projects:
        caller = session(team["token"])
        for status in ("queued", "running"):
            found = caller.get(f"{base}/v1/jobs", params={"limit": 100, "status": status}, timeout=10).json()
            for job in found["jobs"]:
                caller.post(f"{base}/v1/jobs/{job['id']}/cancel", timeout=10)
        for schedule in caller.get(f"{base}/v1/schedules", timeout=10).json()["schedules"]:
            caller.delete(f"{base}/v1/schedules/{schedule['id']}", timeout=10)


def ended(caller: requests.Session, base: str, job_id: str) -> dict:
    job = caller.get(f"{base}/v1/jobs/{job_id}/wait", params={"timeout": 60}, timeout=70).json()
    assert job["status"] in ("succeeded", "failed"), job
    return {**job, "logs": caller.get(f"{base}/v1/jobs/{job_id}/logs", timeout=10).text}


@pytest.mark.timeout(240)
def test_image_and_archive_codes_are_uploaded_revised_listed_and_run_by_name_or_pinned_revision(teams, tmp_path):
    base, _port, (team, other) = teams
    mine, theirs = session(team["token"]), session(other["token"])
    echo, hello = unique("echo"), unique("hello")
    # Given an image code uploaded twice, and an archive code (a zip, base64) on the python stack
    for number, word in ((1, "one"), (2, "two")):
        uploaded = mine.post(f"{base}/v1/codes", timeout=10, json={
            "name": echo, "stack": "busybox", "command": ["sh", "-c", f'echo "{word} $MODE $(cat $CONFIG_FILE)"'],
            "env": {"MODE": "default"}, "config": {"db": word}, "max_concurrency": 2, "priority": 1})
        assert uploaded.status_code == 201 and uploaded.json() == {"name": echo, "revision": number}, uploaded.text
    archive = zipped({"hello.py": HELLO})
    uploaded = mine.post(f"{base}/v1/codes", timeout=10, json={
        "name": hello, "stack": "python", "archive_base64": b64(archive), "entry": "hello.py"})
    assert uploaded.status_code == 201 and uploaded.json() == {"name": hello, "revision": 1}, uploaded.text
    # When jobs of them are submitted by name (the latest revision) and pinned to revision 1
    submitted = {key: mine.post(f"{base}/v1/jobs", json=body, timeout=10).json()["id"] for key, body in (
        ("latest", {"code": echo}), ("pinned", {"code": f"{echo}@1", "env": {"MODE": "pinned"}}),
        ("archive", {"code": hello, "payload": {"name": "Ada"}}))}
    # Then each runs its revision, with the code's defaults under the job's own fields
    runs = {key: ended(mine, base, job_id) for key, job_id in submitted.items()}
    assert runs["latest"]["logs"] == 'two default {"db": "two"}\n' and runs["latest"]["code_revision"] == 2
    assert runs["pinned"]["logs"] == 'one pinned {"db": "one"}\n' and runs["pinned"]["code_revision"] == 1
    assert runs["archive"]["logs"] == "hello Ada\n" and runs["archive"]["code"] == hello
    assert runs["latest"]["priority"] == 1
    # And the codes are listed, read with their latest revision's defaults, and their revisions shown
    listed = {code["name"]: code for code in mine.get(f"{base}/v1/codes", timeout=10).json()["codes"]}
    assert set(listed) == {echo, hello}
    assert (listed[echo]["latest"], listed[echo]["paused"], listed[echo]["max_concurrency"]) == (2, False, 2)
    shown = mine.get(f"{base}/v1/codes/{echo}", timeout=10).json()
    assert shown["latest"] == 2 and shown["latest_revision"]["config"] == {"db": "two"}
    assert shown["latest_revision"]["defaults"]["command"][-1].startswith('echo "two')
    revisions = mine.get(f"{base}/v1/codes/{echo}/revisions", timeout=10).json()["revisions"]
    assert [r["revision"] for r in revisions] == [1, 2] and revisions[0]["config"] == {"db": "one"}
    [zip_revision] = mine.get(f"{base}/v1/codes/{hello}/revisions", timeout=10).json()["revisions"]
    assert (zip_revision["entry"], zip_revision["archive_sha256"]) == ("hello.py", hashlib.sha256(archive).hexdigest())
    assert zip_revision["defaults"]["command"] == ["python3", "hello.py"]
    # And the other project sees none of it: each route answers as for a code never made
    absent = unique("absent")
    for method, path in (("GET", ""), ("GET", "/revisions"), ("POST", "/pause"), ("POST", "/resume"),
                         ("DELETE", "")):
        answer = theirs.request(method, f"{base}/v1/codes/{echo}{path}", timeout=10)
        never = theirs.request(method, f"{base}/v1/codes/{absent}{path}", timeout=10)
        assert answer.status_code == never.status_code == 404, answer.text
        assert answer.json() == {"msg": f"code: no code named '{echo}'", "field": "code"}
        assert answer.text.replace(echo, "<name>") == never.text.replace(absent, "<name>")
    assert theirs.get(f"{base}/v1/codes", timeout=10).json() == {"codes": []}
    assert theirs.post(f"{base}/v1/jobs", json={"code": echo}, timeout=10).json()["field"] == "code"
    # When a code is deleted, it is gone: from the list, its routes and new jobs (the jobs it ran stay)
    assert mine.delete(f"{base}/v1/codes/{echo}", timeout=10).json() == {"name": echo, "deleted": True}
    assert [code["name"] for code in mine.get(f"{base}/v1/codes", timeout=10).json()["codes"]] == [hello]
    assert mine.get(f"{base}/v1/codes/{echo}", timeout=10).status_code == 404
    refused = mine.post(f"{base}/v1/jobs", json={"code": echo}, timeout=10)
    assert refused.status_code == 404 and refused.json()["field"] == "code"
    assert mine.get(f"{base}/v1/jobs/{submitted['latest']}", timeout=10).json()["code"] == echo


@pytest.mark.timeout(180)
def test_a_paused_codes_job_stays_queued_until_the_code_is_resumed(teams):
    base, _port, (team, _other) = teams
    mine = session(team["token"])
    name = unique("held")
    mine.post(f"{base}/v1/codes", json={"name": name, "stack": "busybox", "command": ["echo", "resumed"]},
              timeout=10).raise_for_status()
    # Given a paused code
    paused = mine.post(f"{base}/v1/codes/{name}/pause", timeout=10).json()
    assert (paused["name"], paused["paused"]) == (name, True)
    # When a job of it is submitted, it goes back to wait in the store once a worker finds its code paused
    job_id = mine.post(f"{base}/v1/jobs", json={"code": name}, timeout=10).json()["id"]

    def held() -> bool:
        job = mine.get(f"{base}/v1/jobs/{job_id}", timeout=10).json()
        return job["status"] == "queued" and job["published_at"] is None and job["not_before"] is not None

    wait_until(held, timeout=30, what="the job to wait in the store")
    time.sleep(2)
    assert mine.get(f"{base}/v1/jobs/{job_id}", timeout=10).json()["status"] == "queued"
    # Then once the code is resumed, it runs
    assert mine.post(f"{base}/v1/codes/{name}/resume", timeout=10).json()["paused"] is False
    job = ended(mine, base, job_id)
    assert (job["status"], job["logs"]) == ("succeeded", "resumed\n")


@pytest.mark.timeout(180)
def test_a_schedule_made_through_v1_fires_and_is_listed_paused_resumed_and_deleted(teams):
    base, _port, (team, other) = teams
    mine, theirs = session(team["token"]), session(other["token"])
    name, label = unique("tick"), unique("label")
    mine.post(f"{base}/v1/codes", json={"name": name, "stack": "busybox", "command": ["sh", "-c", "cat $PAYLOAD_FILE"]},
              timeout=10).raise_for_status()
    # Given a schedule of the code every 60 s from now, and one of a stack and command in 2030
    made = mine.post(f"{base}/v1/schedules", timeout=10, json={
        "code": name, "payload": {"from": "a schedule"}, "run_every": 60, "start_at": time.time(), "label": label})
    assert made.status_code == 201, made.text
    schedule = made.json()
    assert (schedule["state"], schedule["run_every"], schedule["label"]) == ("active", 60, label)
    later = mine.post(f"{base}/v1/schedules", timeout=10, json={
        "stack": "busybox", "command": ["true"], "start_at": "2030-01-01T00:00:00Z", "run_times": 1})
    assert later.status_code == 201 and later.json()["next_at"] == 1893456000, later.text
    # When a scheduler looks at it, it makes a job of the code with the schedule's payload and label
    fired = wait_until(lambda: (shown := mine.get(f"{base}/v1/schedules/{schedule['id']}", timeout=10).json())
                       ["runs"] >= 1 and shown, timeout=30, what="the schedule's first run")
    job = ended(mine, base, fired["last_job_id"])
    assert (job["status"], job["logs"], job["schedule_id"], job["label"], job["code"]) == \
        ("succeeded", '{"from": "a schedule"}', schedule["id"], label, name)
    # And it is listed (by its label too), paused, resumed and deleted
    every = [item["id"] for item in mine.get(f"{base}/v1/schedules", timeout=10).json()["schedules"]]
    assert every == [schedule["id"], later.json()["id"]]
    by_label = mine.get(f"{base}/v1/schedules", params={"label": label}, timeout=10).json()["schedules"]
    assert [item["id"] for item in by_label] == [schedule["id"]]
    assert mine.post(f"{base}/v1/schedules/{schedule['id']}/pause", timeout=10).json()["state"] == "paused"
    assert mine.post(f"{base}/v1/schedules/{schedule['id']}/resume", timeout=10).json()["state"] == "active"
    # The other project sees none of it: each route answers as for a schedule never made
    absent = uuid.uuid4().hex
    for method, path in (("GET", ""), ("POST", "/pause"), ("POST", "/resume"), ("DELETE", "")):
        answer = theirs.request(method, f"{base}/v1/schedules/{schedule['id']}{path}", timeout=10)
        never = theirs.request(method, f"{base}/v1/schedules/{absent}{path}", timeout=10)
        assert answer.status_code == never.status_code == 404, answer.text
        assert answer.json() == {"msg": f"schedule_id: no schedule '{schedule['id']}'", "field": "schedule_id"}
        assert answer.text.replace(schedule["id"], "<id>") == never.text.replace(absent, "<id>")
    assert theirs.get(f"{base}/v1/schedules", params={"label": label}, timeout=10).json() == {"schedules": []}
    assert mine.get(f"{base}/v1/schedules/{schedule['id']}", timeout=10).json()["state"] == "active"
    for schedule_id in (schedule["id"], later.json()["id"]):
        deleted = mine.delete(f"{base}/v1/schedules/{schedule_id}", timeout=10)
        assert deleted.json() == {"id": schedule_id, "deleted": True}
    assert mine.get(f"{base}/v1/schedules/{schedule['id']}", timeout=10).status_code == 404
    assert mine.get(f"{base}/v1/schedules", timeout=10).json() == {"schedules": []}


@pytest.mark.timeout(180)
def test_the_project_shows_its_quotas_own_and_in_effect_and_its_jobs_waiting_and_running(teams):
    from longshore.service.runtime import get_runtime

    base, _port, (team, _other) = teams
    mine = session(team["token"])
    rt = get_runtime()
    # Given a project with its own running quota, the installation's for the rest
    rt.store.projects.set_quotas(team["id"], {"max_running_jobs": 3})
    defaults = rt.settings.quotas.defaults
    shown = mine.get(f"{base}/v1/project", timeout=10).json()
    assert (shown["id"], shown["name"]) == (team["id"], team["name"])
    assert shown["quotas"] == {
        "own": {"max_queued_jobs": None, "max_running_jobs": 3, "requests_per_second": None},
        "effective": {"max_queued_jobs": defaults.max_queued_jobs, "max_running_jobs": 3,
                      "requests_per_second": defaults.requests_per_second}}
    assert shown["usage"] == {"jobs_waiting": 0, "jobs_running": 0}
    # When it has a delayed job and a running one
    delayed = mine.post(f"{base}/v1/jobs", json={"stack": "busybox", "command": ["true"], "delay": 3600},
                        timeout=10).json()["id"]
    sleeper = mine.post(f"{base}/v1/jobs", json={"stack": "busybox", "command": ["sleep", "60"]}, timeout=10).json()
    wait_until(lambda: mine.get(f"{base}/v1/jobs/{sleeper['id']}", timeout=10).json()["status"] == "running",
               timeout=30, what="the sleeper to run")
    # Then its usage counts them as its quotas do
    assert mine.get(f"{base}/v1/project", timeout=10).json()["usage"] == {"jobs_waiting": 1, "jobs_running": 1}
    for job_id in (delayed, sleeper["id"]):
        mine.post(f"{base}/v1/jobs/{job_id}/cancel", timeout=10).raise_for_status()
    wait_until(lambda: mine.get(f"{base}/v1/project", timeout=10).json()["usage"] == {"jobs_waiting": 0,
                                                                                      "jobs_running": 0},
               timeout=30, what="the cancelled sleeper to give back its slot")
    assert requests.get(f"{base}/v1/project", headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401


@pytest.mark.timeout(180)
def test_bad_code_and_schedule_input_is_a_4xx_naming_the_field_and_stores_nothing(teams):
    from longshore.service.runtime import get_runtime

    base, _port, (team, _other) = teams
    mine = session(team["token"])
    name, hello = unique("bad"), zipped({"hello.py": HELLO})
    image = {"name": name, "stack": "busybox", "command": ["true"]}
    archive = {"name": name, "stack": "python", "archive_base64": b64(hello), "entry": "hello.py"}
    limit = get_runtime().settings.archive_limits.zip_bytes
    for body, status, field in (
            ({**image, "colour": "red"}, 400, "colour"),
            ({**image, "command": "true"}, 400, "command"),
            ({**image, "timeout": "long"}, 400, "timeout"),
            ({**image, "max_concurrency": 1.5}, 400, "max_concurrency"),
            ({**image, "max_concurrency": 0}, 400, "max_concurrency"),
            ({**image, "memory": "1000g"}, 400, "memory"),
            ({**image, "env": {"TASK_ID": "mine"}}, 400, "env"),
            ({**image, "name": "no spaces please"}, 400, "name"),
            ({**image, "stack": "nope"}, 400, "stack"),
            ({key: value for key, value in image.items() if key != "stack"}, 400, "stack"),
            ({**image, "config": {"deep": float("nan")}}, 400, "config"),
            ({**archive, "archive_base64": "not base64!"}, 400, "archive_base64"),
            ({**archive, "archive_base64": b64(zipped({"../evil.py": "x"})), "entry": "../evil.py"}, 400,
             "entry"),
            ({**archive, "archive_base64": b64(zipped({"hello.py": HELLO, "../../etc/evil": "x"}))}, 400,
             "archive_base64"),
            ({**archive, "archive_base64": b64(b"not a zip")}, 400, "archive_base64"),
            ({**archive, "entry": "missing.py"}, 400, "entry"),
            ({**archive, "command": ["python3", "hello.py"]}, 400, "command"),
            ({**archive, "stack": "alpha"}, 400, "archive_base64"),  # a stack with no entry_command
            ({**archive, "archive_base64": "A" * (4 * -(-limit // 3) + 4)}, 413, "archive_base64")):
        answer = mine.post(f"{base}/v1/codes", data=json.dumps(body), timeout=60,
                           headers={"Content-Type": "application/json"})
        assert (answer.status_code, answer.json().get("field")) == (status, field), (body.keys(), answer.text[:300])
        assert "Traceback" not in answer.text
    schedule = {"stack": "busybox", "command": ["true"], "run_every": 3600}
    for body, status, field in (
            ({**schedule, "run_every": 30}, 400, "run_every"),
            ({**schedule, "run_every": "hourly"}, 400, "run_every"),
            ({**schedule, "start_at": "soon"}, 400, "start_at"),
            ({**schedule, "start_at": "2030-01-01T00:00:00"}, 400, "start_at"),
            ({**schedule, "end_at": 1.0}, 400, "end_at"),
            ({**schedule, "run_times": "2"}, 400, "run_times"),
            ({"stack": "busybox", "command": ["true"], "run_times": 2}, 400, "run_times"),
            ({**schedule, "every": 60}, 400, "every"),
            ({**schedule, "delay": 5}, 400, "delay"),
            ({**schedule, "secret_env": {"KEY": "value"}}, 400, "secret_env"),
            ({**schedule, "memory": "1000g"}, 400, "memory"),
            ({"code": "no-such-code", "run_every": 3600}, 404, "code"),
            ({"code": "no such code"}, 400, "code")):
        answer = mine.post(f"{base}/v1/schedules", json=body, timeout=10)
        assert (answer.status_code, answer.json().get("field")) == (status, field), (body, answer.text)
    assert mine.post(f"{base}/v1/schedules", data=json.dumps({**schedule, "payload": "x" * (9 << 20)}),
                     headers={"Content-Type": "application/json"}, timeout=30).status_code == 413
    assert mine.post(f"{base}/v1/codes", data=b"{", headers={"Content-Type": "application/json"},
                     timeout=10).status_code == 400
    # Names and ids no record can have are answered as absent ones; a NUL in a filter is refused by name
    assert mine.get(f"{base}/v1/codes/no%00such", timeout=10).json()["field"] == "code"
    assert mine.post(f"{base}/v1/codes/{'x' * 300}/pause", timeout=10).status_code == 404
    assert mine.get(f"{base}/v1/schedules/not.an.id", timeout=10).json()["field"] == "schedule_id"
    assert mine.delete(f"{base}/v1/schedules/{'x' * 300}", timeout=10).status_code == 404
    nul = mine.get(f"{base}/v1/schedules", params={"label": "a\x00b"}, timeout=10)
    assert (nul.status_code, nul.json()["field"]) == (400, "label")
    # Nothing was stored
    assert mine.get(f"{base}/v1/codes", timeout=10).json() == {"codes": []}
    assert mine.get(f"{base}/v1/schedules", timeout=10).json() == {"schedules": []}
    assert mine.get(f"{base}/v1/jobs", timeout=10).json()["jobs"] == []


@pytest.mark.timeout(240)
def test_the_codes_and_schedules_cli_and_the_python_client_work_over_the_api_with_neither_broker_nor_store(
        teams, tmp_path):
    import longshore
    from longshore.errors import CodeNotFound, InvalidJob, ScheduleNotFound

    base, _port, (team, other) = teams
    laptop = laptop_env(base, team["token"], tmp_path)  # the API only: neither the broker nor the store

    def cli(*args: str, env: dict = laptop) -> subprocess.CompletedProcess:
        done = laptop_cli(env, *args)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    echo, hello = unique("echo"), unique("hello")
    # Codes: an image code and an archive code (a folder, zipped by the CLI) uploaded, run, listed, revised
    uploaded = cli("codes", "upload", echo, "--stack", "busybox", "--config", '{"db": "one"}', "--max-concurrency",
                   "2", "--", "sh", "-c", "cat $CONFIG_FILE")
    assert (uploaded.returncode, uploaded.stdout) == (0, f"{echo} revision 1\n"), uploaded.stderr
    uploaded = cli("codes", "upload", hello, "--stack", "python", "--zip", hello_folder(tmp_path),
                   "--entry", "hello.py")
    assert (uploaded.returncode, uploaded.stdout) == (0, f"{hello} revision 1\n"), uploaded.stderr
    ran = cli("run", "--code", hello, "--payload", '{"name": "Grace"}')
    assert (ran.returncode, ran.stdout) == (0, "hello Grace\n"), ran.stderr
    listed = cli("codes", "ls").stdout.splitlines()
    assert listed[0].split() == ["NAME", "REV", "STACK", "STATE", "MAX", "UPDATED"] and len(listed) == 3
    assert listed[1].split()[:5] == [echo, "1", "busybox", "active", "2"]
    [revision] = json.loads(cli("codes", "revisions", echo, "--json").stdout)
    assert (revision["revision"], revision["config"], revision["defaults"]["command"]) == \
        (1, {"db": "one"}, ["sh", "-c", "cat $CONFIG_FILE"])
    assert cli("codes", "revisions", hello).stdout.split()[0] == "1"
    assert cli("pause", echo).stdout == f"{echo} paused\n"
    assert cli("codes", "ls").stdout.splitlines()[1].split()[3] == "paused"
    assert cli("resume", echo).stdout == f"{echo} resumed\n"
    # Schedules: made, listed, shown, paused, resumed, deleted
    created = cli("schedules", "create", "--code", hello, "--payload", '{"name": "Ada"}', "--label", hello,
                  "--start-at", "+3600", "--run-every", "3600")
    schedule_id = created.stdout.strip()
    assert created.returncode == 0 and len(schedule_id) == 32, created.stderr
    assert schedule_id in cli("schedules", "ls", "--label", hello).stdout
    [listed_schedule] = json.loads(cli("schedules", "ls", "--json").stdout)
    assert (listed_schedule["id"], listed_schedule["request"]["code"]) == (schedule_id, hello)
    assert cli("schedules", "pause", schedule_id).stdout == f"{schedule_id} paused\n"
    assert json.loads(cli("schedules", "show", schedule_id).stdout)["state"] == "paused"
    assert cli("schedules", "resume", schedule_id).stdout == f"{schedule_id} resumed\n"
    assert cli("schedules", "delete", schedule_id).stdout == f"{schedule_id} deleted\n"
    gone = cli("schedules", "pause", schedule_id)
    assert gone.returncode == 1 and f"schedule_id: no schedule '{schedule_id}'" in gone.stderr
    refused = cli("schedules", "create", "--stack", "busybox", "--run-every", "30", "--", "true")
    assert refused.returncode == 125 and "run_every: must be a number of seconds, at least 60" in refused.stderr
    refused = cli("codes", "upload", unique("bad"), "--stack", "busybox", "--memory", "1000g", "--", "true")
    assert refused.returncode == 125 and "memory" in refused.stderr
    # Another project's token sees none of it; a deleted code is gone; a wrong token is one line
    theirs = {**laptop, "LONGSHORE_TOKEN": other["token"]}
    assert len(cli("codes", "ls", env=theirs).stdout.splitlines()) == 1
    for args in (("codes", "revisions", echo), ("pause", echo), ("codes", "delete", echo)):
        missing = cli(*args, env=theirs)
        assert missing.returncode == 1 and f"code: no code named '{echo}'" in missing.stderr, args
    assert cli("codes", "delete", echo).stdout == f"{echo} deleted\n"
    assert f"code: no code named '{echo}'" in cli("resume", echo).stderr
    assert cli("run", "--code", echo).returncode == 125
    wrong = cli("codes", "ls", env={**laptop, "LONGSHORE_TOKEN": "wrong"})
    assert wrong.returncode == 125 and "401" in wrong.stderr

    # The Python client: the same calls as longshore.upload_code and longshore.schedule, and the project
    remote = longshore.Client(base, team["token"])
    assert remote.upload_code(hello, "python", archive=zipped({"hello.py": HELLO}), entry="hello.py") == 2
    assert remote.code(hello)["latest_revision"]["revision"] == 2
    assert [r["revision"] for r in remote.code_revisions(hello)] == [1, 2]
    assert remote.pause_code(hello)["paused"] and not remote.resume_code(hello)["paused"]
    schedule_id = remote.schedule(code=hello, payload={"name": "Ada"}, start_at=time.time() + 3600, run_every=3600)
    assert [item["id"] for item in remote.list_schedules()] == [schedule_id]
    assert remote.pause_schedule(schedule_id)["state"] == "paused"
    assert remote.resume_schedule(schedule_id)["state"] == "active"
    assert remote.get_schedule(schedule_id)["request"]["payload"] == {"name": "Ada"}
    remote.delete_schedule(schedule_id)
    assert remote.project()["usage"] == {"jobs_waiting": 0, "jobs_running": 0}
    with pytest.raises(ScheduleNotFound, match="schedule_id: no schedule"):
        remote.get_schedule(schedule_id)
    with pytest.raises(CodeNotFound, match=f"code: no code named '{echo}'"):
        remote.code(echo)
    with pytest.raises(CodeNotFound):
        remote.code("../jobs")
    with pytest.raises(InvalidJob, match="run_every"):
        remote.schedule(code=hello, run_every=1)
    remote.delete_code(hello)
    assert remote.list_codes() == []
