"""Private registries, through the CLI of the embedded default: a job's image is pulled with the credentials
configured for its registry (LONGSHORE_REGISTRY_AUTH_FILE); credentials refused, or none where some are
needed, fail the job at once with the registry and the setting named; the password shows nowhere."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from pathlib import Path

import docker.errors
import pytest

from support.services import REGISTRY_AUTH, REGISTRY_AUTH_CREDENTIALS

USERNAME, PASSWORD = REGISTRY_AUTH_CREDENTIALS["username"], REGISTRY_AUTH_CREDENTIALS["password"]
#: A refused job must end well within this, where retries of a transient failure would take minutes.
QUICKLY_SECONDS = 5


def longshore(env, *args, timeout=60):
    return subprocess.run(["longshore", *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def private_env(embedded_env, tmp_path, private_image):
    """The embedded default with one stack, `private`, whose image is only in the registry asking for credentials."""
    stacks = tmp_path / "stacks.toml"
    stacks.write_text(f'[stacks.private]\nimage = "{private_image}"\nmemory = "64m"\ncpus = 0.5\n'
                      'timeout_seconds = 60\nuser = "65534:65534"\n')
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    # DOCKER_CONFIG of its own: no `docker login` on this machine lends the pull its credentials
    return {**embedded_env, "LONGSHORE_STACKS": str(stacks), "LONGSHORE_DEFAULT_STACK": "private",
            "DOCKER_CONFIG": str(docker_config)}


def with_credentials(env, entry: dict[str, str]) -> dict[str, str]:
    path = Path(env["LONGSHORE_HOME"]).parent / "registries.json"
    path.write_text(json.dumps({"auths": {REGISTRY_AUTH: entry}}))
    return {**env, "LONGSHORE_REGISTRY_AUTH_FILE": str(path)}


def the_job(env) -> dict:
    """The status (`longshore status --json`) of the only job in the store."""
    [line] = longshore(env, "ls").stdout.splitlines()[1:]
    return json.loads(longshore(env, "status", "--json", line.split()[0]).stdout)


def shown_nowhere(secret: str, env, *texts: str) -> None:
    """`secret` is in none of the texts, nor in the bytes of the embedded store."""
    store = (Path(env["LONGSHORE_HOME"]) / "longshore.db").read_bytes()
    for text in texts:
        assert secret not in text
    assert secret.encode() not in store


def test_a_job_on_an_image_of_a_private_registry_runs_with_the_credentials_configured_for_it(
        docker_engine, private_env, private_image):
    # Given docker's own form of the registry's credentials in LONGSHORE_REGISTRY_AUTH_FILE
    encoded = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    env = with_credentials(private_env, {"auth": encoded})
    # When a job runs on the stack whose image is only in that registry
    done = longshore(env, "run", "--", "echo", "pulled with credentials")
    # Then the image was pulled and the job succeeded, and neither form of the password shows anywhere
    assert (done.returncode, done.stdout) == (0, "pulled with credentials\n"), done.stderr
    assert docker_engine.images.get(private_image)
    job = the_job(env)
    assert job["status"] == "succeeded"
    for secret in (PASSWORD, encoded):
        shown_nowhere(secret, env, done.stdout, done.stderr, json.dumps(job))


@pytest.mark.parametrize("entry,words", [
    ({"username": USERNAME, "password": "wrong-" + uuid.uuid4().hex},
     f"registry {REGISTRY_AUTH} refused the credentials configured for it in LONGSHORE_REGISTRY_AUTH_FILE"),
    (None, f"registry {REGISTRY_AUTH} requires credentials; none are configured for it in "
           "LONGSHORE_REGISTRY_AUTH_FILE"),
], ids=["wrong-password", "no-credentials"])
def test_credentials_refused_or_missing_fail_the_job_at_once_with_the_registry_and_the_setting_named(
        docker_engine, private_env, private_image, entry, words):
    # Given a wrong password for the registry, or no credentials for it at all
    env = with_credentials(private_env, entry) if entry else private_env
    # When a job runs on the stack whose image is only in that registry
    done = longshore(env, "run", "--", "echo", "never runs")
    # Then it fails within seconds, after one attempt and no platform retries, saying why in plain words
    assert done.returncode == 125 and done.stdout == "", done.stderr
    assert words in done.stderr
    job = the_job(env)
    assert job["status"] == "failed" and words in job["error"]
    assert job["finished_at"] - job["created_at"] < QUICKLY_SECONDS
    [attempt] = job["attempts"]
    assert attempt["infra_retries"] == 0 and attempt["container_id"] is None
    # And neither password shows anywhere
    for secret in {PASSWORD, (entry or {}).get("password", PASSWORD)}:
        shown_nowhere(secret, env, done.stdout, done.stderr, json.dumps(job))
    with pytest.raises(docker.errors.ImageNotFound):
        docker_engine.images.get(private_image)
