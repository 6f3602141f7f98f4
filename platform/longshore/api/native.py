"""Longshore's own API, /v1: jobs (submit one or a batch, get, list by cursor, logs, cancel, retry, a long-poll
wait) and stacks, for the token's project, with `Authorization: Bearer TOKEN`. Fields are
`longshore.submit`'s, checked by the same validator; errors are `{"msg": …, "field": …}` with a 4xx code.
Its OpenAPI document is /openapi.json, browsable at /docs."""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from longshore.api.auth import ApiError, authenticated
from longshore.domain.records import Job
from longshore.domain.spec import JobRequest, is_job_id
from longshore.domain.status import JobStatus
from longshore.errors import JobNotFound
from longshore.service import submit as submitting
from longshore.service.cancel import request_cancel
from longshore.service.runtime import Runtime
from longshore.service.views import job_detail, job_view, stack_view

router = APIRouter(prefix="/v1")
#: The longest a wait holds a request (a client asks again).
MAX_WAIT_SECONDS = 60
WAIT_POLL_SECONDS = 0.5
MAX_BATCH, MAX_LIMIT = 100, 100


def project(request: Request) -> str:
    owner = authenticated(request)
    if owner is None:
        raise ApiError(401, "Unauthorized: give a valid token as `Authorization: Bearer TOKEN`")
    return owner


Project = Depends(project)


class JobSubmission(JobRequest):
    """A job to submit: `longshore.submit`'s fields (or a code's name, its defaults under them)."""

    code: str | None = Field(default=None, description="NAME or NAME@REVISION of a code of the project")


class JobBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    jobs: list[JobSubmission] = Field(min_length=1, max_length=MAX_BATCH)


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    delay: float = Field(default=0, ge=0, le=7 * 86400)
    secret_env: dict[str, str] | None = Field(default=None, description="the job's secret variables again "
                                                                         "(erased when it ended)")


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


@router.post("/jobs", status_code=201)
def submit_job(request: Request, job: JobSubmission, project: str = Project) -> dict:
    """Submit one job; answers the job as stored."""
    rt = _rt(request)
    new = submitting.build(rt, job.model_dump(exclude_unset=True), project=project)
    return job_view(rt.store.jobs.get(submitting.submit(rt, new)))


@router.post("/jobs/batch", status_code=201)
def submit_jobs(request: Request, batch: JobBatch, project: str = Project) -> dict:
    """Submit up to 100 jobs; every one is checked before any is stored."""
    rt = _rt(request)
    built = [submitting.build(rt, job.model_dump(exclude_unset=True), project=project) for job in batch.jobs]
    return {"ids": submitting.submit_many(rt, built)}


@router.get("/jobs")
def list_jobs(request: Request, status: JobStatus | None = None, label: str | None = None,
              code: str | None = None, stack: str | None = None, since: float | None = None, limit: int = 20,
              cursor: str | None = None, project: str = Project) -> dict:
    """The project's jobs, newest first (`since`: created at or after, in seconds since the epoch), `limit` a
    page; `next` is the cursor of the following page."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit: must be 1 to {MAX_LIMIT}")
    if since is not None and not math.isfinite(since):
        raise ApiError(400, "since: must be a time in seconds since the epoch")
    for name, value in (("label", label), ("code", code), ("stack", stack)):
        if value is not None and "\x00" in value:
            raise ApiError(400, f"{name}: must not contain a NUL character")
    jobs = _rt(request).store.reads.list_jobs(project=project, status=status, label=label, code=code, stack=stack,
                                              since=since, limit=limit, before=_cursor(cursor), with_output=False)
    following = _encode(jobs[-1]) if len(jobs) == limit else None
    return {"jobs": [job_view(job) for job in jobs], "next": following}


@router.get("/jobs/{job_id}", response_model=dict)
async def get_job(request: Request, job_id: str) -> JSONResponse:
    """The job, its attempts, the jobs that retry it, and its webhook deliveries."""
    # The status read callers poll: its token and its read in one hop to a thread, not one each; its view is
    # JSON already (FastAPI's encoding of a returned dict walks it again).
    def answer() -> JSONResponse:
        owner, rt = project(request), _rt(request)
        detail = rt.store.reads.job_detail(job_id) if is_job_id(job_id) else None
        if detail is None or detail.job.project_id != owner:
            raise ApiError(404, "job_id: no such job")
        return JSONResponse(job_detail(rt, detail))

    return await run_in_threadpool(answer)


@router.get("/jobs/{job_id}/logs", response_class=PlainTextResponse)
def job_logs(request: Request, job_id: str, project: str = Project) -> Response:
    """Its output, kept when it ends: stdout and stderr together, the last bytes, exactly as it wrote them
    (`X-Longshore-Output-Truncated: 1` when earlier bytes were dropped)."""
    job = _job(request, job_id, project)
    return Response(job.output or b"", media_type="text/plain; charset=utf-8",
                    headers={"X-Longshore-Output-Truncated": "1" if job.output_truncated else "0"})


@router.post("/jobs/{job_id}/cancel")
def cancel_job(request: Request, job_id: str, project: str = Project) -> dict:
    job = _job(request, job_id, project)
    return job_view(job if job.status.final else request_cancel(_rt(request), job.id))


@router.post("/jobs/{job_id}/retry", status_code=201)
def retry_job(request: Request, job_id: str, retry: RetryRequest | None = None, project: str = Project) -> dict:
    """A new job with the same code, payload and settings, linked to this one."""
    job = _job(request, job_id, project)
    rt = _rt(request)
    retry = retry or RetryRequest()
    return job_view(rt.store.jobs.get(submitting.retry(rt, job.id, delay=retry.delay, secret_env=retry.secret_env)))


@router.get("/jobs/{job_id}/wait")
async def wait_job(request: Request, job_id: str, timeout: float = 30, project: str = Project) -> dict:
    """The job once it has ended, or as it is after `timeout` seconds (at most 60): ask again then. No
    database connection is held while waiting (a short read every half second)."""
    if not 0 <= timeout <= MAX_WAIT_SECONDS:
        raise ApiError(400, f"timeout: must be 0 to {MAX_WAIT_SECONDS} seconds")
    deadline = time.monotonic() + timeout
    while True:
        job = await run_in_threadpool(_job, request, job_id, project)
        if job.status.final or time.monotonic() >= deadline:
            return job_view(job)
        await asyncio.sleep(WAIT_POLL_SECONDS)


@router.get("/stacks")
def stacks(request: Request, project: str = Project) -> dict:
    """The stacks jobs may name, with what a job gets by default and at most."""
    manifest = _rt(request).manifest
    return {"stacks": [stack_view(manifest.get(name)) for name in manifest.names()]}


def _job(request: Request, job_id: str, project: str) -> Job:
    try:
        job = _rt(request).store.jobs.get(job_id) if is_job_id(job_id) else None
    except JobNotFound:
        job = None
    if job is None or job.project_id != project:
        raise ApiError(404, "job_id: no such job")
    return job


def _encode(job: Job) -> str:
    return base64.urlsafe_b64encode(f"{job.created_at!r}|{job.id}".encode()).decode()


def _cursor(cursor: str | None) -> tuple[float, str] | None:
    if cursor is None:
        return None
    try:
        stamp, _, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return float(stamp), job_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "cursor: not a cursor this API gave") from None

