"""Submitting jobs and following them: the Python API and the Celery-native entry point."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, Mapping, Sequence

from longshore.celery import app
from longshore.errors import InvalidJob
from longshore.lifecycle import publish_pull
from longshore.runtime import Runtime, get_runtime
from longshore.stacks import parse_memory
from longshore.status import JobStatus
from longshore.store import Job, NewJob

log = logging.getLogger(__name__)

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Names the platform sets inside the container; a job may not override them.
RESERVED_ENV = {"TASK_ID", "PAYLOAD_FILE", "TASK_DIR", "RESULT_FILE"}
#: IronWorker's bounds on a job's own retries.
MAX_RETRIES = 10
#: A retry's delay is held by the broker as an unacknowledged ETA message, so it must stay
#: well under RabbitMQ's consumer_timeout (30 minutes by default).
MAX_RETRY_DELAY_SECONDS = 900


def build_job(
    runtime: Runtime,
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
    """Validate a request against the manifest and settings; raise InvalidJob naming the problem."""
    settings = runtime.settings
    chosen = runtime.manifest.get(stack or settings.default_stack)
    if command is not None:
        if isinstance(command, str) or not all(isinstance(part, str) for part in command):
            raise InvalidJob("command must be a list of strings, e.g. ['echo', 'hello']")
        command = list(command) or None
    environment = dict(env or {})
    for name, value in environment.items():
        if not ENV_NAME.match(str(name)):
            raise InvalidJob(f"env name {name!r} is not a valid variable name")
        if name in RESERVED_ENV:
            raise InvalidJob(f"env name {name!r} is set by the platform and cannot be overridden")
        if not isinstance(value, str):
            raise InvalidJob(f"env {name} must be a string, not {type(value).__name__}")
    try:
        payload_text = json.dumps(payload if payload is not None else {})
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"payload is not JSON-serialisable: {exc}") from None
    if len(payload_text.encode()) > settings.payload_limit_bytes:
        raise InvalidJob(f"payload is {len(payload_text.encode())} bytes, over the limit of {settings.payload_limit_bytes}")
    stack_timeout = chosen.timeout_seconds or settings.default_timeout_seconds
    timeout_seconds = float(timeout if timeout is not None else min(stack_timeout, settings.max_timeout_seconds))
    if not 0 < timeout_seconds <= settings.max_timeout_seconds:
        raise InvalidJob(f"timeout {timeout!r} must be between 0 and {settings.max_timeout_seconds:g} seconds")
    cpu_share = float(cpus if cpus is not None else chosen.cpus)
    if not 0.01 <= cpu_share <= 64:
        raise InvalidJob(f"cpus {cpus!r} must be between 0.01 and 64")
    if image is not None and (not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image)):
        raise InvalidJob(f"image {image!r} is not an image reference")
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        raise InvalidJob(f"retries {retries!r} must be a whole number from 0 to {MAX_RETRIES}")
    if not 0 <= float(retry_delay) <= MAX_RETRY_DELAY_SECONDS:
        raise InvalidJob(f"retry_delay {retry_delay!r} must be between 0 and {MAX_RETRY_DELAY_SECONDS} seconds")
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


class JobHandle:
    """A submitted job: read its state, wait for it, read its output."""

    def __init__(self, job_id: str, runtime: Runtime | None = None):
        self.id = job_id
        self._runtime = runtime or get_runtime()

    def __repr__(self) -> str:
        return f"<JobHandle {self.id} {self.status.value}>"

    def job(self) -> Job:
        """The job's current record."""
        return self._runtime.store.get_job(self.id)

    @property
    def status(self) -> JobStatus:
        """The job's current status."""
        return self.job().status

    @property
    def exit_code(self) -> int | None:
        """The container's exit code once it ended."""
        return self.job().exit_code

    @property
    def error(self) -> str | None:
        """What went wrong, in words, if anything did."""
        return self.job().error

    @property
    def result(self) -> Any:
        """The result file the job wrote, parsed as JSON when it is JSON."""
        raw = self.job().result
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    def logs(self) -> str:
        """The job's captured stdout and stderr (the last bytes, up to the output limit)."""
        return self.job().output or ""

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job ends and return it; raises WaitTimeout after `timeout` seconds."""
        return self._runtime.store.wait_finished(self.id, timeout)

    def cancel(self) -> Job:
        """Cancel the job: a queued job never starts, a running one is stopped within seconds."""
        from longshore.lifecycle import request_cancel

        return request_cancel(self.id)

    def attempts(self) -> list:
        """The job's attempts, first first."""
        return self._runtime.store.list_attempts(self.id)

    def wait_reaped(self, timeout: float = 10.0) -> bool:
        """Block until the last attempt's container was removed; False if not within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            attempts = self._runtime.store.list_attempts(self.id)
            if attempts and (attempts[-1].reaped_at or not attempts[-1].worker):
                return True
            time.sleep(0.02)
        return False


def submit(
    stack: str | None = None,
    command: Sequence[str] | None = None,
    *,
    payload: Any = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    image: str | None = None,
    memory: str | int | None = None,
    cpus: float | None = None,
    retries: int = 0,
    retry_delay: float = 0,
) -> JobHandle:
    """Queue a job on its stack and return its handle. Raises InvalidJob at once for bad input.

    With no broker configured this process starts an embedded worker first.
    """
    runtime = get_runtime()
    new = build_job(runtime, stack=stack, command=command, payload=payload, env=env,
                    timeout=timeout, image=image, memory=memory, cpus=cpus,
                    retries=retries, retry_delay=retry_delay)
    if runtime.settings.embedded:
        from longshore.worker import ensure_embedded_worker

        ensure_embedded_worker()
    runtime.store.create_job(new)
    try:
        publish_pull(new.id, 1, new.stack)
    except Exception:  # the job is safe in the store: the janitor publishes what never reached the broker
        log.warning("job %s stored but not yet published; the janitor will publish it", new.id, exc_info=True)
    return JobHandle(new.id, runtime)


@app.task(bind=True, name="longshore.submit", acks_late=True)
def submit_job(self: Any, **fields: Any) -> str:
    """Celery-native entry point: the same fields as `submit`; the job id is this message's id."""
    runtime = get_runtime()
    job_id = self.request.id
    try:
        runtime.store.get_job(job_id)
        return job_id  # a redelivered submit: the job exists already
    except LookupError:
        pass
    new = build_job(runtime, job_id=job_id, **fields)
    runtime.store.create_job(new)
    publish_pull(new.id, 1, new.stack)
    return job_id
