"""The job spec's validator: one function every entry point passes a request through.

`build_job` checks a caller's fields against the stack manifest and the
installation's limits and returns a `NewJob`, or raises `InvalidJob` naming the
problem. It is pure: the CLI, the Python API and the Celery-native entry point
all call it before anything is stored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from longshore.domain.records import NewJob
from longshore.domain.stacks import StackManifest, parse_memory
from longshore.errors import InvalidJob

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Names the platform sets inside the container; a job may not override them.
RESERVED_ENV = frozenset({"TASK_ID", "PAYLOAD_FILE", "TASK_DIR", "RESULT_FILE"})
MIN_CPUS, MAX_CPUS = 0.01, 64


@dataclass(frozen=True, kw_only=True)
class JobLimits:
    """The installation's bounds on what a job may ask for (built from settings)."""

    default_stack: str
    payload_limit_bytes: int
    default_timeout_seconds: float
    max_timeout_seconds: float
    max_retries: int
    max_retry_delay_seconds: float


def build_job(
    manifest: StackManifest,
    limits: JobLimits,
    *,
    stack: str | None,
    command: Sequence[str] | None,
    payload: Any = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    image: str | None = None,
    memory: str | int | None = None,
    cpus: float | None = None,
    retries: int = 0,
    retry_delay: float = 0,
    job_id: str | None = None,
) -> NewJob:
    """Validate a request against the manifest and limits; raise InvalidJob naming the problem."""
    chosen = manifest.get(stack or limits.default_stack)
    if command is not None:
        if isinstance(command, str) or not all(isinstance(part, str) for part in command):
            raise InvalidJob("command must be a list of strings, e.g. ['echo', 'hello']")
        command = list(command) or None
    environment = _environment(env)
    try:
        payload_text = json.dumps(payload if payload is not None else {})
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"payload is not JSON-serialisable: {exc}") from None
    if len(payload_text.encode()) > limits.payload_limit_bytes:
        raise InvalidJob(f"payload is {len(payload_text.encode())} bytes, over the limit of {limits.payload_limit_bytes}")
    stack_timeout = chosen.timeout_seconds or limits.default_timeout_seconds
    timeout_seconds = float(timeout if timeout is not None else min(stack_timeout, limits.max_timeout_seconds))
    if not 0 < timeout_seconds <= limits.max_timeout_seconds:
        raise InvalidJob(f"timeout {timeout!r} must be between 0 and {limits.max_timeout_seconds:g} seconds")
    cpu_share = float(cpus if cpus is not None else chosen.cpus)
    if not MIN_CPUS <= cpu_share <= MAX_CPUS:
        raise InvalidJob(f"cpus {cpus!r} must be between {MIN_CPUS} and {MAX_CPUS}")
    if image is not None and (not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image)):
        raise InvalidJob(f"image {image!r} is not an image reference")
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= limits.max_retries:
        raise InvalidJob(f"retries {retries!r} must be a whole number from 0 to {limits.max_retries}")
    if not 0 <= float(retry_delay) <= limits.max_retry_delay_seconds:
        raise InvalidJob(f"retry_delay {retry_delay!r} must be between 0 and "
                         f"{limits.max_retry_delay_seconds:g} seconds")
    extra = {"id": job_id} if job_id else {}
    return NewJob(
        stack=chosen.name,
        image=image or chosen.image,
        command=command,
        env=environment,
        payload=payload_text,
        timeout_seconds=timeout_seconds,
        memory_bytes=parse_memory(memory) if memory is not None else chosen.memory_bytes,
        cpus=cpu_share,
        retries=retries,
        retry_delay_seconds=float(retry_delay),
        **extra,
    )


def _environment(env: Mapping[str, str] | None) -> dict[str, str]:
    environment = dict(env or {})
    for name, value in environment.items():
        if not ENV_NAME.match(str(name)):
            raise InvalidJob(f"env name {name!r} is not a valid variable name")
        if name in RESERVED_ENV:
            raise InvalidJob(f"env name {name!r} is set by the platform and cannot be overridden")
        if not isinstance(value, str):
            raise InvalidJob(f"env {name} must be a string, not {type(value).__name__}")
    return environment
