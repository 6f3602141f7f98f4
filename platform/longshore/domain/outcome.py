"""How an attempt ended, as a result (Fn's RunResult): a job's own failure is data, not an exception."""

from __future__ import annotations

import re
from dataclasses import dataclass

from longshore.domain.status import JobStatus


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """The end of one attempt: its status, exit code, error in words, and what it left."""

    status: JobStatus
    exit_code: int | None = None
    error: str | None = None
    output: bytes | None = None
    output_truncated: bool = False
    result: bytes | None = None
    finished_at: float | None = None  #: when the container stopped, as the engine recorded it

    @classmethod
    def platform_failure(cls, error: str) -> "Outcome":
        """The platform could not run the attempt (a bad image, an engine that refused …)."""
        return cls(status=JobStatus.FAILED, error=error)


#: A process killed by SIGXFSZ (a file past RLIMIT_FSIZE) exits with 128 + 25.
EXIT_FILE_TOO_BIG = 128 + 25
#: What a job's own output says when it hit one of its limits (strerror's words, and Node's and Go's
#: codes). A hint added to the error, never a decision: the job's exit code decides.
OUTPUT_HINTS = (
    (re.compile(rb"no space left on device|ENOSPC|disk quota exceeded", re.IGNORECASE), "disk"),
    (re.compile(rb"too many open files|EMFILE", re.IGNORECASE), "nofile"),
)


def container_outcome(*, timed_out: bool, exit_code: int, oom_killed: bool, timeout_seconds: float,
                      memory_bytes: int, disk_bytes: int = 0, inodes: int | None = None,
                      output: bytes | None = None,
                      output_truncated: bool = False, result: bytes | None = None, result_error: str | None = None,
                      finished_at: float | None = None) -> Outcome:
    """Turn how a container ended into an outcome; `timed_out` when the platform killed it at its timeout.
    `result_error` says why a result file was refused; it is added to the outcome's error."""
    what_it_left = dict(output=output, output_truncated=output_truncated, result=result, finished_at=finished_at)
    disk = _mib(disk_bytes)
    if timed_out:
        status, error = JobStatus.TIMED_OUT, f"killed after running past its timeout of {timeout_seconds:g} seconds"
    elif oom_killed:
        status, error = JobStatus.OOM_KILLED, (
            f"killed: out of memory (limit {_mib(memory_bytes + disk_bytes)}: its memory {_mib(memory_bytes)} "
            f"and its disk {disk}, as its files in TASK_DIR and /tmp are kept in memory); raise the job's "
            "memory limit")
    elif exit_code == 0:
        status, error = JobStatus.SUCCEEDED, None
    elif exit_code == EXIT_FILE_TOO_BIG:
        status, error = JobStatus.FAILED, (f"killed (SIGXFSZ): it wrote a file past the largest size allowed, "
                                           f"its disk limit of {disk}")
    else:
        status, error = JobStatus.FAILED, f"the job's command exited with code {exit_code}"
        hint = _limit_hint(output, disk if inodes is None else f"{disk} and {inodes} files")
        if hint:
            error = f"{error}; {hint}"
    error = "; ".join(part for part in (error, result_error) if part) or None
    return Outcome(status=status, exit_code=exit_code, error=error, **what_it_left)


def _limit_hint(output: bytes | None, disk: str) -> str | None:
    tail = (output or b"")[-4096:]
    for pattern, limit in OUTPUT_HINTS:
        if pattern.search(tail):
            if limit == "disk":
                return (f"its output says it ran out of disk: TASK_DIR and /tmp hold at most {disk} each "
                        "(its disk limit; ask for more with `disk`, up to its stack's maximum)")
            return "its output says it ran out of open files (its stack's `nofile` limit)"
    return None


def _mib(amount: int) -> str:
    return f"{amount / (1 << 20):g} MiB"
