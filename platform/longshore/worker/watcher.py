"""A worker's watcher: it follows its containers on the engine, so no message waits while they run.

Daemon threads in the worker's main process:
- *events* follows the engine's event stream: when one of this worker's containers
  exits, the watch loop hears it at once;
- *watch* frees the slot and sends the attempt's wait on each exit, and every
  LONGSHORE_SUPERVISE_INTERVAL_SECONDS looks over everything (`service.supervise.tick`):
  deadlines, cancels, stalls; it never waits on the broker. With nothing owned, taken or
  on the engine it looks IDLE_TICKS times less often, until work is taken (`wake`);
- *dispatch* publishes what the watch loop sends, and does the broker's part of
  supervision (adoption, due attempts) and the engine sweep;
- *wait-N* run an exited container's wait step here, rather than sending it through the broker
  to this worker's own queue (one message and two hops fewer per job, on the job's critical path),
  while no monitor asks for task events (then each wait is a message it can list). A wait that
  fails here is sent as its own message, where its retry policy takes over (`service.carry.run_here`);
  one lost with this process is sent again by the next tick (its container exited, its attempt open);
- *reap-N* likewise remove the containers of ended attempts here (a wait's reap, or one the tick
  sends), off the critical path: one message fewer per job. One lost with this process (it stopped
  or died first) is removed by the engine sweep (at a graceful stop, or by the next sweep).
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time

from longshore.domain.records import Job, WorkerIdentity
from longshore.domain.steps import Step
from longshore.engine.container import LABEL_ATTEMPT, LABEL_JOB, LABEL_TIMEOUT, LABEL_WORKER
from longshore.service import carry, janitor, supervise
from longshore.service.held_seconds import HeldSeconds
from longshore.service.lifecycle import StepContext
from longshore.service.runtime import Runtime
from longshore.worker import task_events
from longshore.worker.admission import Capacity

log = logging.getLogger(__name__)

#: At most this many waits run here at once (each is mostly engine and store round trips).
WAIT_THREADS = 4
#: And this many reaps (a removal can be slow: it never holds up a wait).
REAP_THREADS = 2
#: A worker with nothing owned, taken or on its engine looks over everything this many times less often (its
#: looks are a store query and an engine list each: most of an idle worker's CPU), and at least every
#: IDLE_TICK_MAX_SECONDS; taking work wakes it.
IDLE_TICKS = 10
IDLE_TICK_MAX_SECONDS = 5.0
#: Put on the exits' queue by `wake`: no exit, but the next look comes within the busy interval.
_WAKE = ("", -1)


class Watcher:
    """The watcher of one worker (see the module's docstring)."""

    def __init__(self, rt: Runtime, me: WorkerIdentity, capacity: Capacity, stacks: list[str],
                 held_seconds: HeldSeconds | None = None):
        self.rt, self.me, self.capacity, self.stacks = rt, me, capacity, stacks
        #: the context of the steps run here, with the starts' seconds held for their waits and reaps
        self.context = StepContext(rt, me, send_here=self.send_here, held_seconds=held_seconds)
        self.state = supervise.WatchState()
        self._exits: queue.Queue[tuple[str, int]] = queue.Queue()
        self._outbox: queue.Queue[tuple[Step, str, int, bool]] = queue.Queue()
        #: the steps run here (see the docstring), by step
        self._here: dict[Step, queue.Queue[tuple[str, int, Job | None] | None]] = {Step.WAIT: queue.Queue(),
                                                                                   Step.REAP: queue.Queue()}
        self._queued: set[tuple[Step, str, int]] = set()  # what the outbox and `_here` hold or run: never twice
        self._queued_lock = threading.Lock()
        self.stopping = threading.Event()

    def start(self) -> "Watcher":
        """Start the threads."""
        threads = [(self._follow_events, "events"), (self._watch, "watch"), (self._dispatch, "dispatch")]
        threads += [(functools.partial(self._run_here, Step.WAIT), f"wait-{n}")
                    for n in range(min(WAIT_THREADS, max(self.me.slots, 1)))]
        threads += [(functools.partial(self._run_here, Step.REAP), f"reap-{n}") for n in range(REAP_THREADS)]
        for target, name in threads:
            threading.Thread(target=target, name=f"longshore-watcher-{name}", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop the threads: those waiting for work at once, the others at their next look (the dispatch
        thread at its next duty, doing none); what is left queued is sent again by the next process's watcher,
        or removed by the engine sweep."""
        self.stopping.set()
        for waiting in self._here.values():
            waiting.put(None)
        self._exits.put(_WAKE)  # an idle watch loop waits up to IDLE_TICKS intervals otherwise

    def wake(self) -> None:
        """Work was taken (a claim, an adoption): look over it within the busy interval, not the idle one."""
        self._exits.put(_WAKE)

    def send(self, step: Step, job_id: str, attempt: int, *, redrive: bool = False, job: Job | None = None) -> None:
        """Queue a step for the dispatch thread to publish to this worker's own queue, or a wait or a reap
        to run here (once, however often it is asked for while it waits; `job`: as the step that sent it read
        it, for the step run here)."""
        with self._queued_lock:
            if (step, job_id, attempt) in self._queued:
                return
            self._queued.add((step, job_id, attempt))
        if step in self._here and not redrive and not task_events.asked():
            self._here[step].put((job_id, attempt, job))
        else:
            if step is Step.WAIT:  # a message, which may run in another process: what is held here goes now
                carry.write_held(self.context, [(job_id, attempt)])
            self._outbox.put((step, job_id, attempt, redrive))

    def send_here(self, step: Step, job_id: str, attempt: int, job: Job | None = None) -> bool:
        """A step a wait run here sends (its reap, with the job as the wait read it): taken, to run here too,
        or (while a monitor asks for task events) to be published by the dispatch thread: a wait thread never
        waits on the broker."""
        if step is not Step.REAP:
            return False
        self.send(step, job_id, attempt, job=job)
        return True

    # -- the threads -------------------------------------------------------------

    def _follow_events(self) -> None:
        while not self.stopping.is_set():
            try:
                stream = self.rt.engine.container_events(self.rt.settings.installation)
                for event in stream:
                    self._on_event(event)
                    if self.stopping.is_set():
                        stream.close()
            except Exception:  # the engine is away (restarting): follow it again shortly
                log.info("lost the engine's event stream; following it again", exc_info=True)
                time.sleep(1)

    def _on_event(self, event: dict) -> None:
        action = event.get("Action") or event.get("status")
        if action not in ("start", "die", "oom"):
            return
        labels = (event.get("Actor") or {}).get("Attributes") or {}
        try:
            key = (labels[LABEL_JOB], int(labels[LABEL_ATTEMPT]))
        except (KeyError, ValueError):
            return
        if labels.get(LABEL_WORKER) != self.me.name and key not in self.state.owned:
            return
        if action != "start":
            self._exits.put(key)
            return
        self.wake()  # one of its containers started: taken here, or by a pull task this process did not admit
        try:
            supervise.on_start(self.state, event["id"], int(event["timeNano"]) / 1e9, float(labels[LABEL_TIMEOUT]))
        except (KeyError, ValueError):
            pass  # no deadline from the event: the tick reads the container's start from the engine

    def _watch(self) -> None:
        interval = self.rt.settings.worker.supervise_interval_seconds
        next_tick = 0.0
        while not self.stopping.is_set():
            try:
                key = self._exits.get(timeout=max(next_tick - time.monotonic(), 0))
            except queue.Empty:
                key = None
            if key is not None:  # an exit, or work taken: the next look within the busy interval
                next_tick = min(next_tick, time.monotonic() + interval)
            try:
                if key is not None and key != _WAKE:
                    try:  # the store's release first: the claim admission makes for the freed slot counts it
                        supervise.on_exit(self.rt, self.state, self.send, *key)
                    finally:
                        self.capacity.freed(key)
                if time.monotonic() >= next_tick:
                    pending = self.capacity.pending(older_than=1.0)
                    # asked before the tick's count: settled pulls are claimed, ended, or back in the store
                    settled = pending - self.rt.store.attempts.unclaimed(pending, forwarded_to=self.me.name)
                    supervise.tick(self.rt, self.me, self.state, self.send)
                    self.capacity.update(self.state.holding, self.state.owned, settled)
                    idle = not (self.state.owned or self.state.listed or self.capacity.pending())
                    next_tick = time.monotonic() + (max(interval, min(interval * IDLE_TICKS, IDLE_TICK_MAX_SECONDS))
                                                    if idle else interval)
            except Exception:  # the store or the engine is away: look again next tick
                log.warning("watcher tick failed", exc_info=True)
                next_tick = time.monotonic() + interval

    def _run_here(self, step: Step) -> None:
        context = self.context
        while True:
            item = self._here[step].get()  # no polling: `stop` wakes an idle thread
            if item is None or self.stopping.is_set():
                self._here[step].put(None)  # and through it the next thread of this step
                return
            job_id, attempt, job = item
            try:
                carry.run_here(context, step, job_id, attempt, job=job)  # a step that fails is sent as a message
            except Exception:  # a bug in carrying it out: the thread goes on; the next tick sends it again
                log.exception("the %s of %s attempt %s failed here", step.value, job_id, attempt)
            finally:  # asked for again while it ran (the tick resends every few seconds): not run twice at once
                with self._queued_lock:
                    self._queued.discard((step, job_id, attempt))

    def _dispatch(self) -> None:
        settings = self.rt.settings
        every = {"housekeeping": settings.worker.heartbeat_seconds, "sweep": settings.janitor.interval_seconds}
        last = {name: 0.0 for name in every}
        while not self.stopping.is_set():
            due = min(last[name] + seconds for name, seconds in every.items())
            try:  # until the next periodic duty, unless there is a step to publish
                item = self._outbox.get(timeout=max(due - time.monotonic(), 0))
            except queue.Empty:
                item = None
            if self.stopping.is_set():
                return
            if item is not None:
                step, job_id, attempt, redrive = item
                with self._queued_lock:
                    self._queued.discard((step, job_id, attempt))
                try:
                    self.rt.publisher.send_step(step, job_id, attempt, self.me.name)
                    if redrive:
                        self.rt.store.attempts.count_redrive(job_id, attempt)
                except Exception:  # the broker (or store) is away: the watcher sends it again if still needed
                    log.warning("could not publish a step; the watcher sends it again", exc_info=True)
            now = time.monotonic()
            for name, seconds in every.items():
                if now - last[name] < seconds:
                    continue
                last[name] = now
                try:
                    if name == "housekeeping":
                        supervise.housekeeping(self.rt, self.me, stacks=self.stacks, on_adopted=self.wake)
                    else:
                        report = janitor.sweep_own_engine(self.rt)
                        log.info("engine sweep: %s", report.summary())
                except Exception:  # the store, the broker or the engine is away: next time
                    log.warning("%s failed", name, exc_info=True)
