"""A worker's own attempts and containers, looked over by its watcher (`worker.watcher`) on every tick.

The watcher follows the engine's events between ticks (a container exits: `on_exit`
sends its wait at once). Each tick re-reads the truth from the engine, then the store,
so nothing a lost event or message missed stays missed. It never waits on the broker:
what it sends goes through `send`, which the worker drains on a thread of its own
(`housekeeping`, which publishes and adopts, runs there too).
- an attempt that ended (cancelled, requeued, concluded) while its container runs:
  kill the container, release the slot, reap it;
- a container past its deadline: kill it (its wait concludes the attempt as timed out),
  from the engine alone: timeouts hold while the store or the broker is away;
- a container that exited without its attempt concluded: send its wait;
- an attempt with no progress for LONGSHORE_REDRIVE_AFTER_SECONDS, or none since this
  watcher began (its steps ran in this worker's previous process): send its next step
  again, up to LONGSHORE_MAX_REDRIVES times, then requeue it; a create or start that
  worker died in counts as that step's redelivery (LONGSHORE_MAX_REDELIVERIES, then requeued);
- attempts of lost workers on this worker's engine: adopt the started ones (their
  containers, running or exited, become this worker's to watch: nothing runs twice),
  hand the unstarted ones back to their stack's queue;
- attempts of this worker's stacks that wait in the store and are due: publish them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from longshore.domain.outcome import Outcome
from longshore.domain.policy import Requeue, requeue_or_lose
from longshore.domain.progress import parse_progress
from longshore.domain.records import WorkerIdentity
from longshore.domain.status import AttemptStatus, JobStatus
from longshore.domain.steps import Step, container_name
from longshore.engine.client import timestamp
from longshore.engine.container import LABEL_ATTEMPT, LABEL_JOB, LABEL_TIMEOUT, LABEL_WORKER
from longshore.service.dispatch import conclude, publish_due
from longshore.service.janitor import check_store
from longshore.service.lifecycle import REDELIVERY_CAPPED
from longshore.service.liveness import embedded_lost, lost_workers
from longshore.service.runtime import Runtime
from longshore.store import Owned

log = logging.getLogger(__name__)

Key = tuple[str, int]
#: A wait sent for an exited container is sent again after this long if the attempt is still open.
RESEND_WAIT_SECONDS = 5.0
#: How often a running job's progress file is looked at (a stat; its content only when it changed).
PROGRESS_SECONDS = 1.0


@dataclass
class WatchState:
    """What the watcher remembers between ticks."""

    deadlines: dict[str, float] = field(default_factory=dict)  #: container id → when it must be killed
    sent: dict[tuple[str, int, Step], float] = field(default_factory=dict)  #: when a step was last sent
    owned: set[Key] = field(default_factory=set)  #: attempts this worker owned at the last tick
    #: running attempt → (when its progress file was last looked at, its mtime/size then)
    progress: dict[Key, tuple[float, str | None]] = field(default_factory=dict)
    holding: int = 0  #: slots held at the last tick
    running: int = 0  #: containers running at the last tick
    listed: int = 0  #: the installation's containers on the engine at the last tick (any worker's)
    #: When this watcher began: a step of its own attempts last heard of before then ran in a process that is
    #: gone (the worker restarted under its name; no message of it comes back): it is sent again at once.
    since: float = field(default_factory=time.time)


#: Queues a step for publishing: (step, job id, attempt number, redrive=whether it is sent again after a stall).
Send = Callable[..., None]


def tick(rt: Runtime, me: WorkerIdentity, state: WatchState, send: Send) -> None:
    """One look over this worker's attempts and containers (see the module's docstring)."""
    now = time.time()
    containers = _containers_by_attempt(rt)
    state.listed = len(containers)
    listed = {container["Id"] for container in containers.values()}
    for gone in [container_id for container_id in list(state.deadlines) if container_id not in listed]:
        state.deadlines.pop(gone, None)  # removed containers: what is remembered stays bounded
    _enforce_deadlines(rt, me, state, containers, now)  # from the engine alone: holds while the store is away
    owned = rt.store.attempts.owned(me.name)
    holding = running = 0
    for item in owned:
        key = (item.job.id, item.attempt.number)
        container = containers.get(key)
        try:
            _look_after(rt, state, send, item, container, now)
        except Exception:  # one attempt must not stop the tick
            log.exception("watcher could not look after %s attempt %s", *key)
        status = (container or {}).get("State")
        running += status == "running"
        holding += item.attempt.released_at is None and status not in ("exited", "dead")
    state.owned = {(o.job.id, o.attempt.number) for o in owned}
    for gone in set(state.progress) - state.owned:
        del state.progress[gone]
    state.holding, state.running = holding, running
    for sent_key, at in list(state.sent.items()):
        if now - at > 10 * rt.settings.worker.redrive_after_seconds:
            del state.sent[sent_key]


def housekeeping(rt: Runtime, me: WorkerIdentity, *, stacks: list[str] | None,
                 on_adopted: Callable[[], None] = lambda: None) -> None:
    """The parts of supervision that talk to the broker: adopt lost workers' attempts on this
    engine (`on_adopted` is told when it did), and publish the due attempts of this worker's stacks."""
    if adopt_orphans(rt, me):
        on_adopted()
    if rt.embedded_name:  # no janitor runs beside embedded processes: each does the store's part
        here = rt.settings.worker.hostname
        lost_publishers = [name for name in rt.store.reads.publishers_of_waiting_jobs()
                           if embedded_lost(rt.settings.home, name, here)]
        publish_due(rt, stacks=stacks, lost_publishers=lost_publishers)
        check_store(rt)
    else:
        publish_due(rt, stacks=stacks)


def on_exit(rt: Runtime, state: WatchState, send: Send, job_id: str, attempt: int) -> None:
    """The engine says the attempt's container exited: send its wait now, and free its slot meanwhile (the
    wait's own write releases it too, whichever comes first)."""
    _send(state, send, Step.WAIT, job_id, attempt)
    rt.store.attempts.release(job_id, attempt)


def on_start(state: WatchState, container_id: str, started_at: float, timeout_seconds: float) -> None:
    """The engine says a container started (the event is logged just after the engine records its start):
    its deadline, known without inspecting it."""
    state.deadlines.setdefault(container_id, started_at + timeout_seconds)


def _enforce_deadlines(rt: Runtime, me: WorkerIdentity, state: WatchState, containers: dict[Key, dict],
                       now: float) -> None:
    for key, container in containers.items():
        labels = container.get("Labels") or {}
        mine = key in state.owned or labels.get(LABEL_WORKER) == me.name
        if container.get("State") != "running" or not mine or LABEL_TIMEOUT not in labels:
            continue
        deadline = _deadline(rt, state, container, float(labels[LABEL_TIMEOUT]))
        if deadline is not None and now >= deadline:
            log.info("%s attempt %s ran past its timeout of %ss: killing it", *key, labels[LABEL_TIMEOUT])
            rt.engine.kill(container["Id"])  # the die event sends its wait


def _look_after(rt: Runtime, state: WatchState, send: Send, item: Owned, container: dict | None,
                now: float) -> None:
    job, attempt = item.job, item.attempt
    key = (job.id, attempt.number)
    status = (container or {}).get("State")
    if item.over:
        if status == "running":
            rt.engine.kill(container["Id"])
        if attempt.released_at is None:
            rt.store.attempts.release(*key)
        if container is not None and attempt.reaped_at is None and _due(state, key, Step.REAP, now, 30):
            _send(state, send, Step.REAP, *key)
        return
    if status == "running":
        deadline = _deadline(rt, state, container, job.timeout_seconds)  # containers made without the label
        if deadline is not None and now >= deadline:
            rt.engine.kill(container["Id"])  # the die event sends its wait
        _read_progress(rt, state, key, container, now)
        return
    if status in ("exited", "dead"):
        if attempt.released_at is None:
            rt.store.attempts.release(*key)
        if _due(state, key, Step.WAIT, now, RESEND_WAIT_SECONDS):
            _send(state, send, Step.WAIT, *key)
        return
    if status not in (None, "created"):
        return  # paused, restarting, removing: look again next tick
    progress = attempt.progress_at or attempt.claimed_at or attempt.created_at
    stalled = progress < state.since or now - progress > rt.settings.worker.redrive_after_seconds
    step = _next_step(attempt, status)
    if step is Step.WAIT:  # it started, and its container is gone: the wait step requeues it
        if _due(state, key, Step.WAIT, now, RESEND_WAIT_SECONDS):
            _send(state, send, Step.WAIT, *key)
        return
    if not stalled or not _due(state, key, step, now, rt.settings.worker.redrive_after_seconds):
        return
    if attempt.redrives >= rt.settings.retry.max_redrives:
        _requeue_stalled(rt, item, container, f"its steps stalled {attempt.redrives} times on {attempt.worker}")
        return
    if progress < state.since and step in REDELIVERY_CAPPED:  # its worker died in it: as a redelivery of it
        count = rt.store.attempts.count_redelivery(*key)
        if rt.settings.policies.redeliveries_exhausted(count):  # maybe the job's doing: not run again here
            _requeue_stalled(rt, item, container, f"the worker running it was lost {count} times during its "
                                                  f"{step.value} step")
            return
    log.warning("%s attempt %s made no progress for %.0fs: sending its %s again", job.id, attempt.number,
                now - progress, step.value)
    _send(state, send, step, *key, redrive=True)  # counted once it is published


def _read_progress(rt: Runtime, state: WatchState, key: Key, container: dict, now: float) -> None:
    """Once a PROGRESS_SECONDS, the running job's progress file, stored when it changed. The first look is a
    PROGRESS_SECONDS after the job was first seen running: each look makes the engine mount the container's
    filesystem (unless its contract is a shared folder), and a job that short has nothing to report."""
    if key not in state.progress:
        state.progress[key] = (now, None)
        return
    looked, seen = state.progress[key]
    if now - looked < PROGRESS_SECONDS:
        return
    state.progress[key] = (now, seen)
    # by name: its contract folder's
    changed = rt.engine.read_progress(container_name(*key), container.get("Labels"), seen)
    if changed is None:
        return
    state.progress[key] = (now, changed[0])
    parsed = parse_progress(changed[1]) if changed[1] is not None else None
    if parsed is not None:
        rt.store.jobs.set_progress(*key, *parsed)


def _next_step(attempt, container_status: str | None) -> Step:
    """The step an attempt that stalled before its container ran needs next."""
    if attempt.started_at is not None:
        return Step.START if container_status == "created" else Step.WAIT
    if container_status == "created" or attempt.container_id is not None:
        return Step.START
    return Step.CREATE if attempt.step_seconds.get("pull") is not None else Step.PULL


def _requeue_stalled(rt: Runtime, item: Owned, container: dict | None, why: str) -> None:
    job, attempt = item.job, item.attempt
    if container is not None:
        rt.engine.remove(container_name(job.id, attempt.number))  # gone before a new attempt can start anywhere
    decision = requeue_or_lose(Outcome(status=JobStatus.FAILED), f"attempt lost: {why}",
                               requeues_left=rt.settings.policies.max_requeues - job.requeues)
    # Published by whoever publishes due attempts next: the watcher never waits on the broker. It counts
    # against the job's requeues (a step that stalls every time is a property of the job: its image, its
    # size); a long pull is no stall, it reports its progress.
    conclude(rt, job.id, attempt.number, decision, stack=job.stack, owner=attempt.worker, publish=False)


def adopt_orphans(rt: Runtime, me: WorkerIdentity) -> int:
    """Take over the attempts of lost workers on this engine: the started ones become this worker's
    (it watches their containers); the unstarted ones go back to their stack's queue. The number adopted."""
    candidates = rt.store.attempts.on_engine(me.engine_id, excluding=[me.name])
    owners = sorted({c.attempt.worker for c in candidates})
    if not owners:
        return 0
    rows = [row for row in rt.store.workers.all() if row.name in owners]
    known = {row.name for row in rows}
    lost = lost_workers(rows, consumers=rt.publisher.consumers(owners), lost_seconds=rt.settings.worker.lost_seconds,
                        store_up_seconds=rt.store.health.seconds_up(), home=rt.settings.home,
                        here=rt.settings.worker.hostname)
    # An owner no longer registered (forgotten) is as lost as one whose heartbeat stopped.
    lost |= {name for name in owners if name not in known}
    adopted = 0
    for item in candidates:
        owner, key = item.attempt.worker, (item.job.id, item.attempt.number)
        if owner not in lost:
            continue
        started = item.attempt.started_at is not None or item.attempt.status is not AttemptStatus.QUEUED
        if item.attempt.engine is None and (not started or rt.engine.state(container_name(*key)) is None):
            continue  # a first-release attempt whose container is not on this engine: the janitor decides
        if started:
            if rt.store.attempts.adopt(*key, from_worker=owner, to_worker=me.name, host=me.host,
                                       engine=me.engine_id):
                adopted += 1
                log.warning("adopted %s attempt %s of lost worker %s on this engine", *key, owner)
        else:
            handed = conclude(rt, *key, Requeue(Outcome(status=JobStatus.FAILED),
                                                f"attempt lost: its worker {owner} was lost before it started"),
                              stack=item.job.stack, owner=owner, unstarted_only=True)
            if handed:
                log.warning("requeued %s attempt %s of lost worker %s (never started)", *key, owner)
    return adopted


def _containers_by_attempt(rt: Runtime) -> dict[Key, dict]:
    found = {}
    for container in rt.engine.managed_containers(rt.settings.installation):
        labels = container.get("Labels") or {}
        try:
            found[(labels[LABEL_JOB], int(labels[LABEL_ATTEMPT]))] = container
        except (KeyError, ValueError):
            continue
    return found


def _deadline(rt: Runtime, state: WatchState, container: dict, timeout_seconds: float) -> float | None:
    """When a running container must be killed: the engine's start time plus the job's timeout."""
    container_id = container["Id"]
    if container_id not in state.deadlines:
        started = timestamp((rt.engine.state(container_id) or {}).get("StartedAt"))
        if started is None:
            return None
        state.deadlines[container_id] = started + timeout_seconds
    return state.deadlines[container_id]


def _due(state: WatchState, key: Key, step: Step, now: float, every_seconds: float) -> bool:
    return now - state.sent.get((*key, step), 0.0) >= every_seconds


def _send(state: WatchState, send: Send, step: Step, job_id: str, attempt: int, *, redrive: bool = False) -> None:
    send(step, job_id, attempt, redrive=redrive)
    state.sent[(job_id, attempt, step)] = time.time()
