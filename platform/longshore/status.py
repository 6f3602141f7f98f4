"""A job's status and the transitions the store allows between them."""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    """Where a job is in its life. The last five are final: nothing moves a job out of them."""

    QUEUED = "queued"  #: accepted and waiting for a worker of its stack
    RUNNING = "running"  #: its container has been started
    SUCCEEDED = "succeeded"  #: its container exited 0
    FAILED = "failed"  #: its code exited non-zero, or the platform could not run it
    TIMED_OUT = "timed_out"  #: killed after running past its timeout
    OOM_KILLED = "oom_killed"  #: killed by the kernel for exceeding its memory limit
    CANCELLED = "cancelled"  #: cancelled by a user

    @property
    def final(self) -> bool:
        """True when the job has ended for good."""
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


FINAL_STATUSES = frozenset(s for s in JobStatus if s.final)

#: Which statuses a job may move to from each status. A job goes back to queued
#: only for a new attempt (a retry); a final status is never left.
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING} | FINAL_STATUSES),
    JobStatus.RUNNING: frozenset({JobStatus.QUEUED} | FINAL_STATUSES),
    **{s: frozenset() for s in FINAL_STATUSES},
}


def sources_of(target: JobStatus) -> frozenset[JobStatus]:
    """The statuses from which a job may move to `target`."""
    return frozenset(s for s, targets in ALLOWED_TRANSITIONS.items() if target in targets)


#: The exit code `longshore run` uses for a job that ended without an exit code of
#: its own, as `docker run` and `timeout(1)` do.
CLI_EXIT_CODES = {
    JobStatus.TIMED_OUT: 124,
    JobStatus.OOM_KILLED: 137,
    JobStatus.CANCELLED: 130,
}
#: `longshore run` exits 125 when the platform itself could not run the job.
PLATFORM_FAILURE_EXIT_CODE = 125
