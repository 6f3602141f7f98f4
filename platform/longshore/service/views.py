"""What a job and a stack look like to their users, as JSON: one view for the API (/v1) and the CLI, whether
the CLI reads the store itself or asks the API."""

from __future__ import annotations

from typing import Any

from longshore.domain.records import Job
from longshore.domain.stacks import Stack
from longshore.service.runtime import Runtime


def job_view(job: Job) -> dict[str, Any]:
    """A job's fields (its output apart: it is read as the job's logs)."""
    data = job.to_dict()
    data.pop("output")
    return data


def job_detail(rt: Runtime, job: Job) -> dict[str, Any]:
    """A job with its attempts, the jobs that retry it, and its webhook deliveries."""
    deliveries = [{**vars(delivery), "state": delivery.state} for delivery in rt.store.webhooks.of_job(job.id)]
    return {**job_view(job), "attempts": [attempt.to_dict() for attempt in rt.store.jobs.attempts(job.id)],
            "retried_as": rt.store.reads.retried_as(job.id), "webhook_deliveries": deliveries}


def stack_view(stack: Stack) -> dict[str, Any]:
    """A stack jobs may name, with what a job gets by default and at most."""
    return {"name": stack.name, "image": stack.image, "runtime": stack.sandbox.runtime, "user": stack.sandbox.user,
            "pull": stack.pull.value, "takes_archives": bool(stack.entry_command),
            "defaults": vars(stack.defaults), "maxima": vars(stack.maxima)}
