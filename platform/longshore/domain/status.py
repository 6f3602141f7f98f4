"""A job's status, an attempt's status, and the one table of transitions the store allows."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """Where a job is in its life. All but queued and running are final: nothing moves a job out of them."""

    QUEUED = "queued"  #: accepted and waiting for a worker of its stack
    RUNNING = "running"  #: its container has been started
    SUCCEEDED = "succeeded"  #: its container exited 0
    FAILED = "failed"  #: its code exited non-zero, or the platform could not run it
    TIMED_OUT = "timed_out"  #: killed after running past its timeout
    OOM_KILLED = "oom_killed"  #: killed by the kernel for exceeding its memory limit
    CANCELLED = "cancelled"  #: cancelled by a user
    LOST = "lost"  #: the platform lost it more often than its requeue budget allows (a poison job)
    REJECTED = "rejected"  #: refused when it was submitted (a bad Celery-native message): it never ran

    @property
    def final(self) -> bool:
        """True when the job has ended for good."""
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)

    @property
    def ironworker(self) -> str:
        """The status IronWorker's API and clients know (queued, running, complete, error, cancelled,
        killed, timeout)."""
        return IRONWORKER_STATUSES[self]


#: IronWorker names: a job the platform lost or refused is an `error` there, one the kernel killed for its
#: memory is `killed` (IronWorker's word for a task it stopped for breaking a limit).
IRONWORKER_STATUSES = {
    JobStatus.QUEUED: "queued", JobStatus.RUNNING: "running", JobStatus.SUCCEEDED: "complete",
    JobStatus.FAILED: "error", JobStatus.TIMED_OUT: "timeout", JobStatus.OOM_KILLED: "killed",
    JobStatus.CANCELLED: "cancelled", JobStatus.LOST: "error", JobStatus.REJECTED: "error",
}
FINAL_STATUSES = frozenset(s for s in JobStatus if s.final)
UNFINISHED_STATUSES = frozenset(s for s in JobStatus if not s.final)


class AttemptStatus(StrEnum):
    """Where one attempt is: queued (claimed or not), running, or how it ended."""

    QUEUED = "queued"  #: created, not yet started (it may be claimed and pulling)
    RUNNING = "running"  #: its container has been started
    SUCCEEDED = "succeeded"  #: its container exited 0
    FAILED = "failed"  #: its code exited non-zero, or the platform could not run it
    TIMED_OUT = "timed_out"  #: killed after running past the job's timeout
    OOM_KILLED = "oom_killed"  #: killed for exceeding the job's memory limit
    CANCELLED = "cancelled"  #: the job was cancelled while this attempt was current
    LOST = "lost"  #: the infrastructure lost it (worker, engine, container): the job was requeued or ended lost

    @classmethod
    def ended_as(cls, status: JobStatus) -> "AttemptStatus":
        """The attempt status matching a job's final status."""
        return cls(status.value)


#: Which statuses a job may move to from each status. A job goes (back) to queued only
#: together with a new attempt number: a retry, or a requeue of a lost attempt. A final
#: status is never left. Every status write in the store is guarded by this table.
#: A rejected job is stored rejected; nothing moves a job there.
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.QUEUED} | FINAL_STATUSES - {JobStatus.REJECTED}),
    JobStatus.RUNNING: frozenset({JobStatus.QUEUED} | FINAL_STATUSES - {JobStatus.REJECTED}),
    **{s: frozenset() for s in FINAL_STATUSES},
}


def sources_of(target: JobStatus) -> frozenset[JobStatus]:
    """The statuses from which a job may move to `target`."""
    return frozenset(s for s, targets in ALLOWED_TRANSITIONS.items() if target in targets)
