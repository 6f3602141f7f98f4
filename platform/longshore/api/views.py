"""IronWorker's objects as its clients parse them: a code (revision), a task, a schedule; times in RFC 3339."""

from __future__ import annotations

import shlex
from datetime import datetime, timezone
from typing import Any

from longshore.api.auth import ApiError
from longshore.domain.records import Job

#: IronWorker's page size: 30 by default, at most 100.
PER_PAGE, MAX_PER_PAGE = 30, 100


def revision_view(project: str, revision: Any) -> dict:
    defaults = revision.defaults
    body = {"id": revision.name, "project_id": project, "name": revision.name, "rev": revision.revision,
            "latest_history_id": f"{revision.name}-{revision.revision}", "created_at": rfc3339(revision.created_at),
            "latest_change": rfc3339(revision.created_at), "stack": revision.stack, "image": defaults.get("image"),
            "max_concurrency": revision.max_concurrency, "retries": defaults.get("retries"),
            "retries_delay": defaults.get("retry_delay"), "default_priority": defaults.get("priority"),
            "env_vars": defaults.get("env") or {}, "config": revision.config}
    if revision.archive_sha256:
        body.update(file_name=revision.entry, runtime=revision.stack, latest_checksum=revision.archive_sha256)
    else:
        body["command"] = shlex.join(defaults.get("command") or [])
    return body


def task_view(job: Job) -> dict:
    """A job as IronWorker's task object. Never a schedule's keys (start_at, run_every …): IronWorker's
    Python client would take the task for a schedule."""
    duration = None
    if job.started_at and job.finished_at:
        duration = int((job.finished_at - job.started_at) * 1000)
    msg = job.error if job.status.final and job.error else job.progress_message
    body = {"id": job.id, "project_id": job.project_id, "code_id": job.code, "code_name": job.code,
            "code_history_id": f"{job.code}-{job.code_revision}" if job.code else None,
            "code_rev": str(job.code_revision) if job.code_revision else None, "status": job.status.ironworker,
            "payload": job.payload, "priority": job.priority, "timeout": int(job.timeout_seconds),
            "delay": 0, "label": job.label, "cluster": None, "created_at": rfc3339(job.created_at),
            "updated_at": rfc3339(job.finished_at or job.started_at or job.created_at),
            "start_time": rfc3339(job.started_at), "end_time": rfc3339(job.finished_at), "duration": duration,
            "percent": job.progress, "msg": msg, "retry_count": job.retries_used, "exit_code": job.exit_code,
            "log_size": job.output_size}
    if job.schedule_id:
        body["schedule_id"] = job.schedule_id
    return body


def schedule_view(item: Any) -> dict:
    timing, request = item.timing, item.request
    status = {"done": "complete", "paused": "scheduled", "active": "scheduled"}[item.state]
    return {"id": item.id, "project_id": item.project_id, "code_name": request.get("code"),
            "payload": request.get("payload_text", ""), "status": status, "start_at": rfc3339(timing.start_at),
            "end_at": rfc3339(timing.end_at), "next_start": rfc3339(item.next_at),
            "last_run_time": rfc3339(item.last_run_at),
            "run_every": int(timing.run_every) if timing.run_every else None, "run_times": timing.run_times,
            "run_count": item.runs, "priority": request.get("priority") or 0, "timeout": request.get("timeout"),
            "label": item.label, "created_at": rfc3339(item.created_at), "updated_at": rfc3339(item.updated_at),
            "msg": item.last_error}


def paged(items: list, page: int, per_page: int) -> list:
    if not 1 <= per_page <= MAX_PER_PAGE or page < 0:
        raise ApiError(400, f"per_page must be 1 to {MAX_PER_PAGE}, page 0 or more")
    return items[page * per_page:(page + 1) * per_page]


def rfc3339(value: float | None) -> str | None:
    """RFC 3339, UTC, as IronWorker's clients parse it."""
    if value is None:
        return None
    return datetime.fromtimestamp(value, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
