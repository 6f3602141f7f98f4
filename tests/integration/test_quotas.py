"""Per-project quotas over the API: waiting jobs (429 with Retry-After, nothing stored, a batch all or
none), the request rate (429 with Retry-After, per project), and running jobs (the rest wait queued)."""

from __future__ import annotations

import threading
import time

import requests

from support.helpers import longshore_cli as cli
from test_ironworker_api import iron, register_image_code


def _session(project: dict, scheme: str = "Bearer") -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"{scheme} {project['token']}"
    return session


def test_a_full_queue_is_refused_with_429_and_retry_after_storing_nothing(api, client):
    base, port, (team, other) = api
    cli("projects", "set", team["id"], "--max-queued", "2")
    mine = _session(team)
    waiting = {"stack": "busybox", "command": ["true"], "delay": 600, "label": "quota"}
    # Given two jobs waiting (delayed), the project's quota
    for _ in range(2):
        assert mine.post(f"{base}/v1/jobs", json=waiting, timeout=10).status_code == 201
    # When a third is submitted, alone or in a batch, natively or through IronWorker's API and client
    one = mine.post(f"{base}/v1/jobs", json=waiting, timeout=10)
    batch = mine.post(f"{base}/v1/jobs/batch", json={"jobs": [waiting, waiting]}, timeout=10)
    register_image_code(base, team, "q", "true")
    v2 = requests.post(f"{base}/2/projects/{team['id']}/tasks", json={"tasks": [{"code_name": "q", "delay": 600}]},
                       headers={"Authorization": f"OAuth {team['token']}"}, timeout=10)
    # Then each is refused with 429, Retry-After and the quota named, and nothing more is stored
    for answer in (one, batch, v2):
        assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 1, answer.text
        assert answer.json()["field"] == "max_queued_jobs" and "quota of 2" in answer.json()["msg"]
    listed = mine.get(f"{base}/v1/jobs", params={"label": "quota"}, timeout=10).json()["jobs"]
    assert len(listed) == 2 and mine.get(f"{base}/v1/jobs", params={"code": "q"}, timeout=10).json()["jobs"] == []
    try:
        iron(port, team).queue(code_name="q", payload="x")
        raise AssertionError("IronWorker's client queued past the quota")
    except Exception as exc:  # the client raises its own HTTPError on a 4xx
        assert "429" in str(exc) or "max_queued_jobs" in str(exc), exc
    # And another project is not limited by this one's queue; cancelling one frees a place
    assert _session(other).post(f"{base}/v1/jobs", json=waiting, timeout=10).status_code == 201
    assert mine.post(f"{base}/v1/jobs/{listed[0]['id']}/cancel", timeout=10).status_code == 200
    assert mine.post(f"{base}/v1/jobs", json=waiting, timeout=10).status_code == 201
    for project in (team, other):
        for job in _session(project).get(f"{base}/v1/jobs", params={"label": "quota"}, timeout=10).json()["jobs"]:
            _session(project).post(f"{base}/v1/jobs/{job['id']}/cancel", timeout=10)


def test_requests_over_a_projects_rate_get_429_with_retry_after_and_pass_again_later(api):
    base, _port, (team, other) = api
    cli("projects", "set", team["id"], "--rate", "2")  # a burst of 4 passes, then 2 a second
    mine = _session(team)
    answers = [mine.get(f"{base}/v1/jobs", timeout=10) for _ in range(10)]
    codes = [answer.status_code for answer in answers]
    assert codes.count(200) in (4, 5) and codes.count(429) == 10 - codes.count(200), codes
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert refused.json()["field"] == "requests_per_second" and 1 <= int(refused.headers["Retry-After"]) <= 2
    # Another project's requests are not counted against it; an IronWorker route is limited alike
    assert all(_session(other).get(f"{base}/v1/jobs", timeout=10).status_code == 200 for _ in range(5))
    assert _session(team, "OAuth").get(f"{base}/2/projects/{team['id']}/tasks", timeout=10).status_code == 429
    time.sleep(int(refused.headers["Retry-After"]))
    assert mine.get(f"{base}/v1/jobs", timeout=10).status_code == 200


def test_a_projects_running_quota_holds_its_jobs_queued_until_a_slot_of_it_frees(api, docker_engine):
    base, _port, (team, _other) = api
    cli("projects", "set", team["id"], "--max-running", "1")
    mine = _session(team)
    # When 3 jobs of one second are queued on a worker with 4 free slots, sampling the engine meanwhile
    ids = mine.post(f"{base}/v1/jobs/batch", json={"jobs": [
        {"stack": "busybox", "command": ["sleep", "1"]} for _ in range(3)]}, timeout=10).json()["ids"]
    most, done = [0], threading.Event()

    def sample():
        while not done.is_set():
            running = [c for c in docker_engine.api.containers(filters={"label": "io.longshore.job",
                                                                         "status": "running"})
                       if c["Labels"]["io.longshore.job"] in ids]
            most[0] = max(most[0], len(running))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        ended = [mine.get(f"{base}/v1/jobs/{job_id}/wait", params={"timeout": 60}, timeout=70).json()
                 for job_id in ids]
    finally:
        done.set()
        sampler.join()
    # Then all succeed (none failed for waiting), and never more than one ran at once
    assert [job["status"] for job in ended] == ["succeeded"] * 3
    assert most[0] == 1
