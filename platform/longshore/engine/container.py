"""One attempt's container: its spec, its labels, the sandbox the engine is asked for, and the read-back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docker.types import LogConfig

LABEL_JOB = "io.longshore.job"
LABEL_ATTEMPT = "io.longshore.attempt"
LABEL_WORKER = "io.longshore.worker"
#: The job's timeout in seconds: its deadline is the container's start plus this, enforced by the
#: worker's watcher from the engine alone (it needs neither the store nor the broker to kill on time).
LABEL_TIMEOUT = "io.longshore.timeout"
#: Which installation (job store) made the container: a janitor touches only its own.
LABEL_INSTALLATION = "io.longshore.installation"


@dataclass(frozen=True, kw_only=True)
class ContainerSpec:
    """Everything needed to create one attempt's container."""

    name: str
    image: str
    command: list[str] | None
    env: dict[str, str]
    user: str | None
    memory_bytes: int
    cpus: float
    pids_limit: int
    labels: dict[str, str]
    payload: str
    output_limit_bytes: int


#: Labels a job container must not inherit from its image: an image built by docker compose carries its
#: project and service, and compose would take the job for one of its own containers (and remove it).
CLEARED_IMAGE_LABELS = {"com.docker.compose.project": "", "com.docker.compose.service": "",
                        "com.docker.compose.oneoff": ""}


def container_labels(spec: ContainerSpec) -> dict[str, str]:
    """The labels the container is created with: Longshore's, over cleared image labels."""
    return {**CLEARED_IMAGE_LABELS, **spec.labels}


def host_config(spec: ContainerSpec) -> dict[str, Any]:
    """The engine's HostConfig for the spec: limits, no network, no privileges, bounded logs."""
    return dict(
        mem_limit=spec.memory_bytes,
        memswap_limit=spec.memory_bytes,  # no swap: the limit is the limit
        nano_cpus=int(spec.cpus * 1e9),
        pids_limit=spec.pids_limit,
        network_mode="none",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        log_config=LogConfig(
            # The local driver keeps the bytes as the job wrote them (json-file turns invalid UTF-8 into U+FFFD).
            type="local",
            # Two files: after a rotation the previous file still holds the output
            # before it, so the last `output_limit_bytes` are always there to read.
            config={"max-size": str(spec.output_limit_bytes), "max-file": "2", "compress": "false"},
        ),
    )


def unapplied_limits(applied: dict[str, Any], spec: ContainerSpec) -> list[str]:
    """The limits the engine's HostConfig (read back after create) lacks, in words; empty when all held."""
    wanted = {
        "Memory": spec.memory_bytes,
        "MemorySwap": spec.memory_bytes,
        "NanoCpus": int(spec.cpus * 1e9),
        "PidsLimit": spec.pids_limit,
    }
    return [f"{key}={value} (engine has {applied.get(key)})"
            for key, value in wanted.items() if applied.get(key) != value]


def belongs_to(labels: dict[str, str] | None, spec: ContainerSpec) -> bool:
    """True when an existing container's labels say it is this spec's attempt."""
    labels = labels or {}
    return all(labels.get(key) == spec.labels[key] for key in (LABEL_JOB, LABEL_ATTEMPT))
