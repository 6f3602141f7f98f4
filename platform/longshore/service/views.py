"""What a job, a stack, a code, a schedule and a project look like to their users, as JSON: one view for the
API (/v1) and the CLI, whether the CLI reads the store itself or asks the API."""

from __future__ import annotations

from typing import Any

import json

from longshore.domain.codes import Code, CodeRevision
from longshore.domain.records import Job
from longshore.domain.schedules import Schedule
from longshore.domain.stacks import Stack
from longshore.service.runtime import Runtime
from longshore.store.readmodels import JobDetail


def job_view(job: Job) -> dict[str, Any]:
    """A job's fields (its output apart: it is read as the job's logs)."""
    data = job.to_dict()
    data.pop("output")
    return data


def job_detail(rt: Runtime, detail: JobDetail) -> dict[str, Any]:
    """A job with its attempts, the jobs that retry it, and its webhook deliveries (only a job with a webhook
    has any: the others' are not asked for)."""
    job = detail.job
    made = rt.store.webhooks.of_job(job.id) if job.webhook else []
    deliveries = [{**vars(delivery), "state": delivery.state} for delivery in made]
    return {**job_view(job), "attempts": [attempt.to_dict() for attempt in detail.attempts],
            "retried_as": detail.retried_as, "webhook_deliveries": deliveries}


def stack_view(stack: Stack) -> dict[str, Any]:
    """A stack jobs may name, with what a job gets by default and at most."""
    return {"name": stack.name, "image": stack.image, "runtime": stack.sandbox.runtime, "user": stack.sandbox.user,
            "pull": stack.pull.value, "takes_archives": bool(stack.entry_command),
            "defaults": vars(stack.defaults), "maxima": vars(stack.maxima)}


def code_view(code: Code) -> dict[str, Any]:
    """A code as listed: its latest revision's number and stack, and its gates."""
    return {"name": code.name, "latest": code.latest, "stack": code.stack, "paused": code.paused,
            "max_concurrency": code.max_concurrency, "created_at": code.created_at, "updated_at": code.updated_at}


def code_revision_view(revision: CodeRevision) -> dict[str, Any]:
    """One upload of a code: the defaults its jobs get (sizes in bytes), its config as JSON, its archive."""
    return {"name": revision.name, "revision": revision.revision, "stack": revision.stack,
            "defaults": revision.defaults, "config": None if revision.config is None else json.loads(revision.config),
            "max_concurrency": revision.max_concurrency, "created_at": revision.created_at,
            "archive_sha256": revision.archive_sha256, "entry": revision.entry}


def schedule_view(item: Schedule) -> dict[str, Any]:
    """A schedule: the job request each run submits, its timing, and how its runs went."""
    timing = item.timing
    return {"id": item.id, "state": item.state, "request": item.request, "label": item.label,
            "start_at": timing.start_at, "run_every": timing.run_every, "run_times": timing.run_times,
            "end_at": timing.end_at, "next_at": item.next_at, "next_occurrence": item.next_occurrence,
            "runs": item.runs, "skipped": item.skipped, "last_run_at": item.last_run_at,
            "last_job_id": item.last_job_id, "last_error": item.last_error, "created_at": item.created_at,
            "updated_at": item.updated_at}


def project_view(rt: Runtime, project_id: str) -> dict[str, Any]:
    """A project: its quotas (its own, None where it takes the installation's; and those in effect; 0 is no
    limit), and its jobs counted as those quotas count them."""
    project = rt.store.projects.get(project_id)
    effective = project.quotas.effective(rt.settings.quotas.defaults)
    return {"id": project.id, "name": project.name, "created_at": project.created_at,
            "quotas": {"own": vars(project.quotas), "effective": vars(effective)},
            "usage": vars(rt.store.reads.project_usage(project.id))}
