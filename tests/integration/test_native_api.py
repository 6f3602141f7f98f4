"""Longshore's own HTTP API (/v1) through its OpenAPI document, the Python HTTP client, and two projects
probing each other; bad input answered with 4xx naming the field, and nothing queued."""

from __future__ import annotations

import json

import pytest
import requests

from support.api import laptop_cli, laptop_env

V1_ROUTES = {("post", "/v1/jobs"), ("post", "/v1/jobs/batch"), ("get", "/v1/jobs"), ("get", "/v1/jobs/{job_id}"),
             ("get", "/v1/jobs/{job_id}/logs"), ("post", "/v1/jobs/{job_id}/cancel"),
             ("post", "/v1/jobs/{job_id}/retry"), ("get", "/v1/jobs/{job_id}/wait"), ("get", "/v1/stacks"),
             # codes, schedules and the project: tests/integration/test_native_library.py
             ("post", "/v1/codes"), ("get", "/v1/codes"), ("get", "/v1/codes/{name}"),
             ("get", "/v1/codes/{name}/revisions"), ("delete", "/v1/codes/{name}"), ("post", "/v1/codes/{name}/pause"),
             ("post", "/v1/codes/{name}/resume"), ("post", "/v1/schedules"), ("get", "/v1/schedules"),
             ("get", "/v1/schedules/{schedule_id}"), ("post", "/v1/schedules/{schedule_id}/pause"),
             ("post", "/v1/schedules/{schedule_id}/resume"), ("delete", "/v1/schedules/{schedule_id}"),
             ("get", "/v1/project")}


@pytest.mark.timeout(180)
def test_every_v1_route_of_the_openapi_document_works_for_its_project_only(api, client):
    base, _port, (team, other) = api
    mine = requests.Session()
    mine.headers["Authorization"] = f"Bearer {team['token']}"
    document = requests.get(f"{base}/openapi.json", timeout=10).json()
    routes = {(method, path) for path, methods in document["paths"].items() if path.startswith("/v1")
              for method in methods}
    assert routes == V1_ROUTES
    assert requests.get(f"{base}/docs", timeout=10).status_code == 200
    assert requests.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}  # probes need no token
    assert requests.get(f"{base}/readyz", timeout=10).json() == {"status": "ready"}
    # Submit one, and a batch; list them by cursor; read, wait, log, retry, cancel
    one = mine.post(f"{base}/v1/jobs", json={"stack": "busybox", "command": ["sh", "-c", "echo one"],
                                             "label": "v1"}, timeout=10)
    assert one.status_code == 201, one.text
    batch = mine.post(f"{base}/v1/jobs/batch", json={"jobs": [
        {"stack": "busybox", "command": ["echo", str(n)], "label": "v1"} for n in (2, 3)]}, timeout=10)
    assert batch.status_code == 201 and len(batch.json()["ids"]) == 2
    first_page = mine.get(f"{base}/v1/jobs", params={"label": "v1", "limit": 2}, timeout=10).json()
    second_page = mine.get(f"{base}/v1/jobs", params={"label": "v1", "limit": 2, "cursor": first_page["next"]},
                           timeout=10).json()
    listed = [job["id"] for job in first_page["jobs"] + second_page["jobs"]]
    assert sorted(listed) == sorted([one.json()["id"], *batch.json()["ids"]]) and second_page["next"] is None
    job_id = one.json()["id"]
    ended = mine.get(f"{base}/v1/jobs/{job_id}/wait", params={"timeout": 30}, timeout=40).json()
    assert ended["status"] == "succeeded" and ended["ironworker_status"] == "complete"
    assert mine.get(f"{base}/v1/jobs/{job_id}", timeout=10).json()["exit_code"] == 0
    assert mine.get(f"{base}/v1/jobs/{job_id}/logs", timeout=10).text == "one\n"
    again = mine.post(f"{base}/v1/jobs/{job_id}/retry", json={"delay": 0}, timeout=10).json()
    assert again["retry_of"] == job_id
    sleeper = mine.post(f"{base}/v1/jobs", json={"stack": "busybox", "command": ["sleep", "30"]}, timeout=10).json()
    assert mine.post(f"{base}/v1/jobs/{sleeper['id']}/cancel", timeout=10).json()["status"] == "cancelled"
    stacks = {stack["name"]: stack for stack in mine.get(f"{base}/v1/stacks", timeout=10).json()["stacks"]}
    assert stacks["python"]["takes_archives"] and stacks["gvisor"]["runtime"] == "runsc"
    # The other project sees none of it: every route answers 404 (as if absent), its list is empty
    theirs = requests.Session()
    theirs.headers["Authorization"] = f"Bearer {other['token']}"
    for method, path in V1_ROUTES:
        if "{job_id}" in path:
            answer = theirs.request(method, base + path.format(job_id=job_id), timeout=10)
            assert answer.status_code == 404 and answer.json()["msg"] == "job_id: no such job", (path, answer.text)
    assert theirs.get(f"{base}/v1/jobs", timeout=10).json()["jobs"] == []
    assert requests.get(f"{base}/v1/jobs", headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401


def test_bad_input_is_a_4xx_naming_the_field_and_queues_nothing(api, client):
    base, _port, (team, _other) = api
    mine = requests.Session()
    mine.headers["Authorization"] = f"Bearer {team['token']}"
    for body, field in (({"stack": "busybox", "timeout": "long"}, "timeout"),
                        ({"stack": "busybox", "priorty": 2}, "priorty"),
                        ({"stack": "busybox", "memory": "1000g"}, "memory"),
                        ({"stack": "nope"}, "stack"),
                        ({"code": "no-such-code"}, "code"),
                        ({"jobs": []}, "jobs")):
        url = f"{base}/v1/jobs/batch" if "jobs" in body else f"{base}/v1/jobs"
        answer = mine.post(url, json=body, timeout=10)
        assert answer.status_code in (400, 404) and answer.json()["field"] == field, answer.text
    assert mine.post(f"{base}/v1/jobs", data=b"{", headers={"Content-Type": "application/json"},
                     timeout=10).status_code == 400
    assert mine.post(f"{base}/v1/jobs", data=json.dumps({"payload": "x" * (9 << 20)}),
                     headers={"Content-Type": "application/json"}, timeout=30).status_code == 413
    assert mine.get(f"{base}/v1/jobs", params={"cursor": "%%%"}, timeout=10).status_code == 400
    assert mine.get(f"{base}/v1/jobs", timeout=10).json()["jobs"] == []  # nothing was queued


def test_the_python_http_client_submits_waits_and_reads_like_submit(api, client):
    import longshore
    from longshore.errors import InvalidJob, Refused

    base, _port, (team, _other) = api
    remote = longshore.Client(base, team["token"])
    job = remote.submit("busybox", ["sh", "-c", "cat $PAYLOAD_FILE"], payload={"over": "http"})
    finished = job.wait(timeout=60)
    assert finished.status is longshore.JobStatus.SUCCEEDED and finished.output == b'{"over": "http"}'
    assert job.logs() == '{"over": "http"}'
    assert job.status is longshore.JobStatus.SUCCEEDED and job.exit_code == 0
    with pytest.raises(InvalidJob, match="memory"):
        remote.submit("busybox", ["true"], memory="1000g")
    with pytest.raises(Refused, match="401"):
        longshore.Client(base, "wrong").submit("busybox", ["true"])


def test_the_cli_works_over_the_api_with_neither_broker_nor_store(api, client, tmp_path):
    base, _port, (team, other) = api
    laptop = laptop_env(base, team["token"], tmp_path)

    def cli(*args: str, env: dict = laptop):
        return laptop_cli(env, *args)

    ran = cli("run", "--stack", "busybox", "--label", "laptop", "--payload", '{"n": 7}', "--",
              "sh", "-c", 'cat "$PAYLOAD_FILE"; echo; echo oops >&2; exit 3')
    assert ran.returncode == 3 and sorted(ran.stdout.splitlines()) == ['oops', '{"n": 7}'], ran.stderr  # any order
    detached = cli("run", "-d", "--stack", "busybox", "--label", "laptop", "--", "echo", "later")
    job_id = detached.stdout.strip()
    assert detached.returncode == 0 and len(job_id) == 32, detached.stderr
    logs = cli("logs", job_id)
    while logs.stdout != "later\n" and "no job" not in logs.stderr:  # it ends within seconds
        logs = cli("logs", job_id)
    shown = json.loads(cli("status", job_id, "--json").stdout)
    assert shown["id"] == job_id and shown["attempts"] and shown["retried_as"] == []
    human = cli("status", job_id)
    assert human.returncode == 0 and f"id:        {job_id}" in human.stdout and "attempt 1:" in human.stdout
    listed = cli("ls", "--label", "laptop", "--since", "10m")
    assert listed.returncode == 0 and job_id in listed.stdout and len(listed.stdout.splitlines()) == 3
    retried = cli("retry", job_id)
    assert retried.returncode == 0 and json.loads(cli("status", retried.stdout.strip(), "--json").stdout)[
        "retry_of"] == job_id
    assert "busybox" in cli("stacks").stdout
    sleeper = cli("run", "-d", "--stack", "busybox", "--", "sleep", "60").stdout.strip()
    assert cli("cancel", sleeper).stdout.strip() == f"{sleeper} cancelled"
    # Another project's token sees none of it; bad input and a wrong token or URL are clear one-line errors
    theirs = {**laptop, "LONGSHORE_TOKEN": other["token"]}
    assert "no job with id" in cli("status", job_id, env=theirs).stderr
    refused = cli("run", "--stack", "busybox", "--memory", "1000g", "--", "true")
    assert refused.returncode == 125 and "memory" in refused.stderr and "Traceback" not in refused.stderr
    wrong = cli("ls", env={**laptop, "LONGSHORE_TOKEN": "wrong"})
    assert wrong.returncode == 125 and "401" in wrong.stderr and "Traceback" not in wrong.stderr
    away = cli("ls", env={**laptop, "LONGSHORE_API_URL": "http://127.0.0.1:1"})
    assert away.returncode == 125 and "cannot reach http://127.0.0.1:1" in away.stderr, away.stderr
    half = cli("ls", env={key: value for key, value in laptop.items() if key != "LONGSHORE_TOKEN"})
    assert half.returncode == 2 and "set both" in half.stderr
