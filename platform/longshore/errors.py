"""Every error Longshore raises on purpose derives from LongshoreError.

A job whose own code fails is not an error: it is a result recorded on the job
(see `domain.outcome.Outcome`). These classes are for the caller's mistakes and
the platform's own failures.
"""

from __future__ import annotations

from enum import StrEnum


class LongshoreError(Exception):
    """Base class of all Longshore errors."""


class ConfigError(LongshoreError):
    """A setting from the environment is missing or malformed; names the variable."""


class InvalidJob(LongshoreError, ValueError):
    """A submitted job is malformed (unknown stack, bad limit, payload too big …)."""


class Refused(LongshoreError):
    """The HTTP API refused the request: a missing, wrong or revoked token (401), or a limit (403, 429)."""


class Unreachable(LongshoreError):
    """The HTTP API (LONGSHORE_API_URL) could not be reached, or failed (5xx)."""


class QuotaExceeded(Refused, InvalidJob):
    """A project's quota refuses the request for now (HTTP 429): `retry_after` seconds is when to try again."""

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class UnknownStack(InvalidJob):
    """The job names a stack the manifest does not define."""


class CodeNotFound(InvalidJob, LookupError):
    """No code (or no such revision of it) is in the store: a job naming it is invalid."""


class DuplicateJob(InvalidJob):
    """A job with that id exists already (a caller's job_id used twice, or a schedule's occurrence made)."""


class ProjectNotFound(InvalidJob, LookupError):
    """No project with that id or name."""


class ScheduleNotFound(InvalidJob, LookupError):
    """No schedule with that id (or it was deleted)."""


class JobNotFound(LongshoreError, LookupError):
    """No job with that id is in the store."""


class WaitTimeout(LongshoreError, TimeoutError):
    """A caller's wait for a job ran out before the job finished."""


class FailureKind(StrEnum):
    """What the platform should do about a failed engine call (decided in `engine.classify`)."""

    TRANSIENT = "transient"  #: the engine or network hiccuped: retry with backoff
    PERMANENT = "permanent"  #: the request itself is wrong: fail the job, do not retry
    CONFLICT = "conflict"  #: 409: resolve by looking at the actual state, not by retrying
    NOT_FOUND = "not_found"  #: 404: the container or image is not there; often an expected answer


class DockerFailure(LongshoreError):
    """An engine call failed; `kind` says what to do about it."""

    def __init__(self, step: str, kind: FailureKind, message: str, *, status: int | None = None):
        super().__init__(message)
        self.step = step
        self.kind = kind
        self.status = status  #: the engine's HTTP status; None when it did not answer (or no call was made)


class TransientDockerFailure(DockerFailure):
    """A DockerFailure worth retrying; the worker's step tasks retry on this class."""
