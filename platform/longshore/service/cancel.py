"""Cancelling: a queued job never starts; a running one's container is stopped within seconds."""

from __future__ import annotations

import logging

from longshore.broker.publish import PUBLISH_ERRORS
from longshore.domain.records import Job
from longshore.domain.steps import Step
from longshore.service.runtime import Runtime

log = logging.getLogger(__name__)


def request_cancel(rt: Runtime, job_id: str) -> Job:
    """Cancel the job (one compare-and-set, whatever its attempt) and tell the attempt's owner to stop
    its container. The owner's watcher also sees the cancel on its next tick, so the container stops
    even when the message cannot reach it (the broker is away, or the owner is another embedded process)."""
    job, attempt = rt.store.jobs.cancel(job_id)
    if attempt is not None and attempt.worker and attempt.started_at is not None:
        try:
            rt.publisher.send_step(Step.KILL, job_id, attempt.number, attempt.worker)
        except PUBLISH_ERRORS:
            log.warning("could not send the kill of job %s; its worker's watcher stops it", job_id)
    return job
