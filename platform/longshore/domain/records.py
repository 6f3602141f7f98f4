"""The records the store keeps: a job, its attempts, and a new job before it is stored."""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field, fields
from typing import Any

from longshore.domain.projects import DEFAULT_PROJECT
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
    disk_bytes: int
    #: Secret variables in the clear: they live in memory only, and are sealed before they are stored.
    secret_env: dict[str, str] = field(default_factory=dict, repr=False)
    retries: int = 0
    retry_delay_seconds: float = 0.0
    priority: int = 0  #: 0-2: of a stack's queued jobs, higher priorities start first
    delay_seconds: float = 0.0  #: it waits in the store this long before it is queued
    label: str | None = None
    retry_of: str | None = None  #: the finished job this one retries
    code: str | None = None  #: the code it was queued for, and that code's revision
    code_revision: int | None = None
    config: str | None = None  #: the code's config (JSON text), given to the job as CONFIG_FILE
    webhook: str | None = None  #: a URL told of each of its status changes (signed)
    schedule_id: str | None = None  #: the schedule that made it, and which of its occurrences
    schedule_occurrence: int | None = None
    project_id: str = DEFAULT_PROJECT  #: whose job it is (see `domain.projects`)
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
    disk_bytes: int
    secret_names: list[str]  #: the names of its secret variables (their values are never shown)
    #: Its secret variables, sealed (encrypted); erased once the job ends.
    sealed_secret_env: str | None = field(repr=False)
    status: JobStatus
    attempt: int  #: the number of its current (or last) attempt
    retries: int  #: how many of its own retries it asked for
    retries_used: int
    retry_delay_seconds: float
    published_at: float | None  #: when its current attempt reached the broker
    requeues: int  #: new attempts because the platform lost one (never counted as its retries)
    not_before: float | None  #: its current attempt is not published before this time (a retry's delay)
    exit_code: int | None
    error: str | None
    result: bytes | None  #: the result file's bytes, as the job wrote them
    output: bytes | None  #: the last bytes of stdout and stderr, as the job wrote them (None: not read)
    output_truncated: bool
    created_at: float
    started_at: float | None
    finished_at: float | None
    priority: int = 0
    label: str | None = None
    retry_of: str | None = None
    code: str | None = None
    code_revision: int | None = None
    config: str | None = None
    progress: int | None = None  #: 0-100, as the job last reported it while it ran, with its message
    progress_message: str | None = None
    progress_at: float | None = None
    webhook: str | None = None
    schedule_id: str | None = None
    schedule_occurrence: int | None = None
    project_id: str = DEFAULT_PROJECT
    #: When retention deleted its output, result, payload, config and env (LONGSHORE_RETENTION_OUTPUT_DAYS).
    erased_at: float | None = None
    #: The output's length in bytes: known also where the output itself was not read (a status read, a list).
    output_size: int = 0

    @property
    def output_text(self) -> str:
        """The output as text (invalid UTF-8 replaced)."""
        return (self.output or b"").decode("utf-8", "replace")

    @property
    def result_text(self) -> str | None:
        """The result as text (invalid UTF-8 replaced), None if there is none."""
        return None if self.result is None else self.result.decode("utf-8", "replace")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (status as its string, payload parsed, output and result as text)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sealed_secret_env"}
        data["status"] = self.status.value
        data["ironworker_status"] = self.status.ironworker
        try:
            data["payload"] = json.loads(self.payload, parse_constant=_not_json, parse_float=_finite)
        except ValueError:  # a payload given as text (IronWorker's), not JSON (NaN and 1e400 are not JSON either)
            data["payload"] = self.payload
        data["output"], data["result"] = self.output_text, self.result_text
        return data


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One execution of a job: where it ran and how long each step took."""

    job_id: str
    number: int
    status: AttemptStatus
    worker: str | None  #: its owner: the worker that claimed it (or adopted it on the same engine)
    engine: str | None  #: the Docker engine its container is (or would be) on
    host: str | None
    container_id: str | None
    container_name: str | None
    exit_code: int | None
    error: str | None
    created_at: float
    claimed_at: float | None
    progress_at: float | None  #: its owner's last step
    started_at: float | None
    finished_at: float | None
    released_at: float | None  #: it stopped holding a slot of its worker (its container exited, or never was)
    reaped_at: float | None
    infra_retries: int = 0  #: platform retries of its steps (never the job's own retries)
    redeliveries: int = 0  #: steps redelivered because their worker died
    redrives: int = 0  #: steps its worker's watcher sent again after they stalled
    repair_at: float | None = None  #: a repeated start of its owner works on its container (a lease, from then)
    remade_from: str | None = None  #: the refused container its container was made afresh from (once at most)
    step_seconds: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["status"] = self.status.value
        return data


@dataclass(frozen=True)
class Finished:
    """A job the store just ended: what its metrics need, without reading the job again."""

    stack: str
    run_seconds: float | None  #: from its start to its end; None when it never started


@dataclass(frozen=True, kw_only=True)
class WorkerIdentity:
    """Who a worker process is: its name, the engine it drives, how many containers it may run."""

    name: str
    engine_id: str  #: the Docker engine's own id: workers that share it can take over each other's containers
    slots: int
    host: str


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is not a finite number")
    return value
