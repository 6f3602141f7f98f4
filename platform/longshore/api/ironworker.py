"""IronWorker's API v2 at /2/projects/{project_id}/…, as its official clients speak it
(../shared/IRONWORKER_API.md): codes, tasks and schedules of the token's project.

A task is a job; its id, payload (a string, written verbatim to PAYLOAD_FILE), priority, timeout, delay
and label are the job's. A code is a Longshore code of the project: an image (`image`, `command`) or a
zip (`file`, `file_name`), on the stack `stack` names, or the stack named like its `runtime`, or the
installation's default stack. Statuses are IronWorker's (`JobStatus.ironworker`).
"""

from __future__ import annotations

import codecs
import json
import re
import math
import shlex
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from longshore.api.auth import ApiError, authenticated, project_of
from longshore.api.views import MAX_PER_PAGE, PER_PAGE, paged, revision_view, schedule_view, task_view
from longshore.domain.codes import CODE_NAME
from longshore.domain.records import Job
from longshore.domain.schedules import SCHEDULE_ID
from longshore.domain.spec import is_job_id
from longshore.domain.status import JobStatus
from longshore.errors import InvalidJob, JobNotFound
from longshore.service import submit as submitting
from longshore.service.cancel import request_cancel
from longshore.service.runtime import Runtime
from longshore.service.scheduling import check_schedule, store_schedule

router = APIRouter(prefix="/2/projects/{project_id}")
#: `/2/clusters`: IronWorker-hosted clusters, which a self-hosted installation has none of.
clusters = APIRouter(prefix="/2/clusters")
Project = Depends(project_of)
#: `GET /tasks` status filters (`?complete=1&error=1`), as IronWorker names them.
#: `b'…'` or `b"…"`: what IronWorker's Python client sends on Python 3 instead of a zip's bytes.
BYTES_LITERAL = re.compile(rb"b(['\"])((?:[^\\'\"]|\\.|(?!\1)['\"])*)\1", re.DOTALL)
#: The deepest page a list may ask for, and the most tasks or schedules one request may make.
MAX_OFFSET, MAX_BATCH = 1_000_000, 100
STATUS_FILTERS = {name: [s for s in JobStatus if s.ironworker == name]
                  for name in ("queued", "running", "complete", "error", "cancelled", "killed", "timeout")}


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


async def _json(request: Request) -> dict:
    try:
        body = await request.json()
    except (ValueError, RecursionError):
        raise ApiError(400, "The body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object")
    return body


# -- codes ------------------------------------------------------------------------

@router.post("/codes")
async def upload_code(request: Request, project: str = Project) -> JSONResponse:
    """Multipart: `data` (JSON) and, for a zip code, `file`."""
    async with request.form(max_part_size=request.app.state.body_limit) as form:
        data, upload = form.get("data"), form.get("file")
        data = await data.read() if hasattr(data, "read") else data
        archive = await upload.read() if hasattr(upload, "read") else upload
    try:
        fields = json.loads(data) if data else None
    except (ValueError, RecursionError):
        fields = None
    if not isinstance(fields, dict) or not isinstance(fields.get("name"), str):
        raise ApiError(400, "data: must be a JSON object with the code's name")
    rt = _rt(request)
    revision = await run_in_threadpool(_upload, rt, project, fields, archive)
    return JSONResponse({"id": fields["name"], "msg": "Upload successful.", "rev": revision})


def _upload(rt: Runtime, project: str, fields: dict, archive: Any) -> int:
    return submitting.upload_code(rt, fields["name"], _code_fields(rt, fields, archive), project=project)


def _code_fields(rt: Runtime, data: dict, archive: Any) -> dict:
    """IronWorker's code fields as Longshore's."""
    runtime, stack = data.get("runtime") or "", data.get("stack") or None
    if not isinstance(runtime, str) or not isinstance(stack, (str, type(None))):
        raise InvalidJob("runtime, stack: must be strings")
    stack = stack or (runtime if runtime in rt.manifest.stacks else rt.settings.jobs.default_stack)
    command = data.get("command")
    if command is not None and not isinstance(command, str):
        raise InvalidJob("command: must be a string (split as a shell would)")
    try:
        words = shlex.split(command) if command else None
    except ValueError as exc:
        raise InvalidJob(f"command: {exc}") from None
    fields = {"stack": stack, "image": data.get("image") or None, "command": words,
              "env": data.get("env_vars") or None, "max_concurrency": data.get("max_concurrency"),
              "retries": data.get("retries"), "retry_delay": data.get("retries_delay"),
              "priority": data.get("default_priority"), "config": _config(data.get("config"))}
    if archive is not None and archive != "":
        fields["archive"] = _zip_bytes(archive)
        fields["entry"] = str(data.get("file_name") or "").lstrip("/")
    return fields


def _config(config: Any) -> Any:
    """IronWorker's config is a string: JSON text is kept as JSON, other text as a JSON string."""
    if not isinstance(config, str):
        return config
    try:
        return json.loads(config)
    except (ValueError, RecursionError):
        return config


def _zip_bytes(upload: Any) -> bytes:
    """The zip's bytes. IronWorker's Python client on Python 3 sends the repr of the bytes (`b'PK…'`)."""
    data = upload.encode("latin-1", "replace") if isinstance(upload, str) else bytes(upload)
    if data[:2] in (b"b'", b'b"'):
        # One bytes literal and nothing else (never evaluated as Python): its escapes decoded.
        literal = BYTES_LITERAL.fullmatch(data)
        if literal is None:
            raise InvalidJob("archive: is not a zip file (nor a Python bytes literal of one)")
        try:
            data = codecs.escape_decode(literal.group(2))[0]
        except ValueError:
            raise InvalidJob("archive: is not a zip file (a bytes literal with a bad escape)") from None
    return data


@router.get("/codes")
def list_codes(request: Request, page: int = 0, per_page: int = PER_PAGE, project: str = Project) -> dict:
    codes = _rt(request).store.codes.list(project=project)
    return {"codes": [_code(_rt(request), project, code.name) for code in paged(codes, page, per_page)]}


@router.get("/codes/{code_id}")
def get_code(request: Request, code_id: str, project: str = Project) -> dict:
    _check_code_id(code_id)
    return _code(_rt(request), project, code_id)


@router.get("/codes/{code_id}/revisions")
def code_revisions(request: Request, code_id: str, page: int = 0, per_page: int = PER_PAGE,
                   project: str = Project) -> dict:
    _check_code_id(code_id)
    revisions = _rt(request).store.codes.revisions(code_id, project=project)
    return {"revisions": [revision_view(project, revision) | {"code_id": code_id}
                          for revision in paged(revisions, page, per_page)]}


@router.get("/codes/{code_id}/download")
def download_code(request: Request, code_id: str, revision: int | None = None, project: str = Project) -> Response:
    _check_code_id(code_id)
    rt = _rt(request)
    found = rt.store.codes.revision(code_id, revision, project=project)
    if not found.archive_sha256:
        raise ApiError(404, f"Code {code_id} is an image code: there is no zip to download")
    return Response(rt.store.codes.archive(found.archive_sha256), media_type="application/zip",
                    headers={"Content-Disposition": f"filename={code_id}_{found.revision}.zip"})


@router.delete("/codes/{code_id}")
def delete_code(request: Request, code_id: str, project: str = Project) -> dict:
    _check_code_id(code_id)
    _rt(request).store.codes.delete(code_id, project=project)
    return {"msg": "Deleted"}


@router.post("/codes/{code_id}/cancel_all")
def cancel_all(request: Request, code_id: str, project: str = Project) -> dict:
    _check_code_id(code_id)
    rt = _rt(request)
    rt.store.codes.revision(code_id, project=project)  # 404 for another project's code
    queued = rt.store.reads.list_jobs(code=code_id, project=project, status=JobStatus.QUEUED, limit=10_000,
                                     with_output=False)
    for job in queued:
        request_cancel(rt, job.id)
    return {"msg": f"Cancelled {len(queued)} tasks"}


@router.post("/codes/{code_id}/pause_task_queue")
def pause_queue(request: Request, code_id: str, project: str = Project) -> dict:
    _check_code_id(code_id)
    _rt(request).store.codes.set_paused(code_id, True, project=project)
    return {"msg": "Paused"}


@router.post("/codes/{code_id}/resume_task_queue")
def resume_queue(request: Request, code_id: str, project: str = Project) -> dict:
    _check_code_id(code_id)
    _rt(request).store.codes.set_paused(code_id, False, project=project)
    return {"msg": "Resumed"}


def _check_code_id(code_id: str) -> None:
    if not CODE_NAME.fullmatch(code_id):
        raise ApiError(404, "Code not found")


def _code(rt: Runtime, project: str, name: str) -> dict:
    code = rt.store.codes.revision(name, project=project)
    return revision_view(project, code)


# -- tasks ------------------------------------------------------------------------

@router.post("/tasks")
async def queue_tasks(request: Request, project: str = Project) -> dict:
    body = await _json(request)
    requested = body.get("tasks")
    if not isinstance(requested, list) or not requested:
        raise ApiError(400, "tasks: must be a non-empty list of tasks")
    rt = _rt(request)
    return await run_in_threadpool(_queue, rt, project, requested)


def _queue(rt: Runtime, project: str, requested: list) -> dict:
    # Every task is checked before any is queued: a bad one queues none.
    if len(requested) > MAX_BATCH:
        raise InvalidJob(f"tasks: {len(requested)} in one request, over the limit of {MAX_BATCH}")
    built = [submitting.build(rt, _task_fields(task, position), project=project)
             for position, task in enumerate(requested)]
    return {"msg": "Queued up", "tasks": [{"id": job_id} for job_id in submitting.submit_many(rt, built)]}


def _task_fields(task: Any, position: int, kind: str = "tasks") -> dict:
    if not isinstance(task, dict):
        raise InvalidJob(f"{kind}[{position}]: must be an object")
    if not isinstance(task.get("code_name"), str) or not task["code_name"]:
        raise InvalidJob(f"{kind}[{position}].code_name: is required (the code to run)")
    payload = task.get("payload")
    if payload is not None and not isinstance(payload, str):
        payload = json.dumps(payload)  # IronWorker's payload is a string; a JSON value is taken as its text
    return {"code": task["code_name"], "payload_text": payload if payload is not None else "",
            "priority": task.get("priority"), "timeout": task.get("timeout"), "delay": task.get("delay") or 0,
            "label": task.get("label")}


@router.post("/tasks/webhook")
async def webhook_task(request: Request, code_name: str, priority: int | None = None, timeout: float | None = None,
                       delay: float = 0, project: str = Project) -> dict:
    """IronWorker's task webhook: the raw body becomes the task's payload."""
    payload = (await request.body()).decode("utf-8", "replace")
    fields = {"code_name": code_name, "payload": payload, "priority": priority, "timeout": timeout, "delay": delay}
    queued = await run_in_threadpool(_queue, _rt(request), project, [fields])
    return {"id": queued["tasks"][0]["id"], "msg": "Queued up"}


@router.get("/tasks")
def list_tasks(request: Request, code_name: str | None = None, page: int = 0, per_page: int = PER_PAGE,
               from_time: float | None = None, to_time: float | None = None, project: str = Project) -> dict:
    if not 1 <= per_page <= MAX_PER_PAGE or not 0 <= page * per_page <= MAX_OFFSET:
        raise ApiError(400, f"per_page must be 1 to {MAX_PER_PAGE}, page from 0 to {MAX_OFFSET} tasks deep")
    if code_name is not None and not CODE_NAME.fullmatch(code_name):
        return {"tasks": []}  # no code has such a name
    wanted = [status for name, statuses in STATUS_FILTERS.items()
              if request.query_params.get(name) in ("1", "true") for status in statuses]
    jobs = _rt(request).store.reads.list_jobs(project=project, code=code_name, status=wanted or None,
                                              since=from_time, until=to_time, limit=per_page, offset=page * per_page,
                                              with_output=False)
    return {"tasks": [task_view(job) for job in jobs]}


@router.get("/tasks/{task_id}")
async def get_task(request: Request, project_id: str, task_id: str) -> dict:
    # The status read clients poll: its token and its read in one hop to a thread, not one each.
    return await run_in_threadpool(lambda: task_view(_job(request, task_id, project_of(request, project_id),
                                                          output=False)))


@router.get("/tasks/{task_id}/log")
@router.get("/tasks/{task_id}/outlog")
def task_log(request: Request, task_id: str, project: str = Project) -> PlainTextResponse:
    job = _job(request, task_id, project)
    if not job.status.final or job.output is None:
        raise ApiError(404, "Log not found")
    return PlainTextResponse(job.output_text)


@router.post("/tasks/{task_id}/progress")
async def set_progress(request: Request, task_id: str, project: str = Project) -> dict:
    body = await _json(request)
    percent, msg = body.get("percent"), body.get("msg") or ""
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
        raise ApiError(400, "percent: must be a number from 0 to 100")
    job = _job(request, task_id, project)
    text = str(msg).replace("\x00", "")[:1000]
    if not await run_in_threadpool(_rt(request).store.jobs.set_progress, job.id, job.attempt, int(percent), text):
        return {"msg": f"Progress not set: the task is {job.status.ironworker}, not running"}
    return {"msg": "Progress set"}


@router.post("/tasks/{task_id}/retry")
async def retry_task(request: Request, task_id: str, project: str = Project) -> dict:
    body = await _json(request) if await request.body() else {}
    delay = body.get("delay") or 0
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not math.isfinite(delay):
        raise ApiError(400, "delay: must be a number of seconds")
    job = _job(request, task_id, project)
    new_id = await run_in_threadpool(submitting.retry, _rt(request), job.id, delay=delay)
    return {"msg": "Queued up", "tasks": [{"id": new_id}]}


@router.post("/tasks/{task_id}/cancel")
def cancel_task(request: Request, task_id: str, project: str = Project) -> dict:
    job = _job(request, task_id, project)
    if job.status.final:
        return {"msg": f"Task is already {job.status.ironworker}"}
    request_cancel(_rt(request), job.id)
    return {"msg": "Cancelled"}


def _job(request: Request, task_id: str, project: str, *, output: bool = True) -> Job:
    """The project's task, with its output unless `output` is False (its size is read either way)."""
    store = _rt(request).store
    try:
        job = None if not is_job_id(task_id) else store.jobs.get(task_id) if output else store.reads.job(task_id)
    except JobNotFound:
        job = None
    if job is None or job.project_id != project:
        raise ApiError(404, "Task not found")
    return job


# -- schedules ----------------------------------------------------------------------

@router.post("/schedules")
async def create_schedules(request: Request, project: str = Project) -> dict:
    body = await _json(request)
    requested = body.get("schedules")
    if not isinstance(requested, list) or not requested:
        raise ApiError(400, "schedules: must be a non-empty list of schedules")
    if len(requested) > MAX_BATCH:
        raise ApiError(400, f"schedules: {len(requested)} in one request, over the limit of {MAX_BATCH}")
    made = await run_in_threadpool(_schedule_all, _rt(request), project, requested)
    return {"msg": "Scheduled", "schedules": [{"id": schedule_id} for schedule_id in made]}


def _schedule_all(rt: Runtime, project: str, requested: list) -> list[str]:
    """Every schedule checked before any is stored: a bad one stores none."""
    checked = []
    for position, item in enumerate(requested):
        fields = _task_fields(item, position, "schedules")
        fields.pop("delay")
        fields.update({key: _when(item.get(key)) for key in ("start_at", "end_at")})
        fields.update(run_every=item.get("run_every"), run_times=item.get("run_times"))
        checked.append(check_schedule(rt, fields, project=project))
    return [store_schedule(rt, *schedule, project=project) for schedule in checked]


def _when(value: Any) -> Any:
    """IronWorker's times: RFC 3339 text (Python sends isoformat() with microseconds), or epoch seconds."""
    return value.replace(" ", "T") if isinstance(value, str) else value


@router.get("/schedules")
def list_schedules(request: Request, page: int = 0, per_page: int = PER_PAGE, project: str = Project) -> dict:
    found = _rt(request).store.schedules.list(project=project)
    return {"schedules": [schedule_view(item) for item in paged(found, page, per_page)]}


@router.get("/schedules/{schedule_id}")
def get_schedule(request: Request, schedule_id: str, project: str = Project) -> dict:
    return schedule_view(_own_schedule(request, schedule_id, project))


@router.post("/schedules/{schedule_id}/cancel")
def cancel_schedule(request: Request, schedule_id: str, project: str = Project) -> dict:
    _own_schedule(request, schedule_id, project)
    _rt(request).store.schedules.delete(schedule_id)
    return {"msg": "Cancelled"}


def _own_schedule(request: Request, schedule_id: str, project: str) -> Any:
    try:
        found = _rt(request).store.schedules.get(schedule_id) if SCHEDULE_ID.fullmatch(schedule_id) else None
    except InvalidJob:
        found = None
    if found is None or found.project_id != project:
        raise ApiError(404, "Schedule not found")
    return found


@clusters.get("")
def list_clusters(request: Request) -> dict:
    """None: Longshore's workers are the installation's own (its stacks are its queues)."""
    if authenticated(request) is None:
        raise ApiError(401, "Unauthorized: the token is wrong or revoked")
    return {"clusters": []}


@clusters.get("/{cluster_id}")
def get_cluster(request: Request, cluster_id: str) -> dict:
    list_clusters(request)
    raise ApiError(404, "Cluster not found")
