"""`longshore.Client(url, token)`: Longshore over its HTTP API (`longshore api`, /v1), for a program or laptop
with neither broker nor database access. Its handles answer as `submit()`'s do: `wait()`, `job()` and
`cancel()` give a `Job`; a job's attempts and links come as the API's JSON (`detail()`)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import time
from typing import Any, Mapping, Sequence

import requests

from longshore.domain.codes import known_name
from longshore.domain.records import Job
from longshore.domain.schedules import known_id
from longshore.domain.status import JobStatus
from longshore.errors import (
    CodeNotFound, InvalidJob, JobNotFound, QuotaExceeded, Refused, ScheduleNotFound, Unreachable, WaitTimeout,
)
from longshore.service.uploads import read_archive

#: The longest one wait request asks the API to hold (it holds at most 60 s).
WAIT_SLICE_SECONDS = 30.0
#: How long a request is tried again while the API asks to wait (429, 503), and while it cannot be reached
#: (it may be restarting).
RETRY_SECONDS, CONNECT_RETRY_SECONDS = 30.0, 5.0
#: The most jobs one list request asks for (the API's most).
PAGE = 100
JOB_FIELDS = {f.name for f in dataclasses.fields(Job)}
#: What a 404 naming this field is raised as (one naming none is a job's, or a path the API does not serve).
MISSING = {"code": CodeNotFound, "schedule_id": ScheduleNotFound}
#: The most of an archive file or folder read for an upload (one byte more, for the API to refuse): its base64
#: stays within the default upload body limit, so the API answers a zip over its limit by naming it.
ARCHIVE_READ_BYTES = 96 << 20


class Client:
    """A token's view of one installation: its project's jobs, codes and schedules."""

    def __init__(self, url: str, token: str, *, timeout: float = 30):
        self.base, self.timeout = url.rstrip("/"), timeout
        self.url = self.base + "/v1"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def submit(self, stack: str | None = None, command: Sequence[str] | None = None, **fields: Any) -> "RemoteJob":
        """Queue a job (`longshore.submit`'s fields); InvalidJob naming the field when it is refused."""
        body = {key: value for key, value in {"stack": stack, "command": list(command) if command else None,
                                              **fields}.items() if value is not None}
        return RemoteJob(self, self._call("POST", "/jobs", json=body)["id"])

    def list_jobs(self, *, limit: int = 20, **filters: Any) -> list[Job]:
        """The newest `limit` jobs first (`status`, `label`, `code`, `stack`, `since`), a page of up to 100 at
        a time."""
        params = {key: value for key, value in filters.items() if value is not None}
        found: list[Job] = []
        while len(found) < limit:
            page = self._call("GET", "/jobs", params={**params, "limit": min(PAGE, limit - len(found))})
            found.extend(job_from_view(view) for view in page["jobs"])
            if not page["next"]:
                break
            params["cursor"] = page["next"]
        return found

    def retry(self, job_id: str, *, delay: float = 0, secret_env: dict[str, str] | None = None) -> "RemoteJob":
        body = {"delay": delay, **({"secret_env": secret_env} if secret_env else {})}
        return RemoteJob(self, self._call("POST", f"/jobs/{job_id}/retry", json=body)["id"])

    def stacks(self) -> list[dict]:
        return self._call("GET", "/stacks")["stacks"]

    # -- codes, schedules and the project: their views are the API's JSON (`service.views`) ---------------

    def upload_code(self, name: str, stack: str, *, image: str | None = None, command: Sequence[str] | None = None,
                    env: Mapping[str, str] | None = None, config: Any = None, timeout: float | None = None,
                    memory: str | int | None = None, cpus: float | None = None, disk: str | int | None = None,
                    priority: int | None = None, retries: int | None = None, retry_delay: float | None = None,
                    max_concurrency: int | None = None, archive: bytes | str | os.PathLike | None = None,
                    entry: str | None = None, webhook: str | None = None) -> int:
        """`longshore.upload_code` over HTTP: a new revision of code `name`; returns its number. `archive` (a
        zip's bytes, a .zip file, or a folder zipped here) is sent as base64."""
        fields = dict(stack=stack, image=image, command=None if command is None else list(command),
                      env=None if env is None else dict(env), config=config, timeout=timeout, memory=memory,
                      cpus=cpus, disk=disk, priority=priority, retries=retries, retry_delay=retry_delay,
                      max_concurrency=max_concurrency, entry=entry, webhook=webhook)
        if archive is not None:
            fields["archive_base64"] = base64.b64encode(read_archive(archive, ARCHIVE_READ_BYTES)).decode("ascii")
        body = {"name": name, **{key: value for key, value in fields.items() if value is not None}}
        return self._call("POST", "/codes", json=body)["revision"]

    def list_codes(self) -> list[dict]:
        """The project's codes by name: latest revision, stack, `paused`, `max_concurrency`."""
        return self._call("GET", "/codes")["codes"]

    def code(self, name: str) -> dict:
        """A code, its latest revision's defaults under `latest_revision`; CodeNotFound if there is none."""
        return self._call("GET", f"/codes/{known_name(name)}")

    def code_revisions(self, name: str) -> list[dict]:
        return self._call("GET", f"/codes/{known_name(name)}/revisions")["revisions"]

    def delete_code(self, name: str) -> None:
        """No new jobs of the code (its queued ones still run)."""
        self._call("DELETE", f"/codes/{known_name(name)}")

    def pause_code(self, name: str) -> dict:
        """Its queued jobs wait until `resume_code`; running ones go on. Returns the code."""
        return self._call("POST", f"/codes/{known_name(name)}/pause")

    def resume_code(self, name: str) -> dict:
        return self._call("POST", f"/codes/{known_name(name)}/resume")

    def schedule(self, *, code: str | None = None, stack: str | None = None, command: Sequence[str] | None = None,
                 payload: Any = None, env: Mapping[str, str] | None = None, priority: int | None = None,
                 timeout: float | None = None, label: str | None = None, webhook: str | None = None,
                 start_at: float | str | None = None, run_every: float | None = None, run_times: int | None = None,
                 end_at: float | str | None = None, **job_fields: Any) -> str:
        """`longshore.schedule` over HTTP; returns the schedule's id."""
        fields = dict(code=code, stack=stack, command=None if command is None else list(command), payload=payload,
                      env=None if env is None else dict(env), priority=priority, timeout=timeout, label=label,
                      webhook=webhook, start_at=start_at, run_every=run_every, run_times=run_times, end_at=end_at,
                      **job_fields)
        body = {key: value for key, value in fields.items() if value is not None}
        return self._call("POST", "/schedules", json=body)["id"]

    def list_schedules(self, label: str | None = None) -> list[dict]:
        """The project's schedules not deleted, oldest first."""
        return self._call("GET", "/schedules", params={} if label is None else {"label": label})["schedules"]

    def get_schedule(self, schedule_id: str) -> dict:
        return self._call("GET", f"/schedules/{known_id(schedule_id)}")

    def pause_schedule(self, schedule_id: str) -> dict:
        """No runs until `resume_schedule`. Returns the schedule."""
        return self._call("POST", f"/schedules/{known_id(schedule_id)}/pause")

    def resume_schedule(self, schedule_id: str) -> dict:
        return self._call("POST", f"/schedules/{known_id(schedule_id)}/resume")

    def delete_schedule(self, schedule_id: str) -> None:
        """No more runs; the jobs it made stay."""
        self._call("DELETE", f"/schedules/{known_id(schedule_id)}")

    def project(self) -> dict:
        """The token's project: id, name, its quotas (`own`, `effective`) and `usage` (jobs waiting, running)."""
        return self._call("GET", "/project")

    def _call(self, method: str, path: str, *, raw: bool = False, **kwargs: Any) -> Any:
        """One request, tried again while the API asks to wait (429, 503, Retry-After) or cannot be reached,
        for up to RETRY_SECONDS; a POST only on 429, which did nothing (a 503 may follow a stored job)."""
        started = time.monotonic()
        while True:
            try:
                return self._once(method, path, raw=raw, **kwargs)
            except (QuotaExceeded, Unreachable) as exc:
                wait, within = getattr(exc, "retry_after", 1.0), getattr(exc, "retry_within", 0.0)
                if (method != "GET" and not isinstance(exc, QuotaExceeded)) or \
                        time.monotonic() + wait > started + within:
                    raise
                time.sleep(wait)

    def _once(self, method: str, path: str, *, raw: bool = False, **kwargs: Any) -> Any:
        try:
            answer = self.session.request(method, self.url + path, **{"timeout": self.timeout, **kwargs})
        except requests.RequestException as exc:
            raise _retryable(Unreachable(f"LONGSHORE_API_URL: cannot reach {self.base}: {exc.__class__.__name__}"),
                             within=CONNECT_RETRY_SECONDS) from None
        if answer.status_code < 400:
            if raw:
                return answer
            try:
                body = answer.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise Unreachable(f"LONGSHORE_API_URL: {self.base} did not answer as Longshore's API does "
                                  f"({answer.status_code}, {answer.headers.get('Content-Type', 'no type')})")
            return body
        try:
            error = answer.json()
            error = error if isinstance(error, dict) else {}
            words = error.get("msg", answer.text[:200])
        except ValueError:
            error, words = {}, answer.text[:200]
        if answer.status_code == 404:
            raise MISSING.get(error.get("field"), JobNotFound)(words)
        if answer.status_code == 429:
            raise _retryable(QuotaExceeded(words, retry_after=_seconds(answer.headers.get("Retry-After"))),
                             within=RETRY_SECONDS)
        if answer.status_code in (401, 403):
            raise Refused(f"{answer.status_code}: {words}")
        if answer.status_code == 503:  # the store is away for a moment
            unavailable = Unreachable(f"{self.base} answered 503: {words}")
            unavailable.retry_after = _seconds(answer.headers.get("Retry-After"))
            raise _retryable(unavailable, within=RETRY_SECONDS)
        if answer.status_code >= 500:
            raise Unreachable(f"{self.base} answered {answer.status_code}: {words}")
        raise InvalidJob(words)


def _retryable(exc: Exception, *, within: float) -> Exception:
    exc.retry_within = within
    return exc


def _seconds(retry_after: str | None) -> float:
    """Retry-After as seconds (a number; an HTTP date or nonsense: 1)."""
    try:
        return min(max(float(retry_after or 1), 0.0), RETRY_SECONDS)
    except ValueError:
        return 1.0


class RemoteJob:
    """A submitted job, followed over HTTP."""

    def __init__(self, client: Client, job_id: str):
        self.client, self.id = client, job_id

    def __repr__(self) -> str:
        return f"<RemoteJob {self.id}>"

    def detail(self) -> dict:
        """The API's view of the job, with its attempts, the jobs that retry it and its webhook deliveries."""
        return self.client._call("GET", f"/jobs/{self.id}")

    def job(self) -> Job:
        return job_from_view(self.detail())

    @property
    def status(self) -> JobStatus:
        return self.job().status

    @property
    def exit_code(self) -> int | None:
        return self.job().exit_code

    @property
    def error(self) -> str | None:
        return self.job().error

    @property
    def result(self) -> Any:
        """The result file the job wrote, parsed as JSON when it is JSON, else its text."""
        text = self.job().result_text
        try:
            return None if text is None else json.loads(text)
        except ValueError:
            return text

    def output(self) -> bytes:
        """Its stdout and stderr, the bytes exactly as it wrote them (the last bytes, up to the output limit)."""
        return self.client._call("GET", f"/jobs/{self.id}/logs", raw=True).content

    def logs(self) -> str:
        return self.output().decode("utf-8", "replace")

    def cancel(self) -> Job:
        return job_from_view(self.client._call("POST", f"/jobs/{self.id}/cancel"))

    def retried_as(self) -> list["RemoteJob"]:
        return [RemoteJob(self.client, job_id) for job_id in self.detail()["retried_as"]]

    def wait(self, timeout: float | None = None) -> Job:
        """The job once it has ended, its output included (long polls of up to 30 s each); WaitTimeout after
        `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = WAIT_SLICE_SECONDS if deadline is None else max(0.0, min(WAIT_SLICE_SECONDS,
                                                                             deadline - time.monotonic()))
            view = self.client._call("GET", f"/jobs/{self.id}/wait", params={"timeout": left},
                                     timeout=left + self.client.timeout)
            if JobStatus(view["status"]).final:
                return dataclasses.replace(job_from_view(view), output=self.output())
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {self.id} did not finish within {timeout}s")


def job_from_view(view: dict) -> Job:
    """A `Job` from the API's JSON view of it (its output read apart, its sealed secrets never sent)."""
    fields = {key: value for key, value in view.items() if key in JOB_FIELDS}
    payload = view.get("payload")
    result = view.get("result")
    return Job(**{**fields, "status": JobStatus(view["status"]), "sealed_secret_env": None, "output": None,
                  "payload": payload if isinstance(payload, str) else json.dumps(payload),
                  "result": None if result is None else result.encode()})
