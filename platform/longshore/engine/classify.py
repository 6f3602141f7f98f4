"""The one error classifier: a failed engine call's kind, from exception types and status codes only.

Docker's message text has changed between versions, so it never decides anything
here. docker-py maps status codes to classes but has none for 409; connection
errors and timeouts come from `requests`, not docker-py's hierarchy.
"""

from __future__ import annotations

import docker.errors
import requests.exceptions

from longshore.errors import DockerFailure, FailureKind, TransientDockerFailure


def classify(exc: BaseException) -> FailureKind:
    """Decide the kind of a failed engine call from its type and status code."""
    if isinstance(exc, docker.errors.APIError) and exc.status_code is not None:
        if exc.status_code == 409:
            return FailureKind.CONFLICT
        if exc.status_code == 404:
            return FailureKind.NOT_FOUND
        if exc.status_code >= 500:
            return FailureKind.TRANSIENT
        return FailureKind.PERMANENT
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        ConnectionError, TimeoutError)):
        return FailureKind.TRANSIENT
    if isinstance(exc, (docker.errors.InvalidRepository, docker.errors.InvalidArgument,
                        docker.errors.ImageNotFound, docker.errors.NotFound)):
        return FailureKind.PERMANENT
    if isinstance(exc, docker.errors.DockerException):
        # Raised by the client itself when it cannot reach the engine at all.
        return FailureKind.TRANSIENT
    return FailureKind.PERMANENT


def failure(step: str, exc: BaseException) -> DockerFailure:
    """The classified failure of an engine call in `step`, with words for a user."""
    kind = classify(exc)
    failure_class = TransientDockerFailure if kind is FailureKind.TRANSIENT else DockerFailure
    return failure_class(step, kind, describe(step, exc))


def describe(step: str, exc: BaseException) -> str:
    """Words for a user: the step, the status code if any, and the engine's explanation."""
    if isinstance(exc, docker.errors.APIError):
        explanation = exc.explanation or str(exc)
        code = f" ({exc.status_code})" if exc.status_code else ""
        return f"{step} failed{code}: {explanation}"
    return f"{step} failed: {type(exc).__name__}: {exc}"
