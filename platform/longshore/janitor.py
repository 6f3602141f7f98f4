"""The janitor: finds what the happy path missed, on every engine and in the store.

- On each engine: removes Longshore containers whose job ended, is unknown, or has
  moved to a later attempt (after a grace period); kills containers running past
  their job's deadline; requeues a running attempt whose container vanished.
- In the store: requeues, as a new attempt, the attempts of workers that stopped
  heart-beating; re-publishes queued jobs that never reached the broker (the store
  write and the publish are not atomic).

A single failure is logged and the pass goes on. Runs as a periodic Celery task
(`celery -A longshore beat`, or `longshore worker --beat`), at each worker's
start, and one-shot as `longshore janitor`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from longshore.engine import LABEL_ATTEMPT, LABEL_DEADLINE, LABEL_JOB, LABEL_WORKER
from longshore.errors import JobNotFound
from longshore.metrics import REAPER_REMOVED
from longshore.runtime import Runtime
from longshore.status import JobStatus

log = logging.getLogger(__name__)

#: A queued job not yet on the broker this long after its store write is re-published.
UNPUBLISHED_AFTER_SECONDS = 10


@dataclass
class JanitorReport:
    """What one pass did, counted by reason."""

    removed: Counter = field(default_factory=Counter)
    killed: int = 0
    requeued: Counter = field(default_factory=Counter)
    republished: int = 0
    rewaited: int = 0
    errors: int = 0

    def merge(self, other: "JanitorReport") -> "JanitorReport":
        """Add another pass's counts to this one."""
        self.removed.update(other.removed)
        self.requeued.update(other.requeued)
        self.killed += other.killed
        self.republished += other.republished
        self.rewaited += other.rewaited
        self.errors += other.errors
        return self

    def summary(self) -> str:
        """One line for a log or a terminal."""
        removed = ", ".join(f"{n} {reason}" for reason, n in sorted(self.removed.items())) or "0"
        requeued = ", ".join(f"{n} {reason}" for reason, n in sorted(self.requeued.items())) or "0"
        return (f"removed {removed}; killed {self.killed}; requeued {requeued}; "
                f"republished {self.republished}; waits re-sent {self.rewaited}; errors {self.errors}")


def sweep_engine(runtime: Runtime, *, grace_seconds: float) -> JanitorReport:
    """Clean this process's Docker engine of containers the happy path left behind."""
    report = JanitorReport()
    now = time.time()
    for container in runtime.engine.managed_containers(runtime.settings.installation):
        try:
            _sweep_container(runtime, container, now, grace_seconds, report)
        except Exception:  # one bad container must not stop the pass
            report.errors += 1
            log.exception("janitor could not handle container %s", container.get("Id", "?")[:12])
    return report


def _sweep_container(runtime: Runtime, container: dict, now: float, grace_seconds: float, report: JanitorReport) -> None:
    labels = container.get("Labels") or {}
    job_id, attempt = labels.get(LABEL_JOB, ""), int(labels.get(LABEL_ATTEMPT) or 0)
    old_enough = now - container.get("Created", now) > grace_seconds
    try:
        job = runtime.store.get_job(job_id)
    except JobNotFound:
        job = None
    if job is None or job.status.final or job.attempt != attempt:
        if old_enough and runtime.engine.remove(container["Id"]):
            reason = "unknown_job" if job is None else ("stale_attempt" if job.attempt != attempt else "job_ended")
            report.removed[reason] += 1
            REAPER_REMOVED.labels(reason).inc()
        return
    deadline = float(labels.get(LABEL_DEADLINE) or "inf")
    if container.get("State") == "running" and now > deadline + grace_seconds:
        runtime.engine.kill(container["Id"])  # its wait step (or its requeue) records timed_out
        report.killed += 1
    elif container.get("State") == "exited" and job.status is JobStatus.RUNNING and old_enough:
        # Exited, but the job never finished: its wait step was lost (the store was down
        # through every retry). Waiting again is idempotent and finishes it.
        from longshore.lifecycle import wait_container
        from longshore.routing import worker_queue

        worker = labels.get(LABEL_WORKER)
        if worker:
            wait_container.apply_async((job_id, attempt), queue=worker_queue(worker))
            report.rewaited += 1


def requeue_vanished(runtime: Runtime, nodename: str, *, grace_seconds: float) -> JanitorReport:
    """Running attempts of this worker whose container is gone: requeue them as a new attempt."""
    from longshore.lifecycle import container_name

    report = JanitorReport()
    for job, attempt in runtime.store.claimed_unfinished_attempts():
        if attempt.worker != nodename or job.status is not JobStatus.RUNNING:
            continue
        if time.time() - (attempt.started_at or time.time()) < grace_seconds:
            continue
        try:
            if runtime.engine.state(container_name(job.id, attempt.number)) is None:
                _requeue(runtime, job, attempt.number, "its container vanished", report, "container_vanished")
        except Exception:
            report.errors += 1
            log.exception("janitor could not check job %s", job.id)
    return report


def check_store(runtime: Runtime, *, lost_after_seconds: float, unpublished_after_seconds: float) -> JanitorReport:
    """Requeue the attempts of lost workers and re-publish jobs that never reached the broker."""
    from longshore.lifecycle import publish_pull

    report = JanitorReport()
    live = set(runtime.store.live_workers(lost_after_seconds))
    for job, attempt in runtime.store.claimed_unfinished_attempts():
        if attempt.worker in live:
            continue
        try:
            _requeue(runtime, job, attempt.number, f"its worker {attempt.worker} stopped heart-beating", report, "worker_lost")
        except Exception:
            report.errors += 1
            log.exception("janitor could not requeue job %s", job.id)
    for job in runtime.store.unpublished_jobs(unpublished_after_seconds):
        try:
            publish_pull(job.id, job.attempt, job.stack)
            report.republished += 1
        except Exception:
            report.errors += 1
            log.exception("janitor could not re-publish job %s", job.id)
    return report


def _requeue(runtime: Runtime, job, number: int, why: str, report: JanitorReport, reason: str) -> None:
    from longshore.lifecycle import publish_pull

    # A lost attempt is the platform's fault: it does not use up the job's own retries.
    if runtime.store.next_attempt(job.id, number, outcome=JobStatus.FAILED, error=f"attempt lost: {why}"):
        publish_pull(job.id, number + 1, job.stack)
        report.requeued[reason] += 1
        log.warning("requeued job %s as attempt %s: %s", job.id, number + 1, why)


def run_janitor_pass(runtime: Runtime, nodename: str | None = None) -> JanitorReport:
    """One whole pass for this process: the store, then this engine (and this worker's attempts)."""
    settings = runtime.settings
    report = check_store(runtime, lost_after_seconds=settings.worker_lost_seconds,
                         unpublished_after_seconds=max(settings.reap_grace_seconds, UNPUBLISHED_AFTER_SECONDS))
    report.merge(sweep_engine(runtime, grace_seconds=settings.reap_grace_seconds))
    if nodename:
        report.merge(requeue_vanished(runtime, nodename, grace_seconds=settings.reap_grace_seconds))
    return report
