"""The steps of an attempt's life, in order, and the one name its container can have."""

from __future__ import annotations

from enum import StrEnum


class Step(StrEnum):
    """One lifecycle step; each is a task on the broker and a duration on the attempt."""

    PULL = "pull"  #: make the image present on the engine (from the stack's queue, on any worker)
    CREATE = "create"  #: create the container with its limits and payload, and check the limits held
    START = "start"  #: start it once, and mark the job running
    WAIT = "wait"  #: wait for it to exit (killing it at the timeout), collect what it left, conclude
    REAP = "reap"  #: remove it, off the job's critical path
    KILL = "kill"  #: stop a cancelled job's container (not a step of the normal life)


#: The steps whose durations are kept on each attempt, in the order they run.
TIMED_STEPS = (Step.PULL, Step.CREATE, Step.START, Step.WAIT, Step.REAP)


def timed_step(step: Step | str) -> Step:
    """`step` as one whose duration an attempt keeps; ValueError for any other."""
    step = Step(step)
    if step not in TIMED_STEPS:
        raise ValueError(f"step {step.value!r} is not timed")
    return step


def container_name(job_id: str, attempt: int) -> str:
    """The one name an attempt's container can have: what makes create idempotent."""
    return f"longshore-{job_id}-{attempt}"
