"""Rows of the store's tables as the domain's records."""

from __future__ import annotations

from typing import Any

from longshore.domain.records import Attempt, Job, NewJob
from longshore.domain.status import AttemptStatus, JobStatus
from longshore.domain.steps import TIMED_STEPS


def job_from_row(row: Any) -> Job:
    """A `jobs` row (a mapping) as a Job; one read without its output
    (its bytes NULL) has their number as `output_size`."""
    output = _bytes(row["output_bytes"])
    size = row["output_size"] if "output_size" in row else None
    return Job(
        id=row["id"], stack=row["stack"], image=row["image"], command=row["command"],
        env=row["env"] or {}, payload=row["payload"], timeout_seconds=row["timeout_seconds"],
        memory_bytes=row["memory_bytes"], cpus=row["cpus"], disk_bytes=row["disk_bytes"],
        secret_names=row["secret_names"] or [], sealed_secret_env=row["secret_env"], status=JobStatus(row["status"]),
        attempt=row["attempt"], retries=row["retries"], retries_used=row["retries_used"],
        retry_delay_seconds=row["retry_delay_seconds"], requeues=row["requeues"], not_before=row["not_before"],
        published_at=row["published_at"], exit_code=row["exit_code"], error=row["error"],
        result=_bytes(row["result_bytes"]), output=output, output_size=len(output or b"") if size is None else size,
        output_truncated=bool(row["output_truncated"]), created_at=row["created_at"],
        started_at=row["started_at"], finished_at=row["finished_at"], priority=row["priority"],
        label=row["label"], retry_of=row["retry_of"], code=row["code"], code_revision=row["code_revision"],
        config=row["config"], progress=row["progress"], progress_message=row["progress_message"],
        progress_at=row["progress_at"], webhook=row["webhook"], schedule_id=row["schedule_id"],
        schedule_occurrence=row["schedule_occurrence"], project_id=row["project_id"], erased_at=row["erased_at"],
    )


def attempt_from_row(row: Any) -> Attempt:
    """An `attempts` row (a mapping) as an Attempt."""
    return Attempt(
        job_id=row["job_id"], number=row["number"], status=AttemptStatus(row["status"]), worker=row["worker"],
        engine=row["engine"], host=row["host"], container_id=row["container_id"],
        container_name=row["container_name"], exit_code=row["exit_code"], error=row["error"],
        created_at=row["created_at"], claimed_at=row["claimed_at"], progress_at=row["progress_at"],
        started_at=row["started_at"], finished_at=row["finished_at"], released_at=row["released_at"],
        reaped_at=row["reaped_at"], infra_retries=row["infra_retries"], redeliveries=row["redeliveries"],
        redrives=row["redrives"], repair_at=row["repair_at"],
        remade_from=row["remade_from"],
        step_seconds={step.value: row[f"{step.value}_seconds"] for step in TIMED_STEPS},
    )


def _bytes(value: Any) -> bytes | None:
    """A LargeBinary value as bytes (drivers hand back memoryview)."""
    return None if value is None else bytes(value)


def new_job_row(new: NewJob, sealed_secret_env: str | None, now: float) -> dict[str, Any]:
    """The `jobs` row of a job just submitted, queued at its first attempt (a delayed one not before its time).
    Its secret variables only sealed, never from the job."""
    return dict(
        id=new.id, stack=new.stack, image=new.image, command=new.command, env=new.env,
        payload=new.payload, timeout_seconds=new.timeout_seconds, memory_bytes=new.memory_bytes,
        cpus=new.cpus, disk_bytes=new.disk_bytes, secret_names=sorted(new.secret_env),
        secret_env=sealed_secret_env, retries=new.retries, retries_used=0, retry_delay_seconds=new.retry_delay_seconds,
        requeues=0, not_before=now + new.delay_seconds if new.delay_seconds > 0 else None,
        status=JobStatus.QUEUED.value, attempt=1, output_truncated=False, created_at=now, priority=new.priority,
        label=new.label, retry_of=new.retry_of, code=new.code, code_revision=new.code_revision, config=new.config,
        webhook=new.webhook, schedule_id=new.schedule_id, schedule_occurrence=new.schedule_occurrence,
        project_id=new.project_id)


def new_attempt_row(job_id: str, number: int, now: float) -> dict[str, Any]:
    """The `attempts` row of a new, unclaimed attempt."""
    return dict(job_id=job_id, number=number, status=AttemptStatus.QUEUED.value, created_at=now, infra_retries=0,
                redeliveries=0, redrives=0)
