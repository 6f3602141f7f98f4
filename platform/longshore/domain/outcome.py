"""How an attempt ended, as a result (Fn's RunResult): a job's own failure is data, not an exception."""

from __future__ import annotations

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


def container_outcome(*, timed_out: bool, exit_code: int, oom_killed: bool, timeout_seconds: float,
                      memory_bytes: int, output: bytes | None = None, output_truncated: bool = False,
                      result: bytes | None = None, result_error: str | None = None,
                      finished_at: float | None = None) -> Outcome:
    """Turn how a container ended into an outcome; `timed_out` when the platform killed it at its timeout.
    `result_error` says why a result file was refused; it is added to the outcome's error."""
    what_it_left = dict(output=output, output_truncated=output_truncated, result=result, finished_at=finished_at)
    if timed_out:
        status, error = JobStatus.TIMED_OUT, f"killed after running past its timeout of {timeout_seconds:g} seconds"
    elif oom_killed:
        status, error = JobStatus.OOM_KILLED, (f"killed: out of memory (limit {memory_bytes // (1 << 20)} MiB); "
                                               "raise the job's memory limit")
    elif exit_code == 0:
        status, error = JobStatus.SUCCEEDED, None
    else:
        status, error = JobStatus.FAILED, f"the job's command exited with code {exit_code}"
    error = "; ".join(part for part in (error, result_error) if part) or None
    return Outcome(status=status, exit_code=exit_code, error=error, **what_it_left)
