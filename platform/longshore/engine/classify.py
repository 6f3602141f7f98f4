"""The one error classifier: a failed engine call's kind, from exception types and status codes only.

Docker's message text has changed between versions, so it never decides anything
here. docker-py maps status codes to classes but has none for 409; connection
errors and timeouts come from `requests`, not docker-py's hierarchy.
"""

from __future__ import annotations

import ssl

import docker.errors
import requests.exceptions

from longshore.errors import DockerFailure, FailureKind, TransientDockerFailure

#: A TLS connection cut short (the engine restarting, the network), not refused: worth a retry.
_CUT_TLS = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)


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
    tls = _tls_error(exc)
    if tls is not None:
        # A refused handshake (the engine's certificate not signed by DOCKER_CERT_PATH's CA, a client
        # certificate missing or refused, TLS to a plain port) fails alike on every retry: the settings
        # are wrong, so it is permanent.
        return FailureKind.TRANSIENT if isinstance(tls, _CUT_TLS) else FailureKind.PERMANENT
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        ConnectionError, TimeoutError)):
        return FailureKind.TRANSIENT
    if isinstance(exc, (docker.errors.InvalidRepository, docker.errors.InvalidArgument,
                        docker.errors.ImageNotFound, docker.errors.NotFound, docker.errors.TLSParameterError)):
        return FailureKind.PERMANENT
    if isinstance(exc, docker.errors.DockerException):
        # Raised by the client itself when it cannot reach the engine at all, or wrapping the version
        # negotiation's failure: an address that answers it with a client error is no engine as configured
        # (plain HTTP to a TLS port answers 400), and will answer the same again.
        answer = exc.__cause__
        if isinstance(answer, docker.errors.APIError) and answer.status_code and answer.status_code < 500:
            return FailureKind.PERMANENT
        return FailureKind.TRANSIENT
    return FailureKind.PERMANENT


def _tls_error(exc: BaseException) -> BaseException | None:
    """The innermost TLS error behind a failure, if any: docker-py, requests and urllib3 each wrap it once more."""
    found, seen = None, set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, (ssl.SSLError, requests.exceptions.SSLError)):
            found = cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return found


def refuses_credentials(answer: BaseException | None) -> bool:
    """Whether the engine's answer says the registry refused the credentials sent (or their absence)."""
    return isinstance(answer, docker.errors.APIError) and answer.status_code in (401, 403)


def failure(step: str, exc: BaseException) -> DockerFailure:
    """The classified failure of an engine call in `step`, with words for a user."""
    kind = classify(exc)
    failure_class = TransientDockerFailure if kind is FailureKind.TRANSIENT else DockerFailure
    status = exc.status_code if isinstance(exc, docker.errors.APIError) else None
    return failure_class(step, kind, describe(step, exc), status=status)


def describe(step: str, exc: BaseException) -> str:
    """Words for a user: the step, the status code if any, and the engine's explanation."""
    if isinstance(exc, docker.errors.APIError):
        explanation = exc.explanation or str(exc)
        code = f" ({exc.status_code})" if exc.status_code else ""
        return f"{step} failed{code}: {explanation}"
    return f"{step} failed: {type(exc).__name__}: {exc}"
