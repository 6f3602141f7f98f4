"""The error classifier decides from exception types and status codes only (pure: no engine)."""

from __future__ import annotations

import docker.errors
import pytest
import requests
import requests.exceptions

from longshore.domain.registries import RegistryAuths, RegistryCredential
from longshore.engine.classify import classify, describe, failure, refuses_credentials
from longshore.engine.registry import credentials_refusal
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


@pytest.mark.parametrize("exc,status", [(api_error(403), 403), (api_error(500), 500),
                                        (requests.exceptions.ConnectionError("refused"), None)])
def test_a_failure_keeps_the_engines_status_code_and_none_when_it_did_not_answer(exc, status):
    assert failure("start", exc).status == status


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


# -- a failed pull from a registry that wants credentials ------------------------

AUTHS = RegistryAuths("LONGSHORE_REGISTRY_AUTH_FILE",
                      (RegistryCredential("127.0.0.1:5001", "me", "pa55-never-shown"),))


def asking(*answers):
    """The engine's answers to the distribution questions, in order; records what each was sent."""
    sent = []

    def ask(auth_config):
        sent.append(auth_config)
        return answers[len(sent) - 1]

    return ask, sent


def test_credentials_refused_with_a_401_are_a_permanent_failure_naming_the_registry_and_the_setting():
    # Given a pull that failed with the engine's 500, and the engine answering the configured credentials 401
    ask, sent = asking(api_error(401))
    # When the failure is looked into, then it is permanent and says whose credentials were refused
    refusal = credentials_refusal("127.0.0.1:5001", AUTHS, failure("pull", api_error(500)), ask)
    assert refusal.kind is FailureKind.PERMANENT and not isinstance(refusal, TransientDockerFailure)
    assert str(refusal) == ("registry 127.0.0.1:5001 refused the credentials configured for it in "
                            "LONGSHORE_REGISTRY_AUTH_FILE")
    assert sent == [AUTHS.auth_config("127.0.0.1:5001")]
    assert "pa55-never-shown" not in str(refusal)


def test_a_registry_refusing_a_made_up_credential_requires_credentials_none_being_configured():
    # Given no credentials for the registry: anonymously the engine answers 500, with any credential 401
    ask, sent = asking(api_error(500), api_error(401))
    refusal = credentials_refusal("127.0.0.1:5002", AUTHS, failure("pull", api_error(500)), ask)
    assert str(refusal) == ("registry 127.0.0.1:5002 requires credentials; none are configured for it in "
                            "LONGSHORE_REGISTRY_AUTH_FILE")
    assert sent[0] is None and sent[1]["username"] == "longshore-probe"


@pytest.mark.parametrize("registry,answers", [
    ("127.0.0.1:5001", [api_error(500)]),  # down: the configured credentials get no answer either
    ("127.0.0.1:5001", [None]),  # the credentials are fine: the pull failed for another reason
    ("127.0.0.1:5002", [api_error(500), api_error(500)]),  # down
    ("127.0.0.1:5002", [None]),  # serves anonymous requests
    ("127.0.0.1:5002", [api_error(404)]),
    ("127.0.0.1:5002", [api_error(400)]),
])
def test_a_failed_pull_stays_as_it_was_unless_the_registry_refused_credentials(registry, answers):
    ask, _ = asking(*answers)
    assert credentials_refusal(registry, AUTHS, failure("pull", api_error(500)), ask) is None


def test_a_missing_image_is_not_looked_into():
    ask, sent = asking()
    assert credentials_refusal("127.0.0.1:5001", AUTHS, failure("pull", api_error(404)), ask) is None
    assert sent == []


@pytest.mark.parametrize("status,refused", [(401, True), (403, True), (400, False), (404, False), (500, False)])
def test_only_401_and_403_say_credentials_were_refused(status, refused):
    assert refuses_credentials(api_error(status, "unauthorized: authentication required")) is refused
    assert not refuses_credentials(None)
