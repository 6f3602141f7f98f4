"""The janitor: finds what the happy path missed, on every engine and in the store.

- On each engine: removes Longshore containers whose job ended, is unknown, or has
  moved to a later attempt (after a grace period); kills containers running past
  their job's deadline; re-sends the wait of an exited container whose job never
  finished; requeues a running attempt whose container vanished.
- In the store: requeues, as a new attempt, the attempts of workers that stopped
  heart-beating; re-publishes queued jobs that never reached the broker (the store
  write and the publish are not atomic).

A single failure is logged and the pass goes on. Runs as a periodic task (beat),
at each worker's start, and one-shot as `longshore janitor`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from longshore.domain.outcome import Outcome
from longshore.domain.policy import Requeue
from longshore.domain.records import Job
from longshore.domain.status import JobStatus
from longshore.domain.steps import Step, container_name
from longshore.engine.container import LABEL_ATTEMPT, LABEL_DEADLINE, LABEL_JOB, LABEL_WORKER
from longshore.errors import JobNotFound
from longshore.service.dispatch import conclude, publish_attempt
from longshore.service.runtime import Runtime

log = logging.getLogger(__name__)


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


def sweep_engine(rt: Runtime, *, grace_seconds: float) -> JanitorReport:
    """Clean this process's Docker engine of containers the happy path left behind."""
    report = JanitorReport()
    now = time.time()
    for container in rt.engine.managed_containers(rt.settings.installation):
        try:
            _sweep_container(rt, container, now, grace_seconds, report)
        except Exception:  # one bad container must not stop the pass
            report.errors += 1
            log.exception("janitor could not handle container %s", container.get("Id", "?")[:12])
    return report


def _sweep_container(rt: Runtime, container: dict, now: float, grace_seconds: float, report: JanitorReport) -> None:
    labels = container.get("Labels") or {}
    job_id, attempt = labels.get(LABEL_JOB, ""), int(labels.get(LABEL_ATTEMPT) or 0)
    old_enough = now - container.get("Created", now) > grace_seconds
    try:
        job = rt.store.jobs.get(job_id)
    except JobNotFound:
        job = None
    if job is None or job.status.final or job.attempt != attempt:
        if old_enough and rt.engine.remove(container["Id"]):
            reason = "unknown_job" if job is None else ("stale_attempt" if job.attempt != attempt else "job_ended")
            report.removed[reason] += 1
            rt.events.container_removed(reason)
        return
    deadline = float(labels.get(LABEL_DEADLINE) or "inf")
    if container.get("State") == "running" and now > deadline + grace_seconds:
        rt.engine.kill(container["Id"])  # its wait step (or its requeue) records timed_out
        report.killed += 1
    elif container.get("State") == "exited" and job.status is JobStatus.RUNNING and old_enough:
        # Exited, but the job never finished: its wait step was lost (the store was down
        # through every retry). Waiting again is idempotent and finishes it.
        worker = labels.get(LABEL_WORKER)
        if worker:
            rt.publisher.send_step(Step.WAIT, job_id, attempt, worker)
            report.rewaited += 1


def requeue_vanished(rt: Runtime, nodename: str, *, grace_seconds: float) -> JanitorReport:
    """Running attempts of this worker whose container is gone: requeue them as a new attempt."""
    report = JanitorReport()
    for job, attempt in rt.store.reads.claimed_unfinished_attempts():
        if attempt.worker != nodename or job.status is not JobStatus.RUNNING:
            continue
        if time.time() - (attempt.started_at or time.time()) < grace_seconds:
            continue
        try:
            if rt.engine.state(container_name(job.id, attempt.number)) is None:
                _requeue(rt, job, attempt.number, "its container vanished", report, "container_vanished")
        except Exception:  # one bad job must not stop the pass
            report.errors += 1
            log.exception("janitor could not check job %s", job.id)
    return report


def check_store(rt: Runtime, *, lost_after_seconds: float, unpublished_after_seconds: float) -> JanitorReport:
    """Requeue the attempts of lost workers and re-publish jobs that never reached the broker."""
    report = JanitorReport()
    live = set(rt.store.workers.live(lost_after_seconds))
    for job, attempt in rt.store.reads.claimed_unfinished_attempts():
        if attempt.worker in live:
            continue
        try:
            _requeue(rt, job, attempt.number, f"its worker {attempt.worker} stopped heart-beating", report,
                     "worker_lost")
        except Exception:  # one bad job must not stop the pass
            report.errors += 1
            log.exception("janitor could not requeue job %s", job.id)
    for job in rt.store.reads.unpublished_jobs(unpublished_after_seconds):
        try:
            publish_attempt(rt, job.id, job.attempt, job.stack)
            report.republished += 1
        except Exception:  # the broker is away: the next pass tries again
            report.errors += 1
            log.exception("janitor could not re-publish job %s", job.id)
    return report


def _requeue(rt: Runtime, job: Job, number: int, why: str, report: JanitorReport, reason: str) -> None:
    lost = Requeue(Outcome(status=JobStatus.FAILED), reason=f"attempt lost: {why}")
    if conclude(rt, job.id, number, lost, stack=job.stack):
        report.requeued[reason] += 1
        log.warning("requeued job %s as attempt %s: %s", job.id, number + 1, why)


def _check_store_now(rt: Runtime) -> JanitorReport:
    janitor = rt.settings.janitor
    return check_store(rt, lost_after_seconds=rt.settings.worker.lost_seconds,
                       unpublished_after_seconds=max(janitor.reap_grace_seconds, janitor.unpublished_after_seconds))


def run_janitor_pass(rt: Runtime, nodename: str | None = None) -> JanitorReport:
    """One whole pass for this process: the store, then this engine (and this worker's attempts)."""
    grace = rt.settings.janitor.reap_grace_seconds
    report = _check_store_now(rt)
    report.merge(sweep_engine(rt, grace_seconds=grace))
    if nodename:
        report.merge(requeue_vanished(rt, nodename, grace_seconds=grace))
    return report


def janitor_tick(rt: Runtime) -> JanitorReport:
    """The periodic pass: check the store, then ask every live worker to sweep its own engine."""
    report = _check_store_now(rt)
    for nodename in rt.store.workers.live(rt.settings.worker.lost_seconds):
        rt.publisher.send_sweep(nodename, expires_seconds=rt.settings.janitor.interval_seconds)
    return report


def sweep_own_engine(rt: Runtime, nodename: str) -> JanitorReport:
    """A worker's share of the periodic pass: its engine, and its attempts whose container vanished."""
    grace = rt.settings.janitor.reap_grace_seconds
    return sweep_engine(rt, grace_seconds=grace).merge(requeue_vanished(rt, nodename, grace_seconds=grace))
