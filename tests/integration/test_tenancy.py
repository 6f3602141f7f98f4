"""Tenancy (issue 12): a project's token sees and touches only its own project's records, through every route of
both APIs.

Project A makes one record of every kind through the API: an image code, a zip code, a paused code, a finished
task, a running one, one held queued (its code paused), a delayed one, a schedule on each API and a /v1 job.
Project B's token then calls every route with each of A's ids, on /2 both with B's and with A's project id in the
path: every answer is the 404 that an id (or a project) that never existed gets, lists show none of A's records,
and nothing of A's has changed. No token and a wrong token get 401 on every route that takes one. The same
requests sent with A's own token succeed, so that no 404 above is a 404 for everyone.

`ROUTES` names every route the app serves (its OpenAPI document's and the rest) and how to probe it: a route it
does not name fails the test until it is given a probe here.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import re
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests

from support.helpers import wait_until

P2 = "/2/projects/{project_id}"
#: When the schedules made here would first run: long after the test.
LATER = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).isoformat()
#: What each path parameter names, and so which of A's records go in it.
RECORD_PARAMETERS = {"code_id": "codes", "name": "codes", "task_id": "jobs", "job_id": "jobs",
                     "schedule_id": "schedules"}


def _nothing(_code: str) -> list[dict]:
    return [{}]


@dataclass(frozen=True)
class Route:
    """How to probe one route. `kind`: public (no token, no project's records), token (needs a token, holds no
    project's records), list, create (a record made from A's code by name), upload (a code, named as A's) or
    record (the record its path names). `sends(code)`: the requests' keyword arguments to try, A's code's name
    given (lists try several filters; A's own call uses the first). `owner`: which of A's records A's own call
    names; `says`: words A's own answer holds; `mutates`: A's own call changes A's records, so it is made last."""

    kind: str
    sends: Callable[[str], list[dict]] = _nothing
    owner: str | None = None
    says: str = ""
    mutates: bool = False


def _json(body: dict) -> Callable[[str], list[dict]]:
    return lambda _code: [{"json": body}]


def _label(code: str) -> str:
    """The label of A's records, from the name of A's code (both end in the test's tag)."""
    return "label-" + code.partition("-")[2]


def _image_code(name: str, command: str) -> dict:
    """An image code's multipart upload, as the iron CLI sends it: one `data` part."""
    data = {"name": name, "image": "longshore/busybox:1", "stack": "busybox", "command": command, "runtime": "",
            "file_name": "", "env_vars": None}
    return {"files": {"data": (None, json.dumps(data))}}


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/openapi.json"): Route("public"),
    ("GET", "/docs"): Route("public"),
    ("GET", "/docs/oauth2-redirect"): Route("public"),
    ("GET", "/redoc"): Route("public"),
    ("GET", "/healthz"): Route("public"),
    ("GET", "/readyz"): Route("public"),
    ("GET", "/2/clusters"): Route("token"),
    ("GET", "/2/clusters/{cluster_id}"): Route("token"),
    ("GET", "/v1/stacks"): Route("token"),
    # Lists
    ("GET", P2 + "/codes"): Route("list", lambda code: [{}, {"params": {"per_page": 100}}]),
    ("GET", P2 + "/tasks"): Route("list", lambda code: [
        {}, {"params": {"per_page": 100}}, {"params": {"code_name": code}}, {"params": {"complete": 1}},
        {"params": {"running": 1}}, {"params": {"queued": 1, "per_page": 100}}]),
    ("GET", P2 + "/schedules"): Route("list", lambda code: [{}, {"params": {"per_page": 100}}]),
    ("GET", "/v1/jobs"): Route("list", lambda code: [
        {}, {"params": {"limit": 100}}, {"params": {"code": code}}, {"params": {"status": "running"}},
        {"params": {"status": "queued"}}, {"params": {"stack": "busybox", "limit": 100}}]),
    # Records made from a code named by the request
    ("POST", P2 + "/codes"): Route("upload", lambda code: [_image_code(code, "echo upload")]),
    ("POST", P2 + "/tasks"): Route("create", lambda code: [{"json": {"tasks": [{"code_name": code, "delay": 3600}]}}]),
    ("POST", P2 + "/tasks/webhook"): Route("create", lambda code: [
        {"params": {"code_name": code, "delay": 3600}, "data": b"from a hook"}]),
    ("POST", P2 + "/schedules"): Route("create", lambda code: [{"json": {"schedules": [
        {"code_name": code, "run_every": 3600, "start_at": LATER}]}}]),
    ("POST", "/v1/jobs"): Route("create", lambda code: [{"json": {"code": code, "delay": 3600}}]),
    ("POST", "/v1/jobs/batch"): Route("create", lambda code: [{"json": {"jobs": [{"code": code, "delay": 3600}]}}]),
    # Codes (A's own mutating calls run in this order: cancel_all before resume, which would let `held` run)
    ("GET", P2 + "/codes/{code_id}"): Route("record", owner="echo"),
    ("GET", P2 + "/codes/{code_id}/revisions"): Route("record", owner="echo"),
    ("GET", P2 + "/codes/{code_id}/download"): Route("record", owner="hello"),
    ("POST", P2 + "/codes/{code_id}/cancel_all"): Route("record", owner="held", says="Cancelled 1 tasks",
                                                        mutates=True),
    ("POST", P2 + "/codes/{code_id}/pause_task_queue"): Route("record", owner="echo", says="Paused", mutates=True),
    ("POST", P2 + "/codes/{code_id}/resume_task_queue"): Route("record", owner="held", says="Resumed",
                                                               mutates=True),
    ("DELETE", P2 + "/codes/{code_id}"): Route("record", owner="hello", says="Deleted", mutates=True),
    # Tasks
    ("GET", P2 + "/tasks/{task_id}"): Route("record", owner="done"),
    ("GET", P2 + "/tasks/{task_id}/log"): Route("record", owner="done"),
    ("GET", P2 + "/tasks/{task_id}/outlog"): Route("record", owner="done"),
    ("POST", P2 + "/tasks/{task_id}/progress"): Route("record", _json({"percent": 50, "msg": "probed"}),
                                                      owner="running", says="Progress set", mutates=True),
    ("POST", P2 + "/tasks/{task_id}/retry"): Route("record", _json({"delay": 3600}), owner="done", says="Queued up",
                                                   mutates=True),
    ("POST", P2 + "/tasks/{task_id}/cancel"): Route("record", owner="delayed", says="Cancelled", mutates=True),
    # Schedules
    ("GET", P2 + "/schedules/{schedule_id}"): Route("record", owner="schedule"),
    ("POST", P2 + "/schedules/{schedule_id}/cancel"): Route("record", owner="schedule", says="Cancelled",
                                                            mutates=True),
    # /v1 jobs
    ("GET", "/v1/jobs/{job_id}"): Route("record", owner="v1"),
    ("GET", "/v1/jobs/{job_id}/logs"): Route("record", owner="v1"),
    ("GET", "/v1/jobs/{job_id}/wait"): Route("record", lambda _code: [{"params": {"timeout": 1}}], owner="v1"),
    ("POST", "/v1/jobs/{job_id}/cancel"): Route("record", owner="running", says="cancelled", mutates=True),
    ("POST", "/v1/jobs/{job_id}/retry"): Route("record", _json({"delay": 3600}), owner="v1", says="retry_of",
                                               mutates=True),
    # /v1 codes, schedules and the project
    ("GET", "/v1/project"): Route("token"),
    ("GET", "/v1/codes"): Route("list"),
    ("GET", "/v1/schedules"): Route("list", lambda code: [{}, {"params": {"label": _label(code)}}]),
    ("POST", "/v1/codes"): Route("upload", lambda code: [{"json": {"name": code, "stack": "busybox",
                                                                   "command": ["echo", "upload"]}}]),
    ("POST", "/v1/schedules"): Route("create", lambda code: [{"json": {"code": code, "run_every": 3600,
                                                                       "start_at": LATER}}]),
    ("GET", "/v1/codes/{name}"): Route("record", owner="echo"),
    ("GET", "/v1/codes/{name}/revisions"): Route("record", owner="echo"),
    ("POST", "/v1/codes/{name}/pause"): Route("record", owner="echo", says='"paused":true', mutates=True),
    ("POST", "/v1/codes/{name}/resume"): Route("record", owner="echo", says='"paused":false', mutates=True),
    ("DELETE", "/v1/codes/{name}"): Route("record", owner="sleeper", says='"deleted":true', mutates=True),
    ("GET", "/v1/schedules/{schedule_id}"): Route("record", owner="v1schedule"),
    ("POST", "/v1/schedules/{schedule_id}/pause"): Route("record", owner="v1schedule", says='"state":"paused"',
                                                         mutates=True),
    ("POST", "/v1/schedules/{schedule_id}/resume"): Route("record", owner="v1schedule", says='"state":"active"',
                                                          mutates=True),
    ("DELETE", "/v1/schedules/{schedule_id}"): Route("record", owner="v1schedule", says='"deleted":true',
                                                     mutates=True),
}


class Caller:
    """Requests to the API as one token sends them (or none), the token in a header or in `?oauth=`."""

    def __init__(self, session: requests.Session, base: str, token: str | None, scheme: str = "OAuth",
                 in_query: bool = False):
        self.session, self.base, self.token, self.scheme, self.in_query = session, base, token, scheme, in_query

    def __call__(self, method: str, path: str, **kwargs) -> requests.Response:
        headers, params = dict(kwargs.pop("headers", {})), dict(kwargs.pop("params", {}))
        if self.token is not None and self.in_query:
            params["oauth"] = self.token
        elif self.token is not None:
            headers["Authorization"] = f"{self.scheme} {self.token}"
        return self.session.request(method, self.base + path, headers=headers, params=params, timeout=20, **kwargs)

    def ok(self, method: str, path: str, **kwargs) -> requests.Response:
        answer = self(method, path, **kwargs)
        assert answer.status_code in (200, 201), (method, path, answer.status_code, answer.text)
        return answer


def fill(template: str, **values: str) -> str:
    names = re.findall(r"{(\w+)}", template)
    unknown = [name for name in names if name not in values]
    assert not unknown, f"{template}: no probe knows what to put in {unknown}: give it one in ROUTES"
    return template.format(**values)


def as_if_absent(answer: requests.Response, absent: requests.Response, real: str, fake: str, where: tuple) -> None:
    """`answer`, to a request naming `real`, is what the same request naming `fake` (which never existed) gets:
    a 4xx with the same body but for the name."""
    assert 400 <= absent.status_code < 500, (where, "the absent record's answer", absent.status_code, absent.text)
    assert (answer.status_code, answer.headers.get("content-type"), answer.text.replace(real, "<id>")) == \
        (absent.status_code, absent.headers.get("content-type"), absent.text.replace(fake, "<id>")), where


def routes_served(base: str) -> set[tuple[str, str]]:
    """Every (method, path) the app serves: the routes of the app as built here (those left out of the OpenAPI
    document too), which must include every one of the server's OpenAPI document."""
    from longshore.api.app import create_app
    from longshore.service.runtime import get_runtime

    try:  # FastAPI keeps an included router as one route; this walks into them (as its OpenAPI document does)
        from fastapi.routing import iter_route_contexts
    except ImportError:  # a FastAPI whose app lists every route itself
        def iter_route_contexts(routes):
            return routes

    built = set()
    for route in iter_route_contexts(create_app(get_runtime()).routes):
        methods = set(getattr(route, "methods", None) or ())
        if "GET" in methods:
            methods.discard("HEAD")  # Starlette's own routes answer HEAD beside GET
        built |= {(method, route.path) for method in methods}
    document = requests.get(f"{base}/openapi.json", timeout=10).json()
    documented = {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}
    assert documented <= built, documented - built
    assert any(path.startswith("/2/") for _method, path in documented)  # /2 is in the document as well as /v1
    return built


def state_of(caller: Caller, project: dict, records: dict, store) -> dict:
    """All that project A's token can read of its records, and its codes' gates in the store."""
    p = f"/2/projects/{project['id']}"
    state = {"codes": caller.ok("GET", f"{p}/codes", params={"per_page": 100}).json(),
             "tasks": caller.ok("GET", f"{p}/tasks", params={"per_page": 100}).json(),
             "schedules": caller.ok("GET", f"{p}/schedules", params={"per_page": 100}).json(),
             "jobs": caller.ok("GET", "/v1/jobs", params={"limit": 100}).json(),
             "schedule": caller.ok("GET", f"{p}/schedules/{records['schedule']}").json(),
             "v1codes": caller.ok("GET", "/v1/codes").json(), "v1schedules": caller.ok("GET", "/v1/schedules").json(),
             "v1schedule": caller.ok("GET", f"/v1/schedules/{records['v1schedule']}").json(),
             "zip": hashlib.sha256(caller.ok("GET", f"{p}/codes/{records['hello']}/download").content).hexdigest(),
             "gates": sorted((code.name, code.paused, code.latest, code.updated_at)
                             for code in store.codes.list(project=project["id"]))}
    for name in ("echo", "sleeper", "held", "hello"):
        state[name] = (caller.ok("GET", f"{p}/codes/{records[name]}").json(),
                       caller.ok("GET", f"{p}/codes/{records[name]}/revisions").json(),
                       caller.ok("GET", f"/v1/codes/{records[name]}").json())
    for name in ("done", "running", "queued", "delayed", "v1"):
        job = records[name]
        state[name] = (caller.ok("GET", f"{p}/tasks/{job}").json(), caller.ok("GET", f"/v1/jobs/{job}").json(),
                       caller("GET", f"{p}/tasks/{job}/log").text)
    return state


def zip_code(base: str, project: dict, name: str) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("hello.py", "print('hello')\n")
    data = {"name": name, "runtime": "python", "file_name": "hello.py"}
    answer = requests.post(f"{base}/2/projects/{project['id']}/codes", timeout=10,
                           headers={"Authorization": f"OAuth {project['token']}"},
                           files={"data": (None, json.dumps(data)), "file": (f"{name}.zip", archive.getvalue())})
    assert answer.status_code == 200, answer.text


@pytest.fixture
def projects(api, client):
    """The API and its two projects; after the test, nothing of theirs is left waiting or running (their
    delayed tasks, their schedules, and the sleeper of a test that failed before it cancelled it)."""
    yield api
    base, _port, teams = api
    for team in teams:
        caller = Caller(requests.Session(), base, team["token"])
        for status in ("queued", "running"):
            for job in caller.ok("GET", "/v1/jobs", params={"limit": 100, "status": status}).json()["jobs"]:
                caller.ok("POST", f"/v1/jobs/{job['id']}/cancel")
        p = f"/2/projects/{team['id']}"
        for schedule in caller.ok("GET", f"{p}/schedules", params={"per_page": 100}).json()["schedules"]:
            caller.ok("POST", f"{p}/schedules/{schedule['id']}/cancel")


@pytest.mark.timeout(180)
def test_each_token_sees_and_touches_only_its_own_projects_records_through_every_route(projects):
    from longshore.service.runtime import get_runtime

    base, _port, (team, other) = projects
    store = get_runtime().store
    served = routes_served(base)
    assert served == set(ROUTES), (f"routes no probe knows (give each one in ROUTES): {sorted(served - set(ROUTES))}; "
                                   f"routes gone: {sorted(set(ROUTES) - served)}")
    for project in (team, other):  # hundreds of probes a second: no request rate (a 429 is no answer here)
        store.projects.set_quotas(project["id"], {"requests_per_second": 0})
    revoked = store.projects.create_token(team["id"], "revoked")
    store.projects.revoke_token(next(t.id for t in store.projects.tokens(team["id"]) if t.name == "revoked"))
    session = requests.Session()
    mine = Caller(session, base, team["token"])
    a = f"/2/projects/{team['id']}"
    tag = uuid.uuid4().hex[:8]

    # Project A makes one record of every kind
    records = {"echo": f"echo-{tag}", "sleeper": f"sleeper-{tag}", "held": f"held-{tag}", "hello": f"hello-{tag}"}
    for name, command in (("echo", "sh -c 'cat $PAYLOAD_FILE'"), ("sleeper", "sleep 300"), ("held", "true")):
        mine.ok("POST", f"{a}/codes", **_image_code(records[name], command))
    zip_code(base, team, records["hello"])
    mine.ok("POST", f"{a}/codes/{records['held']}/pause_task_queue")
    queued = mine.ok("POST", f"{a}/tasks", json={"tasks": [
        {"code_name": records["echo"], "payload": f"payload-{tag}", "label": f"label-{tag}"},
        {"code_name": records["sleeper"], "timeout": 600, "label": f"label-{tag}"},
        {"code_name": records["held"], "label": f"label-{tag}"}]}).json()["tasks"]
    records.update(zip(("done", "running", "queued"), (task["id"] for task in queued)))
    records["delayed"] = mine.ok("POST", f"{a}/tasks/webhook", params={"code_name": records["echo"], "delay": 3600},
                                 data=f"hooked-{tag}").json()["id"]
    records["schedule"] = mine.ok("POST", f"{a}/schedules", json={"schedules": [
        {"code_name": records["echo"], "payload": f"scheduled-{tag}", "run_every": 3600, "start_at": LATER,
         "label": f"label-{tag}"}]}).json()["schedules"][0]["id"]
    records["v1schedule"] = mine.ok("POST", "/v1/schedules", json={
        "code": records["echo"], "payload": f"scheduled-{tag}", "run_every": 3600, "start_at": LATER,
        "label": f"label-{tag}"}).json()["id"]
    records["v1"] = mine.ok("POST", "/v1/jobs", json={
        "stack": "busybox", "command": ["echo", f"v1-{tag}"], "label": f"label-{tag}"}).json()["id"]
    assert mine.ok("GET", f"/v1/jobs/{records['v1']}/wait", params={"timeout": 30}).json()["status"] == "succeeded"
    wait_until(lambda: mine.ok("GET", f"{a}/tasks/{records['done']}").json()["status"] == "complete", timeout=30,
               what="A's echo task to finish")
    wait_until(lambda: mine.ok("GET", f"{a}/tasks/{records['running']}").json()["status"] == "running", timeout=30,
               what="A's sleeper task to run")
    # The held task goes back to wait in the store once a worker finds its code paused: then it stays as it is
    def held() -> bool:
        job = mine.ok("GET", f"/v1/jobs/{records['queued']}").json()
        return job["status"] == "queued" and job["published_at"] is None and job["not_before"] is not None

    wait_until(held, timeout=30, what="A's held task to wait in the store")

    def reaped() -> bool:  # an ended job's attempt records its container's removal, after the job ends
        last = [store.jobs.attempts(records[name])[-1] for name in ("done", "v1")]
        return all(attempt.reaped_at or not attempt.worker for attempt in last)

    wait_until(reaped, timeout=30, what="the containers of A's ended tasks to be removed")
    assert mine.ok("GET", f"{a}/tasks/{records['delayed']}").json()["status"] == "queued"
    assert mine.ok("GET", f"{a}/schedules/{records['schedule']}").json()["status"] == "scheduled"
    pools = {"codes": [records[name] for name in ("echo", "sleeper", "held", "hello")],
             "jobs": [records[name] for name in ("done", "running", "queued", "delayed", "v1")],
             "schedules": [records["schedule"], records["v1schedule"]]}
    absent_ids = {"codes": f"absent-{tag}", "jobs": uuid.uuid4().hex, "schedules": uuid.uuid4().hex}
    markers = [team["id"], team["token"], f"payload-{tag}", f"label-{tag}", f"hooked-{tag}", f"scheduled-{tag}",
               f"v1-{tag}", tag, *pools["jobs"], *pools["schedules"]]

    # A's own reads of each record route succeed (so the 404s below are not 404s for everyone)
    for (method, template), route in ROUTES.items():
        if route.kind == "record" and not route.mutates:
            [first, *_] = route.sends(records["echo"])
            parameter = re.search(r"{(\w+)}", template.removeprefix(P2)).group(1)
            path = fill(template, project_id=team["id"], **{parameter: records[route.owner]})
            assert route.says in mine.ok(method, path, **first).text, (method, path)
    before = state_of(mine, team, records, store)

    # Project B's token (in the header as each API's clients send it, and in ?oauth=), and no or a wrong token
    theirs = [Caller(session, base, other["token"]), Caller(session, base, other["token"], scheme="Bearer"),
              Caller(session, base, other["token"], in_query=True)]
    nobody = [Caller(session, base, None), Caller(session, base, "not-a-token"),
              Caller(session, base, "not-a-token", scheme="Bearer"),
              Caller(session, base, "not-a-token", in_query=True),
              Caller(session, base, revoked),  # A's, revoked
              Caller(session, base, team["token"], scheme="Basic")]  # A's token, but not as a token is given
    nowhere = uuid.uuid4().hex[:24]  # a project that does not exist
    for (method, template), route in ROUTES.items():
        parameters = set(re.findall(r"{(\w+)}", template)) - {"project_id"}
        assert parameters <= {*RECORD_PARAMETERS, "cluster_id"} and len(parameters) <= 1, \
            f"{template}: no probe knows what to put in {parameters}: give it one here"
        kind = RECORD_PARAMETERS.get(next(iter(parameters), ""))
        assert (kind is not None) == (route.kind == "record"), (template, route.kind)
        real = pools[kind] if kind else [records["echo"] if route.kind in ("create", "upload") else "c1"]
        fake = absent_ids[kind] if kind else f"absent-{tag}"

        def path(project: str, value: str, template=template, parameters=parameters) -> str:
            return fill(template, project_id=project, **{name: value for name in parameters})

        where = (method, template)
        for sent in route.sends(records["echo"] if kind is None else ""):
            if route.kind == "public":
                answer = Caller(session, base, None)(method, path("", ""), **sent)
                assert answer.status_code == 200, (where, answer.text)
                assert not [m for m in markers if m in answer.text], where
                continue
            # No token, a wrong token: 401, the same whether the project and record exist or not
            for caller in nobody:
                absent = caller(method, path(nowhere, fake), **_fresh(route, fake, sent))
                for value in real:
                    answer = caller(method, path(team["id"], value), **_fresh(route, value, sent))
                    assert answer.status_code == 401, (where, value, caller.token, answer.text)
                    as_if_absent(answer, absent, value, fake, where)
            for caller in theirs:
                # A's project in the path: as for a project that does not exist
                if "{project_id}" in template:
                    absent = caller(method, path(nowhere, fake), **_fresh(route, fake, sent))
                    for value in real:
                        answer = caller(method, path(team["id"], value), **_fresh(route, value, sent))
                        assert answer.status_code == 404, (where, value, answer.text)
                        assert answer.json() == {"msg": "Project not found"}, (where, value, answer.text)
                        as_if_absent(answer, absent, value, fake, where + (value,))
                own = other["id"]
                if route.kind == "token":
                    answer = caller(method, path(own, "c1"), **sent)
                    assert answer.status_code in (200, 404), (where, answer.text)
                    assert not [m for m in markers if m in answer.text], (where, answer.text)
                elif route.kind == "list":
                    answer = caller(method, path(own, ""), **sent)
                    assert answer.status_code == 200, (where, sent, answer.text)
                    assert not [m for m in markers if m in answer.text], (where, sent, answer.text)
                    assert not [items for items in answer.json().values() if items], (where, sent, answer.text)
                elif route.kind in ("create", "record"):
                    # B's own project in the path, A's record (or A's code, by name): as for one never made
                    absent = caller(method, path(own, fake), **_fresh(route, fake, sent))
                    for value in real:
                        answer = caller(method, path(own, value), **_fresh(route, value, sent))
                        assert answer.status_code == 404, (where, value, answer.text)
                        as_if_absent(answer, absent, value, fake, where + (value,))
                # an upload to B's own project makes B's own code, whatever its name: checked last

    # A's records are as they were, and B has none
    assert state_of(mine, team, records, store) == before
    assert not store.reads.list_jobs(project=other["id"], limit=10)
    assert not store.codes.list(project=other["id"]) and not store.schedules.list(project=other["id"])
    # A job id is one for all projects: B's token cannot take A's, and learns nothing of A's job from the refusal
    job_ids = mine.ok("GET", "/v1/jobs", params={"limit": 100}).json()["jobs"]
    for job_id in pools["jobs"]:
        taken = theirs[1]("POST", "/v1/jobs", json={"stack": "busybox", "command": ["true"], "job_id": job_id})
        assert taken.status_code == 400 and taken.json()["field"] == "job_id", taken.text
        assert not [m for m in markers if m in taken.text.replace(job_id, "")], taken.text
    assert mine.ok("GET", "/v1/jobs", params={"limit": 100}).json()["jobs"] == job_ids

    # B's code named like A's is B's own: its first revision, its command, and A's code is untouched
    b = f"/2/projects/{other['id']}"
    mirror = theirs[0].ok("POST", f"{b}/codes", **_image_code(records["echo"], "echo mirror")).json()
    assert mirror["rev"] == 1
    assert theirs[0].ok("GET", f"{b}/codes/{records['echo']}").json()["command"] == "echo mirror"
    [revision] = theirs[0].ok("GET", f"{b}/codes/{records['echo']}/revisions").json()["revisions"]
    assert (revision["project_id"], revision["rev"]) == (other["id"], 1)
    hooked = theirs[0].ok("POST", f"{b}/tasks", json={"tasks": [{"code_name": records["echo"], "delay": 3600}]})
    b_task = theirs[1].ok("GET", f"/v1/jobs/{hooked.json()['tasks'][0]['id']}").json()
    assert (b_task["project_id"], b_task["command"], b_task["code_revision"]) == (other["id"], ["echo", "mirror"], 1)
    theirs[1].ok("POST", f"/v1/jobs/{b_task['id']}/cancel")
    assert state_of(mine, team, records, store) == before

    # A's own calls of every other route succeed: the creates, then the record routes that change a record
    for (method, template), route in ROUTES.items():
        if route.kind in ("create", "upload"):
            [first, *_] = route.sends(records["echo"])
            mine.ok(method, fill(template, project_id=team["id"]), **first)
    for (method, template), route in ROUTES.items():
        if route.kind == "record" and route.mutates:
            [first, *_] = route.sends("")
            parameter = re.search(r"{(\w+)}", template.removeprefix(P2)).group(1)
            path = fill(template, project_id=team["id"], **{parameter: records[route.owner]})
            answer = mine.ok(method, path, **first)
            assert route.says in answer.text, (method, template, answer.text)
            if route.owner == "running" and "progress" in template:
                shown = mine.ok("GET", f"{a}/tasks/{records['running']}").json()
                assert (shown["percent"], shown["msg"]) == (50, "probed")
    wait_until(lambda: mine.ok("GET", f"{a}/tasks/{records['running']}").json()["status"] == "cancelled",
               timeout=30, what="A's running task to be cancelled")


def _fresh(route: Route, value: str, sent: dict) -> dict:
    """The request's keyword arguments for a create or upload naming code `value` (the others name none)."""
    if route.kind in ("create", "upload"):
        [again, *_] = route.sends(value)
        return again
    return sent
