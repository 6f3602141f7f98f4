"""`longshore api` for tests: a server on a free port, two projects with their tokens, workers; and the CLI on a
laptop that reaches only the API."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import requests

from support.helpers import free_port, longshore_cli as cli, wait_until


@pytest.fixture
def api(background, start_worker):
    """`longshore api` on a free port, two projects with their tokens, workers for busybox and python."""
    port = free_port()
    background(["longshore", "api", "--port", str(port)])
    base = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return requests.get(f"{base}/2/projects/x/tasks", timeout=2).status_code == 401
        except requests.ConnectionError:
            return False

    wait_until(answers, timeout=30, what="the API to answer")
    start_worker("busybox", slots=4)
    start_worker("python", slots=2)
    projects = [json.loads(cli("projects", "create", f"team-{time.time_ns()}", "--json").stdout) for _ in range(2)]
    return base, port, projects


def laptop_env(base: str, token: str, home) -> dict[str, str]:
    """A laptop's environment: the API's URL and a token; the broker and the store unreachable."""
    return {**os.environ, "LONGSHORE_API_URL": base, "LONGSHORE_TOKEN": token,
            "LONGSHORE_BROKER_URL": "amqp://nobody:nothing@127.0.0.1:1//",
            "LONGSHORE_DATABASE_URL": "postgresql://nobody:nothing@127.0.0.1:1/none", "LONGSHORE_HOME": str(home)}


def laptop_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`longshore ARGS…` in `env`, its output captured as text."""
    return subprocess.run(["longshore", *args], env=env, capture_output=True, text=True, timeout=90)
