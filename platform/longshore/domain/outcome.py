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
    output: str | None = None
    output_truncated: bool = False
    result: str | None = None
    finished_at: float | None = None  #: when the container stopped, as the engine recorded it

    @classmethod
    def platform_failure(cls, error: str) -> "Outcome":
        """The platform could not run the attempt (a bad image, an engine that refused …)."""
        return cls(status=JobStatus.FAILED, error=error)


def container_outcome(*, timed_out: bool, exit_code: int, oom_killed: bool, timeout_seconds: float,
                      memory_bytes: int, output: str | None = None, output_truncated: bool = False,
                      result: str | None = None, finished_at: float | None = None) -> Outcome:
    """Turn how a container ended into an outcome; `timed_out` when the platform killed it at its timeout."""
    what_it_left = dict(output=output, output_truncated=output_truncated, result=result, finished_at=finished_at)
    if timed_out:
        return Outcome(status=JobStatus.TIMED_OUT, exit_code=exit_code,
                       error=f"killed after running past its timeout of {timeout_seconds:g} seconds", **what_it_left)
    if oom_killed:
        return Outcome(status=JobStatus.OOM_KILLED, exit_code=exit_code,
                       error=(f"killed: out of memory (limit {memory_bytes // (1 << 20)} MiB); "
                              "raise the job's memory limit"), **what_it_left)
    if exit_code == 0:
        return Outcome(status=JobStatus.SUCCEEDED, exit_code=0, **what_it_left)
    return Outcome(status=JobStatus.FAILED, exit_code=exit_code,
                   error=f"the job's command exited with code {exit_code}", **what_it_left)
