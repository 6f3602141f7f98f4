"""The records the store keeps: a job, its attempts, and a new job before it is stored."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, fields
from typing import Any

from longshore.domain.status import AttemptStatus, JobStatus


@dataclass(frozen=True, kw_only=True)
class NewJob:
    """What a caller asks for, validated by `domain.spec.build_job` before it gets here."""

    stack: str
    image: str
    command: list[str] | None
    env: dict[str, str]
    payload: str
    timeout_seconds: float
    memory_bytes: int
    cpus: float
    retries: int = 0
    retry_delay_seconds: float = 0.0
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True, kw_only=True)
class Job:
    """A job as the store holds it."""

    id: str
    stack: str
    image: str
    command: list[str] | None
    env: dict[str, str]
    payload: str
    timeout_seconds: float
    memory_bytes: int
    cpus: float
    status: JobStatus
    attempt: int  #: the number of its current (or last) attempt
    retries: int  #: how many of its own retries it asked for
    retries_used: int
    retry_delay_seconds: float
    published_at: float | None  #: when its current attempt reached the broker
    exit_code: int | None
    error: str | None
    result: str | None
    output: str | None
    output_truncated: bool
    created_at: float
    started_at: float | None
    finished_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (status as its string, payload parsed)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["status"] = self.status.value
        data["payload"] = json.loads(self.payload)
        return data


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One execution of a job: where it ran and how long each step took."""

    job_id: str
    number: int
    status: AttemptStatus
    worker: str | None  #: the worker that claimed it (its pull ran there; the later steps follow)
    host: str | None
    container_id: str | None
    container_name: str | None
    exit_code: int | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    reaped_at: float | None
    infra_retries: int = 0  #: platform retries of its steps (never the job's own retries)
    redeliveries: int = 0  #: steps redelivered because their worker died
    step_seconds: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["status"] = self.status.value
        return data
