"""The janitor: what no single worker's watcher can see, in the store and on each engine.

- In the store: the attempts of lost workers (see `liveness`). One that never started
  goes back to its stack's queue at once (its owner, if it returns, is fenced at
  start). One that started may still have a container running on its engine, so it is
  left for a live worker on that engine to adopt; only when that engine has had no
  live worker for LONGSHORE_ENGINE_LOST_SECONDS and the job is past its deadline is it
  requeued. Due attempts waiting in the store are published; workers silent for long
  and owning nothing are forgotten. Jobs that ended long ago lose their data, or go
  (LONGSHORE_RETENTION_*: `domain.retention`), a bounded batch per transaction.
- On an engine: removes Longshore containers whose job is unknown or whose attempt
  has ended (after a grace period). Live containers belong to their owner's watcher.

A single failure is logged and the pass goes on. Runs as a periodic task (beat),
and one-shot as `longshore janitor`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from longshore.domain.outcome import Outcome
from longshore.domain.policy import Requeue, requeue_or_lose
from longshore.domain.records import Attempt, Job
from longshore.domain.retention import drain, ended_before
from longshore.domain.status import AttemptStatus, JobStatus
from longshore.engine.client import timestamp
from longshore.engine.container import LABEL_ATTEMPT, LABEL_JOB
from longshore.errors import JobNotFound
from longshore.service.dispatch import conclude, publish_due
from longshore.service.liveness import lost_workers
from longshore.service.runtime import Runtime

log = logging.getLogger(__name__)

#: The youngest contract folder without a container the engine sweep removes.
CONTRACT_FOLDER_GRACE_SECONDS = 120


@dataclass
class JanitorReport:
    """What one pass did, counted by reason."""

    removed: Counter = field(default_factory=Counter)
    requeued: Counter = field(default_factory=Counter)
    republished: int = 0
    forgotten: int = 0
    erased: int = 0  #: jobs whose data retention deleted
    deleted: int = 0  #: jobs retention deleted
    errors: int = 0

    def merge(self, other: "JanitorReport") -> "JanitorReport":
        """Add another pass's counts to this one."""
        self.removed.update(other.removed)
        self.requeued.update(other.requeued)
        self.republished += other.republished
        self.forgotten += other.forgotten
        self.erased += other.erased
        self.deleted += other.deleted
        self.errors += other.errors
        return self

    def summary(self) -> str:
        """One line for a log or a terminal."""
        removed = ", ".join(f"{n} {reason}" for reason, n in sorted(self.removed.items())) or "0"
        requeued = ", ".join(f"{n} {reason}" for reason, n in sorted(self.requeued.items())) or "0"
        return (f"removed {removed}; requeued {requeued}; published {self.republished}; "
                f"workers forgotten {self.forgotten}; jobs erased {self.erased}, deleted {self.deleted}; "
                f"errors {self.errors}")


def check_store(rt: Runtime, *, engines_gone: frozenset[str] = frozenset()) -> JanitorReport:
    """Requeue what lost workers left unstarted (or on an engine that is gone), publish what is due,
    forget the long gone. `engines_gone` are engines an operator says are gone for good."""
    report = JanitorReport()
    worker = rt.settings.worker
    open_attempts = rt.store.reads.claimed_open_attempts()
    rows = rt.store.workers.all()
    owners = sorted({attempt.worker for _job, attempt in open_attempts})
    known = {row.name for row in rows}
    lost = lost_workers(rows, consumers=rt.publisher.consumers(sorted(known)) if known else {},
                        lost_seconds=worker.lost_seconds, store_up_seconds=rt.store.health.seconds_up(),
                        home=rt.settings.home, here=worker.hostname)
    lost |= {name for name in owners if name not in known}
    engine_seen = _engines_last_seen(rows)
    for job, attempt in open_attempts:
        if attempt.worker not in lost:
            continue
        try:
            _requeue_lost(rt, job, attempt, engine_seen, engines_gone, report)
        except Exception:  # one job must not stop the pass
            report.errors += 1
            log.exception("janitor could not requeue job %s", job.id)
    try:
        report.republished += publish_due(rt, lost_publishers=sorted(lost))
    except Exception:  # the store or broker is away: the next pass tries again
        report.errors += 1
        log.exception("janitor could not publish due attempts")
    report.forgotten += rt.store.workers.forget(silent_for_seconds=worker.forget_seconds)
    try:
        apply_retention(rt, report)
    except Exception:  # the store is away: the next pass goes on
        report.errors += 1
        log.exception("janitor could not apply retention")
    return report


def apply_retention(rt: Runtime, report: JanitorReport, *, now: float | None = None) -> None:
    """Delete the jobs past LONGSHORE_RETENTION_JOB_DAYS, then the data of those past
    LONGSHORE_RETENTION_OUTPUT_DAYS, in batches, for at most a pass's time each."""
    now = time.time() if now is None else now
    retention, settings = rt.store.retention, rt.settings.janitor
    jobs_before = ended_before(now, settings.retention_job_days)
    if jobs_before is not None:
        report.deleted += drain(lambda limit: retention.delete_jobs(ended_before=jobs_before, limit=limit))
    data_before = ended_before(now, settings.retention_output_days)
    if data_before is not None:
        report.erased += drain(lambda limit: retention.erase_data(ended_before=data_before, limit=limit))


def _requeue_lost(rt: Runtime, job: Job, attempt: Attempt, engine_seen: dict[str, float],
                  engines_gone: frozenset[str], report: JanitorReport) -> None:
    owner = attempt.worker
    if attempt.started_at is None:
        lost = Requeue(Outcome(status=JobStatus.FAILED), f"attempt lost: its worker {owner} was lost before it started")
        if conclude(rt, job.id, attempt.number, lost, stack=job.stack, owner=owner, unstarted_only=True):
            report.requeued["worker_lost"] += 1
            log.warning("requeued job %s (attempt %s never started on lost worker %s)", job.id, attempt.number, owner)
        return
    now = time.time()
    lost_after = rt.settings.worker.engine_lost_seconds
    if attempt.engine in engines_gone:
        why = f"attempt lost: its engine {attempt.engine} is gone (said an operator)"
    elif (lost_after and now - engine_seen.get(attempt.engine or "", 0.0) >= lost_after
          and now > attempt.started_at + job.timeout_seconds + rt.settings.janitor.reap_grace_seconds):
        why = f"attempt lost: its engine {attempt.engine} has had no live worker for {lost_after:g}s"
    else:
        return  # a worker on its engine will adopt it; its container may still be running there
    decision = requeue_or_lose(Outcome(status=JobStatus.FAILED), why,
                               requeues_left=rt.settings.policies.max_requeues - job.requeues)
    if conclude(rt, job.id, attempt.number, decision, stack=job.stack, owner=owner):
        report.requeued["engine_lost"] += 1
        log.warning("job %s: %s", job.id, why)


def _engines_last_seen(rows) -> dict[str, float]:
    """For each engine, the latest heartbeat of any worker driving it."""
    seen: dict[str, float] = {}
    for row in rows:
        if row.engine:
            seen[row.engine] = max(seen.get(row.engine, 0.0), row.last_seen)
    return seen


def sweep_engine(rt: Runtime, *, grace_seconds: float) -> JanitorReport:
    """Remove this engine's Longshore containers whose job is unknown or whose attempt has ended."""
    report = JanitorReport()
    now = time.time()
    for container in rt.engine.managed_containers(rt.settings.installation):
        try:
            reason = _garbage(rt, container, now, grace_seconds)
            # By name, as every step removes it: its contract folder goes with it.
            if reason and rt.engine.remove((container.get("Names") or ["/" + container["Id"]])[0].lstrip("/")):
                report.removed[reason] += 1
                rt.events.container_removed(reason)
        except Exception:  # one bad container must not stop the pass
            report.errors += 1
            log.exception("janitor could not handle container %s", container.get("Id", "?")[:12])
    for volume in rt.engine.orphaned_volumes(rt.settings.installation):
        created = timestamp(volume.get("CreatedAt"))
        if created is not None and now - created < grace_seconds:
            continue  # its container may be being created right now
        try:
            if rt.engine.remove_volume(volume["Name"]):
                report.removed["orphaned volume"] += 1
        except Exception:  # one bad volume must not stop the pass
            report.errors += 1
            log.exception("janitor could not remove volume %s", volume.get("Name", "?")[:12])
    try:
        # A folder is made just before its container: never one younger than a slow create could be.
        folders = rt.engine.remove_leftover_contracts(grace_seconds=max(grace_seconds, CONTRACT_FOLDER_GRACE_SECONDS))
        if folders:
            report.removed["leftover contract folder"] += folders
    except Exception:  # a folder the worker cannot remove must not stop the pass
        report.errors += 1
        log.exception("janitor could not remove leftover contract folders")
    return report


def _garbage(rt: Runtime, container: dict, now: float, grace_seconds: float) -> str | None:
    """Why the container should go (unknown_job, stale_attempt, job_ended), None if it must stay."""
    if now - container.get("Created", now) <= grace_seconds:
        return None
    labels = container.get("Labels") or {}
    job_id, number = labels.get(LABEL_JOB, ""), int(labels.get(LABEL_ATTEMPT) or 0)
    try:
        job = rt.store.jobs.get(job_id)
    except JobNotFound:
        return "unknown_job"
    if job.attempt != number:
        attempt = rt.store.jobs.attempt(job_id, number)
        open_ = attempt is not None and attempt.status in (AttemptStatus.QUEUED, AttemptStatus.RUNNING)
        return None if open_ else "stale_attempt"
    return "job_ended" if job.status.final else None


def run_janitor_pass(rt: Runtime, *, engines_gone: frozenset[str] = frozenset()) -> JanitorReport:
    """One whole pass for this process: the store, then this process's engine."""
    return check_store(rt, engines_gone=engines_gone).merge(
        sweep_engine(rt, grace_seconds=rt.settings.janitor.reap_grace_seconds))


def janitor_tick(rt: Runtime) -> JanitorReport:
    """The periodic pass: check the store, then ask every live worker to sweep its own engine."""
    report = check_store(rt)
    for nodename in rt.store.workers.live(rt.settings.worker.lost_seconds):
        rt.publisher.send_sweep(nodename, expires_seconds=rt.settings.janitor.interval_seconds)
    return report


def sweep_own_engine(rt: Runtime) -> JanitorReport:
    """A worker's share of the periodic pass: its engine's garbage."""
    return sweep_engine(rt, grace_seconds=rt.settings.janitor.reap_grace_seconds)
