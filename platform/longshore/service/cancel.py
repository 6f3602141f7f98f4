"""Cancelling: a queued job never starts; a running one's container is killed and reaped."""

from __future__ import annotations

from longshore.domain.records import Job
from longshore.domain.status import JobStatus
from longshore.domain.steps import Step
from longshore.service.runtime import Runtime


def request_cancel(rt: Runtime, job_id: str) -> Job:
    """Cancel the job and, if a worker holds its attempt's container, tell that worker to kill it."""
    jobs = rt.store.jobs
    was_running = jobs.get(job_id).status is JobStatus.RUNNING
    job = jobs.cancel(job_id)
    if job.status is JobStatus.CANCELLED:
        current = jobs.attempts(job_id)[-1]
        if current.worker and (was_running or current.container_id):
            rt.publisher.send_step(Step.KILL, job_id, current.number, current.worker)
    return job
