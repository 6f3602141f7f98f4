"""A start tried again: the container started once, or made afresh if a failed start left the engine refusing it.

An engine that went down in the middle of a start may refuse every later start of that container: it keeps the
network endpoint it made under the container's name (403 "endpoint … already exists in network none") or the
containerd task (500 "task … already exists"). A container that never ran and is refused twice in a row (an
answer, not a missing one: decided from the failure's kind and status code, never its words) is removed and
made again from the same spec, once per attempt:

- **One remake, fenced.** The owner's compare-and-set on the attempt's container id marks it (`remade_at`, the
  id cleared): of two starts of the attempt (a retry and the watcher's), one makes it again; the other leaves it.
- **Never a container that ran.** The refused container is removed by its id and unforced: the engine refuses to
  remove one that runs (a start of it got through meanwhile), and it is kept.
- **No gap that loses the attempt.** Between the removal and the new create the name has no container: a wait or
  a start that finds none while the mark is set finishes the remake (a second create adopts the first) instead
  of calling the attempt lost.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from longshore.domain.records import Job
from longshore.domain.steps import container_name
from longshore.engine.client import timestamp
from longshore.errors import DockerFailure, FailureKind
from longshore.engine.container import ContainerSpec
from longshore.service.containers import container_spec
from longshore.service.runtime import Runtime

log = logging.getLogger(__name__)


Progress = Callable[[], None]  #: called every few seconds while a create pulls the image again


def start_again(rt: Runtime, owner: str, job: Job, attempt: int, on_progress: Progress) -> bool:
    """Start the attempt's container unless it ran (a repeated start never restarts one); whether it exists.
    Raises the engine's refusal when the container cannot be started nor made again."""
    name = container_name(job.id, attempt)
    found = rt.engine.inspect(name)
    if found is None:
        return _finish_remake(rt, owner, job, attempt, on_progress)
    if found["State"].get("Status") != "created":
        return True  # it ran (or runs): never again
    refused = None
    for _ in range(2):  # a refusal once may be the engine's moment (a 500 while it is busy): twice in a row
        try:
            return rt.engine.start(found["Id"]) or _finish_remake(rt, owner, job, attempt, on_progress)
        except DockerFailure as failure:
            if failure.status is None or failure.kind is FailureKind.CONFLICT:
                raise  # no answer (the step is retried), or a conflict: not refused for good
            refused = failure
    if not _never_ran(found["State"]):
        raise refused
    return _remake(rt, owner, job, attempt, found["Id"], refused, on_progress)


def _remake(rt: Runtime, owner: str, job: Job, attempt: int, refused_id: str, refused: DockerFailure,
            on_progress: Progress) -> bool:
    spec = container_spec(rt, job, attempt, owner)  # before anything is removed: a spec that fails leaves it
    if not rt.store.attempts.begin_remake(job.id, attempt, owner=owner, container_id=refused_id):
        current = rt.store.attempts.current(job.id, attempt)
        if current is not None and current.attempt.container_id == refused_id:
            raise refused  # made afresh once already, and refused again
        return True  # another start of it makes it afresh (or did)
    log.warning("%s attempt %s: its container, never started, is made afresh: %s", job.id, attempt, refused)
    if not rt.engine.clear_failed_start(refused_id, spec.name):  # it runs now (a start got through), or it went
        rt.store.attempts.end_remake(job.id, attempt, owner=owner, container_id=refused_id)
        return rt.engine.state(refused_id) is not None
    return _make(rt, owner, job, attempt, spec, on_progress)


def _finish_remake(rt: Runtime, owner: str, job: Job, attempt: int, on_progress: Progress) -> bool:
    """No container has the attempt's name: if its owner is making it again, this start finishes that (the
    start that began it stopped, or is between its removal and its create); otherwise it is gone."""
    current = rt.store.attempts.current(job.id, attempt)
    if current is None or not current.attempt.being_remade:
        return False
    return _make(rt, owner, job, attempt, container_spec(rt, job, attempt, owner), on_progress)


def _make(rt: Runtime, owner: str, job: Job, attempt: int, spec: ContainerSpec, on_progress: Progress) -> bool:
    made = rt.engine.create(spec, on_progress=on_progress)  # or adopts the one another start made
    rt.store.attempts.end_remake(job.id, attempt, owner=owner, container_id=made)
    return rt.engine.start(made)


def _never_ran(state: dict[str, Any]) -> bool:
    return not state.get("Pid") and timestamp(state.get("StartedAt")) is None

