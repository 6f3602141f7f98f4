"""`longshore.Client(url, token)`: Longshore over its HTTP API (`longshore api`, /v1), for a program or laptop
with neither broker nor database access. Its handles answer as `submit()`'s do: `wait()`, `job()` and
`cancel()` give a `Job`; a job's attempts and links come as the API's JSON (`detail()`)."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Sequence

import requests

from longshore.domain.records import Job
from longshore.domain.status import JobStatus
from longshore.errors import InvalidJob, JobNotFound, QuotaExceeded, Refused, Unreachable, WaitTimeout

#: The longest one wait request asks the API to hold (it holds at most 60 s).
WAIT_SLICE_SECONDS = 30.0
#: The most jobs one list request asks for (the API's most).
PAGE = 100
JOB_FIELDS = {f.name for f in dataclasses.fields(Job)}


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

    def _call(self, method: str, path: str, *, raw: bool = False, **kwargs: Any) -> Any:
        try:
            answer = self.session.request(method, self.url + path, **{"timeout": self.timeout, **kwargs})
        except requests.RequestException as exc:
            raise Unreachable(f"LONGSHORE_API_URL: cannot reach {self.base}: {exc.__class__.__name__}") from None
        if answer.status_code < 400:
            if raw:
                return answer
            return answer.json() if "json" in answer.headers.get("Content-Type", "") else answer.text
        try:
            words = answer.json().get("msg", answer.text)
        except ValueError:
            words = answer.text[:200]
        if answer.status_code == 404:
            raise JobNotFound(words)
        if answer.status_code == 429:
            raise QuotaExceeded(words, retry_after=float(answer.headers.get("Retry-After") or 1))
        if answer.status_code in (401, 403):
            raise Refused(f"{answer.status_code}: {words}")
        if answer.status_code >= 500:
            raise Unreachable(f"{self.base} answered {answer.status_code}: {words}")
        raise InvalidJob(words)


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
