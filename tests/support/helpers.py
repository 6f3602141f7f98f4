"""Small helpers for tests: polling, ports, scraping metrics, cleaning the registry."""

from __future__ import annotations

import base64
import socket
import subprocess
import time
from urllib.error import HTTPError
from urllib.request import Request, urlopen


def wait_until(predicate, timeout: float = 30, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def longshore_cli(*args: str) -> subprocess.CompletedProcess:
    """`longshore ARGS…` in this process's environment, its output captured as text."""
    return subprocess.run(["longshore", *args], capture_output=True, text=True, timeout=60)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    """Samples served on 127.0.0.1:port, keyed `name{label="value",…}` with labels sorted."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def sample_names(samples: dict[str, float]) -> set[str]:
    """The metric names among scraped samples."""
    return {key.split("{", 1)[0] for key in samples}


def delete_from_registry(reference: str, credentials: dict[str, str] | None = None) -> None:
    """Delete a tag's manifest from a local registry (its storage allows deletes), with the registry's
    `credentials` if it asks for them; gone already is fine."""
    host, _, rest = reference.partition("/")
    repository, _, tag = rest.rpartition(":")
    headers = {}
    if credentials:
        basic = base64.b64encode(f"{credentials['username']}:{credentials['password']}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    accept = {**headers, "Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    try:
        with urlopen(Request(f"http://{host}/v2/{repository}/manifests/{tag}", headers=accept, method="HEAD"),
                     timeout=5) as response:
            digest = response.headers["Docker-Content-Digest"]
        urlopen(Request(f"http://{host}/v2/{repository}/manifests/{digest}", headers=headers, method="DELETE"),
                timeout=5).close()
    except HTTPError as exc:
        if exc.code != 404:
            raise
