"""`longshore.Client(url, token)`: Longshore over its HTTP API (`longshore api`, /v1), for a program or laptop
with neither broker nor database access. Its handles answer as `submit()`'s do; a job's fields come back as
a dict (the API's JSON view) rather than a `Job`."""

from __future__ import annotations

import time
from typing import Any, Sequence

import requests

from longshore.domain.status import JobStatus
from longshore.errors import InvalidJob, JobNotFound, Refused, WaitTimeout


class Client:
    """A token's view of one installation: its project's jobs."""

    def __init__(self, url: str, token: str, *, timeout: float = 30):
        self.url, self.timeout = url.rstrip("/") + "/v1", timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def submit(self, stack: str | None = None, command: Sequence[str] | None = None, **fields: Any) -> "RemoteJob":
        """Queue a job (`longshore.submit`'s fields); InvalidJob naming the field when it is refused."""
        body = {key: value for key, value in {"stack": stack, "command": list(command) if command else None,
                                              **fields}.items() if value is not None}
        return RemoteJob(self, self._call("POST", "/jobs", json=body)["id"])

    def list_jobs(self, **filters: Any) -> list[dict]:
        """The newest jobs first (`status`, `label`, `code`, `stack`, `limit` up to 100)."""
        return self._call("GET", "/jobs", params=filters)["jobs"]

    def retry(self, job_id: str, *, delay: float = 0) -> "RemoteJob":
        return RemoteJob(self, self._call("POST", f"/jobs/{job_id}/retry", json={"delay": delay})["id"])

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        if answer.status_code < 400:
            return answer.json() if "json" in answer.headers.get("Content-Type", "") else answer.text
        try:
            words = answer.json().get("msg", answer.text)
        except ValueError:
            words = answer.text
        if answer.status_code == 404:
            raise JobNotFound(words)
        if answer.status_code in (401, 403, 429):
            raise Refused(f"{answer.status_code}: {words}")
        raise InvalidJob(words)


class RemoteJob:
    """A submitted job, followed over HTTP."""

    def __init__(self, client: Client, job_id: str):
        self.client, self.id = client, job_id

    def __repr__(self) -> str:
        return f"<RemoteJob {self.id}>"

    def job(self) -> dict:
        return self.client._call("GET", f"/jobs/{self.id}")

    @property
    def status(self) -> JobStatus:
        return JobStatus(self.job()["status"])

    @property
    def exit_code(self) -> int | None:
        return self.job()["exit_code"]

    @property
    def error(self) -> str | None:
        return self.job()["error"]

    def logs(self) -> str:
        return self.client._call("GET", f"/jobs/{self.id}/logs")

    def cancel(self) -> dict:
        return self.client._call("POST", f"/jobs/{self.id}/cancel")

    def wait(self, timeout: float | None = None) -> dict:
        """The job once it has ended (long polls of up to 30 s each); WaitTimeout after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 30.0 if deadline is None else max(0.0, min(30.0, deadline - time.monotonic()))
            job = self.client._call("GET", f"/jobs/{self.id}/wait", params={"timeout": left})
            if JobStatus(job["status"]).final:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {self.id} did not finish within {timeout}s")
