"""Submitting: validate, seal the secrets, store the job, then publish its first attempt."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from typing import Any

from longshore.domain.codes import build_code, job_from_code, parse_reference
from longshore.domain.projects import DEFAULT_PROJECT
from longshore.domain.records import NewJob
from longshore.domain.spec import build_job, is_job_id
from longshore.domain.stacks import STACK_NAME
from longshore.domain.status import JobStatus
from longshore.errors import InvalidJob, JobNotFound
from longshore.service.dispatch import publish_attempt
from longshore.service.runtime import Runtime

log = logging.getLogger(__name__)

#: The stack a rejected job is counted under when it named no stack this installation has.
UNKNOWN_STACK = "-"


def build(rt: Runtime, fields: dict[str, Any], *, project: str = DEFAULT_PROJECT) -> NewJob:
    """Validate a request into a job of `project`: on its own, or (with `code`: NAME or NAME@REVISION) as a
    job of that code's revision (a code of the same project), its defaults overridden by the request's
    fields. Fields given as None are unset."""
    fields = {key: value for key, value in fields.items() if value is not None}
    if "code" not in fields:
        return dataclasses.replace(build_job(rt.manifest, rt.settings.job_limits, **fields), project_id=project)
    name, number = parse_reference(fields.pop("code"))
    revision = rt.store.codes.revision(name, number, project=project)
    new = job_from_code(rt.manifest, rt.settings.job_limits, revision, fields)
    return dataclasses.replace(new, code=name, code_revision=revision.revision, config=revision.config,
                               project_id=project)


def upload_code(rt: Runtime, name: str, fields: dict[str, Any], *, project: str = DEFAULT_PROJECT) -> int:
    """Store a new revision of code `name` (its defaults validated as a job of its stack); its number."""
    fields = {key: value for key, value in fields.items() if value is not None}
    return rt.store.codes.upload(name, build_code(rt.manifest, rt.settings.job_limits, name, fields,
                                                  rt.settings.archive_limits), project=project)


def submit(rt: Runtime, new: NewJob) -> str:
    """Store a validated job (its secrets sealed) and publish its first attempt; return its id. A publish that
    fails leaves the job safe in the store, published when due. QuotaExceeded (nothing stored) when its
    project has its quota of waiting jobs."""
    return submit_many(rt, [new])[0]


def submit_many(rt: Runtime, batch: list[NewJob]) -> list[str]:
    """Store validated jobs of one project in one transaction (all or none), then publish each."""
    for new in batch:
        check_webhook_secret(rt, new)
    rt.store.jobs.create_many([(new, rt.sealer.seal(new.secret_env)) for new in batch],
                              default_max_queued=rt.settings.quotas.max_queued_jobs)
    for new in batch:
        if new.delay_seconds <= 0:  # a delayed job waits in the store, never as a message: `publish_due` queues it
            publish_attempt(rt, new.id, 1, new.stack, new.priority)
    return [new.id for new in batch]


def check_webhook_secret(rt: Runtime, new: NewJob) -> None:
    """A job naming a webhook needs the installation's signing key."""
    if new.webhook and rt.settings.scheduler.webhook_secret is None:
        raise InvalidJob("webhook: this installation signs webhooks with LONGSHORE_WEBHOOK_SECRET, which is not set")


def retry(rt: Runtime, job_id: str, *, delay: float = 0, secret_env: dict[str, str] | None = None) -> str:
    """Submit a finished job again: a new job with its stack, image, command, payload and settings, linked to
    it (`retry_of`), checked against today's limits; return the new id. Secret variables are erased when a
    job ends, so a job that had some must be given them again."""
    job = rt.store.jobs.get(job_id)
    if not job.status.final or job.status is JobStatus.REJECTED:
        raise InvalidJob(f"job_id: job {job.id} is {job.status.value}; only a job that ran and ended can be retried")
    if job.erased_at is not None:
        raise InvalidJob(f"job_id: job {job.id} ended long ago and its payload, config and env were deleted "
                         "(LONGSHORE_RETENTION_OUTPUT_DAYS): submit it anew")
    given = sorted(secret_env or {})
    if given != sorted(job.secret_names):
        raise InvalidJob(f"secret_env: job {job.id} had secret variables {', '.join(job.secret_names) or 'none'}, "
                         f"erased when it ended: give exactly those again (given: {', '.join(given) or 'none'})")
    new = build_job(rt.manifest, rt.settings.job_limits, stack=job.stack, image=job.image, command=job.command,
                    payload_text=job.payload, env=job.env, secret_env=secret_env, timeout=job.timeout_seconds,
                    memory=job.memory_bytes, cpus=job.cpus, disk=job.disk_bytes, retries=job.retries,
                    retry_delay=job.retry_delay_seconds, priority=job.priority, label=job.label, delay=delay,
                    webhook=job.webhook)
    return submit(rt, dataclasses.replace(new, retry_of=job.id, code=job.code, code_revision=job.code_revision,
                                          config=job.config, project_id=job.project_id))


def submit_from_message(rt: Runtime, message_id: Any, args: tuple, fields: dict[str, Any]) -> str:
    """The Celery-native entry point: the fields of `longshore.submit` as keyword arguments, the job id the
    message's id. A bad message is never dropped: it is stored as a `rejected` job saying why, under its id
    (or, if that id cannot name a job, under `rejected_id(id)`), for its sender to read."""
    job_id = message_id if is_job_id(message_id) else rejected_id(message_id)
    try:
        rt.store.jobs.get(job_id)
        return job_id  # a redelivered submit: the job exists already
    except JobNotFound:
        pass
    try:
        if job_id != message_id:
            raise InvalidJob("job_id: the message's id must be 1 to 64 letters, digits, '-' or '_'")
        if "job_id" in fields:
            raise InvalidJob("job_id: a Celery-native submit's job id is its message's id (send_task's task_id)")
        if args:
            raise InvalidJob(f"the message has {len(args)} positional argument(s); longshore.submit takes its "
                             "fields as keyword arguments only")
        return submit(rt, build(rt, {**fields, "job_id": job_id}))
    except InvalidJob as exc:
        stack = fields.get("stack") if isinstance(fields.get("stack"), str) else None
        known = stack if stack in rt.manifest.stacks and STACK_NAME.fullmatch(stack) else UNKNOWN_STACK
        if rt.store.jobs.reject(job_id, known, f"rejected: {exc}"):
            log.warning("rejected submission %s: %s", job_id, exc)
        return job_id


def rejected_id(message_id: Any) -> str:
    """Where a submission whose id cannot name a job is recorded: `rejected-` and a digest of that id."""
    return "rejected-" + hashlib.sha256(str(message_id).encode("utf-8", "surrogatepass")).hexdigest()[:32]
