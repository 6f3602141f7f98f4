"""A start tried again: the container started once, or made afresh if a failed start left the engine refusing it.

An engine that went down in the middle of a start may refuse every later start of that container: it keeps the
network endpoint it made under the container's name (403 "endpoint … already exists in network none") or the
containerd task (500 "task … already exists"). A container that never ran and is refused twice in a row (an
answer, not a missing one: decided from the failure's kind and status code, never its words) is removed and
made again from the same spec, once per attempt:

- **One start at a time.** A repeated start works on the container only under the attempt's lease in the store
  (`repair_at`, taken by compare-and-set, fenced to the owner and to the attempt being open): of two starts of
  one attempt (a retry and the watcher's), one acts; the other leaves it. A lease whose start stopped is taken
  over after the worker's redrive time, and its work finished.
- **Never a container that ran.** The refused container is looked at again under the lease, and removed by its
  id, unforced: the engine refuses to remove one that runs, and it is kept.
- **No gap that loses the attempt.** Between the removal and the new create the name has no container: the
  lease stays held until the new container started (or, if the start stops, until it is taken over), and a wait
  that finds no container while a lease is held sends the start again instead of calling the attempt lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from longshore.domain.records import Job
from longshore.domain.steps import container_name
from longshore.engine.client import timestamp
from longshore.errors import DockerFailure, FailureKind
from longshore.service.containers import container_spec
from longshore.service.runtime import Runtime
from longshore.store import STORE_ERRORS

log = logging.getLogger(__name__)

Progress = Callable[[], None]  #: called every few seconds while a create pulls the image again


def start_again(rt: Runtime, owner: str, job: Job, attempt: int, on_progress: Progress) -> bool:
    """Start the attempt's container unless it ran (a repeated start never restarts one); whether it exists (or
    another start of the attempt is at work on it). Raises the engine's refusal when the container can be
    neither started nor made again."""
    found = rt.engine.inspect(container_name(job.id, attempt))
    if found is not None and found["State"].get("Status") != "created":
        return True  # it ran (or runs): never again
    lease = rt.store.repairs.take(job.id, attempt, owner=owner, stale_after=rt.settings.worker.redrive_after_seconds)
    if lease is None:
        return True  # another start of it is at work: left to that one (or to the next after its lease)
    return _Repair(rt, owner, job, attempt, lease, on_progress).run()


@dataclass
class _Repair:
    """A repeated start's work on the attempt's container, under the lease `lease`."""

    rt: Runtime
    owner: str
    job: Job
    attempt: int
    lease: float
    on_progress: Progress
    #: From its removal on, the name may have no container: the lease is kept (a failure included) until a
    #: container has the name again, so no wait calls the attempt lost meanwhile.
    remaking: bool = False

    def run(self) -> bool:
        try:
            return self._run()
        except BaseException:
            if not self.remaking:
                self._let_go()  # nothing changed: the step's retry may take the lease at once
            raise

    def _run(self) -> bool:
        rt, name = self.rt, container_name(self.job.id, self.attempt)
        found = rt.engine.inspect(name)  # again, now that no other start works on it
        current = rt.store.attempts.current(self.job.id, self.attempt)  # read after the inspect: no stale gap
        remade_from = current.attempt.remade_from if current is not None else None
        if found is None:
            if remade_from is None or current.attempt.container_id != remade_from:  # none, or its successor made
                self._let_go()
                return False  # gone: the attempt is lost
            self.remaking = True  # a start before this one removed the refused container, and stopped
            return self._make()
        if found["State"].get("Status") != "created":
            self._let_go()
            return True  # started by a start before this one: never again
        refused = None
        if found["Id"] != remade_from:  # else a start before this one stopped before it removed this one
            started = self._start_twice(found["Id"])
            if not isinstance(started, DockerFailure):
                return started
            refused = started
            if remade_from is not None or not _never_ran(rt.engine.state(found["Id"]) or {}):
                raise refused  # made afresh once already, or it ran: refused for good
            if not self._keep(remade_from=found["Id"]):
                return True  # the lease was taken over, or the attempt ended
        log.warning("%s attempt %s: its container, never started, is made afresh: %s", self.job.id, self.attempt,
                    refused or "a start before this one stopped making it")
        self.remaking = True  # an engine that does not answer the removal may still have done it
        if not rt.engine.remove_unstarted(found["Id"]) and rt.engine.state(found["Id"]) is not None:
            self._keep(remade_from=None)  # it runs (a start got through): it is the attempt's, never made again
            self._let_go()
            return True
        return self._make()

    def _start_twice(self, container_id: str) -> bool | DockerFailure:
        """Start the container: whether it exists, or the engine's second refusal in a row (a first may be its
        moment). Started, the lease is let go: no other start can find it still created."""
        refused = None
        for _ in range(2):
            try:
                started = self.rt.engine.start(container_id)
            except DockerFailure as failure:
                if failure.status is None or failure.kind is FailureKind.CONFLICT:
                    raise  # no answer (the step is retried), or a conflict: not refused for good
                refused = failure
                continue
            if started:
                self._keep(container_id=container_id)  # one made afresh by a start that stopped before its record
            self._let_go()
            return started
        return refused

    def _make(self) -> bool:
        """Make the container again from the job's spec (a create adopts one made by a start before this one),
        record its id and start it, all under the lease."""
        rt, name = self.rt, container_name(self.job.id, self.attempt)
        spec = container_spec(rt, self.job, self.attempt, self.owner)
        rt.engine.clear_endpoint(name)
        made = rt.engine.create(spec, on_progress=self._progress)
        if not self._keep(container_id=made):
            current = rt.store.attempts.current(self.job.id, self.attempt)
            if current is None or current.over:
                rt.engine.remove(made)  # the attempt ended meanwhile (a cancel): never started
            return True  # else the lease was taken over: the start that took it starts it
        self.remaking = False  # a container has the name again: a failed start of it lets the lease go
        started = rt.engine.start(made)
        self._let_go()
        return started

    def _progress(self) -> None:
        """A create that pulls the image again reports every few seconds: the lease is renewed (not stale)."""
        self.on_progress()
        try:
            self.lease = self.rt.store.repairs.renew(self.job.id, self.attempt, owner=self.owner,
                                                     lease=self.lease) or self.lease
        except STORE_ERRORS:
            pass  # the next report tries again

    def _keep(self, **fields: Any) -> bool:
        return self.rt.store.repairs.keep(self.job.id, self.attempt, owner=self.owner, lease=self.lease, **fields)

    def _let_go(self) -> None:
        try:
            self.rt.store.repairs.let_go(self.job.id, self.attempt, owner=self.owner, lease=self.lease)
        except STORE_ERRORS:
            pass  # it is taken over after the redrive time


def _never_ran(state: dict[str, Any]) -> bool:
    return state.get("Status") == "created" and not state.get("Pid") and timestamp(state.get("StartedAt")) is None
