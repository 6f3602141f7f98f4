"""The error classifier decides from exception types and status codes only (pure: no engine)."""

from __future__ import annotations

import docker.errors
import pytest
import requests
import requests.exceptions

from longshore.engine.classify import classify, describe, failure
from longshore.errors import FailureKind, TransientDockerFailure


def api_error(status: int, explanation: str = "whatever the engine says today") -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError("engine said no", response=response, explanation=explanation)


@pytest.mark.parametrize("status,kind", [
    (400, FailureKind.PERMANENT), (401, FailureKind.PERMANENT), (403, FailureKind.PERMANENT),
    (404, FailureKind.NOT_FOUND), (409, FailureKind.CONFLICT),
    (500, FailureKind.TRANSIENT), (502, FailureKind.TRANSIENT), (503, FailureKind.TRANSIENT),
])
def test_status_codes_decide_the_kind(status, kind):
    assert classify(api_error(status)) is kind


@pytest.mark.parametrize("words", ["No such container", "conflict: unable to remove", "connection refused", ""])
def test_the_message_text_never_decides(words):
    # Given the same status code with any engine wording, then the kind is the same
    assert classify(api_error(500, words)) is FailureKind.TRANSIENT
    assert classify(api_error(400, words)) is FailureKind.PERMANENT


@pytest.mark.parametrize("exc", [
    requests.exceptions.ConnectionError("refused"), requests.exceptions.ReadTimeout("slow"),
    ConnectionResetError(), TimeoutError(), docker.errors.DockerException("cannot reach the engine"),
])
def test_network_failures_are_transient(exc):
    assert classify(exc) is FailureKind.TRANSIENT


@pytest.mark.parametrize("exc", [docker.errors.InvalidRepository("bad"), docker.errors.InvalidArgument("bad"),
                                 ValueError("a bug")])
def test_bad_requests_and_unknown_errors_are_permanent(exc):
    assert classify(exc) is FailureKind.PERMANENT


def test_a_transient_failure_is_the_class_the_worker_retries():
    assert isinstance(failure("start", api_error(503)), TransientDockerFailure)
    assert not isinstance(failure("start", api_error(400)), TransientDockerFailure)


def test_the_description_names_the_step_and_the_code():
    assert describe("pull", api_error(404, "manifest unknown")) == "pull failed (404): manifest unknown"
