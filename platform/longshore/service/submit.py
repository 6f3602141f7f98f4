"""Submitting: store the job, then publish its first attempt to its stack's queue."""

from __future__ import annotations

import logging
from typing import Any

from longshore.domain.records import NewJob
from longshore.domain.spec import build_job
from longshore.errors import JobNotFound
from longshore.service.dispatch import publish_attempt
from longshore.service.runtime import Runtime

log = logging.getLogger(__name__)


def submit(rt: Runtime, new: NewJob) -> str:
    """Store a validated job and publish its first attempt; return its id. A publish that fails leaves
    the job safe in the store, published when due."""
    rt.store.jobs.create(new)
    publish_attempt(rt, new.id, 1, new.stack)
    return new.id


def submit_from_message(rt: Runtime, job_id: str, fields: dict[str, Any]) -> str:
    """The Celery-native entry point: the same fields as `longshore.submit`; the job id is the message's id."""
    try:
        rt.store.jobs.get(job_id)
        return job_id  # a redelivered submit: the job exists already
    except JobNotFound:
        pass
    new = build_job(rt.manifest, rt.settings.job_limits, job_id=job_id, **fields)
    rt.store.jobs.create(new)
    publish_attempt(rt, new.id, 1, new.stack)
    return job_id
