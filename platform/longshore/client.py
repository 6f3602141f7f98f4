"""The public Python API: `submit` a job, and follow it through its `JobHandle`.

With no broker configured, `submit` starts an embedded worker in this process first.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Mapping, Sequence

from longshore.domain.records import Attempt, Job
from longshore.domain.status import JobStatus
from longshore.service import submit as submitting
from longshore.service.cancel import request_cancel
from longshore.service.runtime import Runtime, get_runtime
from longshore.service.scheduling import create_schedule
from longshore.service.uploads import read_archive


class JobHandle:
    """A submitted job: read its state, wait for it, read its output."""

    def __init__(self, job_id: str, runtime: Runtime | None = None):
        self.id = job_id
        self._runtime = runtime or get_runtime()

    def __repr__(self) -> str:
        return f"<JobHandle {self.id} {self.status.value}>"

    def job(self) -> Job:
        """The job's current record."""
        return self._runtime.store.jobs.get(self.id)

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
        """The result file the job wrote, parsed as JSON when it is JSON, else its text."""
        text = self.job().result_text
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    def logs(self) -> str:
        """The job's captured stdout and stderr as text (the last bytes, up to the output limit)."""
        return self.job().output_text

    def output(self) -> bytes:
        """The job's captured stdout and stderr, the bytes exactly as it wrote them."""
        return self.job().output or b""

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job ends and return it; raises WaitTimeout after `timeout` seconds."""
        return self._runtime.store.jobs.wait_finished(self.id, timeout)

    def cancel(self) -> Job:
        """Cancel the job: a queued job never starts, a running one is stopped within seconds."""
        return request_cancel(self._runtime, self.id)

    def attempts(self) -> list[Attempt]:
        """The job's attempts, first first."""
        return self._runtime.store.jobs.attempts(self.id)

    def retried_as(self) -> list["JobHandle"]:
        """The jobs that retry this one (`retry`), oldest first; `job().retry_of` is the other direction."""
        return [JobHandle(job_id, self._runtime) for job_id in self._runtime.store.reads.retried_as(self.id)]

    def webhook_deliveries(self) -> list:
        """Each status change told (or still to tell) its webhook: tries, last answer, state; in order."""
        return self._runtime.store.webhooks.of_job(self.id)

    def wait_reaped(self, timeout: float = 10.0) -> bool:
        """Block until the last attempt's container was removed; False if not within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            attempts = self.attempts()
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
    secret_env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    image: str | None = None,
    memory: str | int | None = None,
    cpus: float | None = None,
    disk: str | int | None = None,
    retries: int | None = None,
    retry_delay: float | None = None,
    priority: int | None = None,
    delay: float = 0,
    label: str | None = None,
    code: str | None = None,
    webhook: str | None = None,
) -> JobHandle:
    """Queue a job on its stack and return its handle. Raises InvalidJob at once for bad input, naming the
    field and the rule; nothing is stored then.

    `secret_env` variables reach the container like `env`, but are sealed at rest and never shown.
    `priority` (0-2): of a stack's queued jobs, higher ones start first. `delay` (seconds, up to 7 days): the
    job waits in the store until then. `label`: free text to find it by (`list_jobs(label=…)`).
    `code` ("NAME" or "NAME@REVISION"): a job of that code (`upload_code`), its defaults under the fields
    given here (env merged); None leaves a field to the code, the stack or the installation.
    `webhook`: a URL each of its status changes is POSTed to, signed (README: Webhooks).
    With no broker configured this process starts an embedded worker first.
    """
    runtime = get_runtime()
    new = submitting.build(runtime, dict(
        stack=stack, command=command, payload=payload, env=_plain(env), secret_env=_plain(secret_env),
        timeout=timeout, image=image, memory=memory, cpus=cpus, disk=disk, retries=retries,
        retry_delay=retry_delay, priority=priority, delay=delay, label=label, code=code, webhook=webhook))
    _start_embedded_worker(runtime)
    submitting.submit(runtime, new)
    return JobHandle(new.id, runtime)


def retry(job_id: str, *, delay: float = 0, secret_env: Mapping[str, str] | None = None) -> JobHandle:
    """Run a finished job again as a new job with the same stack, image, command, payload and settings,
    linked both ways (`job().retry_of`, `retried_as()`). Its secret variables were erased when it ended:
    give them again in `secret_env`. Raises InvalidJob (naming why) or JobNotFound."""
    runtime = get_runtime()
    _start_embedded_worker(runtime)
    return JobHandle(submitting.retry(runtime, job_id, delay=delay, secret_env=_plain(secret_env)), runtime)


def upload_code(name: str, stack: str, *, image: str | None = None, command: Sequence[str] | None = None,
                env: Mapping[str, str] | None = None, config: Any = None, timeout: float | None = None,
                memory: str | int | None = None, cpus: float | None = None, disk: str | int | None = None,
                priority: int | None = None, retries: int | None = None, retry_delay: float | None = None,
                max_concurrency: int | None = None, archive: bytes | str | os.PathLike | None = None,
                entry: str | None = None, webhook: str | None = None) -> int:
    """Upload a new revision of code `name`: the defaults of the jobs queued for it (`submit(code=name)`),
    validated as a job of `stack`; `config` (JSON) reaches its jobs as CONFIG_FILE; `max_concurrency` caps
    how many of its jobs run at once across the installation. An archive code gives `archive` (a zip's
    bytes, a .zip file, or a folder to zip) and `entry`, the file in it the stack runs, instead of a
    command. Returns the revision's number."""
    runtime = get_runtime()
    zipped = None if archive is None else read_archive(archive, runtime.settings.archive_limits.zip_bytes)
    return submitting.upload_code(runtime, name, dict(
        stack=stack, image=image, command=list(command) if command is not None else None, env=_plain(env),
        config=config, timeout=timeout, memory=memory, cpus=cpus, disk=disk, priority=priority, retries=retries,
        retry_delay=retry_delay, max_concurrency=max_concurrency, archive=zipped, entry=entry, webhook=webhook))


def schedule(*, code: str | None = None, stack: str | None = None, command: Sequence[str] | None = None,
             payload: Any = None, env: Mapping[str, str] | None = None, priority: int | None = None,
             timeout: float | None = None, label: str | None = None, webhook: str | None = None,
             start_at: float | str | None = None, run_every: float | None = None, run_times: int | None = None,
             end_at: float | str | None = None, **job_fields: Any) -> str:
    """Schedule jobs (of a code, or a stack and command): the first at `start_at` (a Unix time or an ISO
    8601 time with its zone; default now), then every `run_every` seconds (at least 60), at most
    `run_times` runs, none after `end_at`. Runs missed while nothing could make them are skipped, not
    made up (only the latest due one runs). Returns the schedule's id; raises InvalidJob naming the field."""
    return create_schedule(get_runtime(), dict(
        code=code, stack=stack, command=list(command) if command is not None else None, payload=payload,
        env=_plain(env), priority=priority, timeout=timeout, label=label, webhook=webhook, start_at=start_at,
        run_every=run_every, run_times=run_times, end_at=end_at, **job_fields))


def list_schedules(label: str | None = None) -> list:
    """The schedules not deleted (`domain.schedules.Schedule`), oldest first."""
    return get_runtime().store.schedules.list(label=label)


def pause_schedule(schedule_id: str) -> None:
    """No runs until `resume_schedule`; then the runs missed meanwhile collapse into one, run at once."""
    get_runtime().store.schedules.set_paused(schedule_id, True)


def resume_schedule(schedule_id: str) -> None:
    get_runtime().store.schedules.set_paused(schedule_id, False)


def delete_schedule(schedule_id: str) -> None:
    """No more runs; the jobs it made stay."""
    get_runtime().store.schedules.delete(schedule_id)


def pause_code(name: str) -> None:
    """Pause a code: its queued jobs wait (in the store) until `resume_code`; running ones go on."""
    get_runtime().store.codes.set_paused(name, True)


def resume_code(name: str) -> None:
    """Resume a paused code: its waiting jobs are queued again within a heartbeat."""
    get_runtime().store.codes.set_paused(name, False)


def list_jobs(*, status: JobStatus | str | None = None, stack: str | None = None, label: str | None = None,
              code: str | None = None, since: float | None = None, limit: int = 50) -> list[Job]:
    """The newest jobs first, filtered by status, stack, label, code and creation time (epoch seconds)."""
    wanted = JobStatus(status) if status is not None else None
    return get_runtime().store.reads.list_jobs(limit=limit, status=wanted, stack=stack, label=label, code=code,
                                               since=since)


def _start_embedded_worker(runtime: Runtime) -> None:
    """With no broker configured, this process runs the jobs it queues: start its worker first."""
    if runtime.settings.embedded:
        from longshore.worker.embedded import ensure_embedded_worker

        ensure_embedded_worker()


def _plain(mapping: Any) -> Any:
    """A Mapping that is not a dict (os.environ, a MappingProxy) as a dict; anything else as given, for the
    validator to judge."""
    return dict(mapping) if isinstance(mapping, Mapping) and not isinstance(mapping, dict) else mapping
