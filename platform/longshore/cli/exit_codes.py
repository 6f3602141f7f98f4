"""The exit codes of `longshore run`, as `docker run` and `timeout(1)` use them."""

from __future__ import annotations

from longshore.domain.status import JobStatus

#: The platform itself could not run the job (an invalid job, a missing image, lost too often …).
PLATFORM_FAILURE = 125
#: For a job that ended without an exit code of its own.
BY_STATUS = {
    JobStatus.TIMED_OUT: 124,
    JobStatus.OOM_KILLED: 137,
    JobStatus.CANCELLED: 130,
    JobStatus.LOST: PLATFORM_FAILURE,
    JobStatus.REJECTED: PLATFORM_FAILURE,
}


def exit_code_of(status: JobStatus, exit_code: int | None) -> int:
    """What `longshore run` exits with for a job that ended with `status` and `exit_code`."""
    if status in BY_STATUS:
        return BY_STATUS[status]
    if exit_code is None:
        return PLATFORM_FAILURE
    return exit_code
