"""A remote engine over TLS, without an engine: how its settings read and how its failures classify."""

from __future__ import annotations

import ssl

import docker.errors
import pytest
import requests
import requests.exceptions

from longshore.engine.classify import classify
from longshore.errors import ConfigError, FailureKind
from longshore.settings import DOCKER_CERT_FILES, Settings


def caused_by(exc: BaseException, cause: BaseException) -> BaseException:
    """`exc` as raised `from cause`."""
    exc.__cause__ = cause
    return exc


def wrapped_as_docker_py_does(cause: BaseException) -> BaseException:
    """The version negotiation's failure, as docker-py's client constructor raises it."""
    return caused_by(docker.errors.DockerException(f"Error while fetching server API version: {cause}"), cause)


def tls_failure(ssl_error: ssl.SSLError) -> BaseException:
    """A TLS failure as requests raises it (urllib3's own wrapper left out)."""
    return caused_by(requests.exceptions.SSLError("Max retries exceeded"), ssl_error)


def http_error(status: int) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError("engine said", response=response)


@pytest.mark.parametrize("ssl_error", [ssl.SSLCertVerificationError(1, "certificate verify failed"),
                                       ssl.SSLError(1, "sslv3 alert bad certificate"),
                                       ssl.SSLError(1, "wrong version number")])
def test_a_refused_tls_handshake_is_permanent_however_it_is_wrapped(ssl_error):
    assert classify(tls_failure(ssl_error)) is FailureKind.PERMANENT
    assert classify(wrapped_as_docker_py_does(tls_failure(ssl_error))) is FailureKind.PERMANENT
    assert classify(requests.exceptions.SSLError("no cause kept")) is FailureKind.PERMANENT


def test_a_tls_connection_cut_short_is_transient():
    assert classify(wrapped_as_docker_py_does(tls_failure(ssl.SSLEOFError(8, "EOF")))) is FailureKind.TRANSIENT


@pytest.mark.parametrize("status,kind", [(400, FailureKind.PERMANENT), (404, FailureKind.PERMANENT),
                                         (500, FailureKind.TRANSIENT), (503, FailureKind.TRANSIENT)])
def test_an_address_answering_the_version_negotiation_with_a_client_error_is_permanent(status, kind):
    # plain HTTP to a TLS port is answered 400; a 404 at connect is never "the container is gone"
    assert classify(wrapped_as_docker_py_does(http_error(status))) is kind


def test_tls_verify_is_on_when_set_to_anything_as_for_the_docker_cli(tmp_path):
    for name in DOCKER_CERT_FILES:
        (tmp_path / name).write_text("pem")
    assert Settings.from_env({"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)}).docker_tls_verify
    assert not Settings.from_env({"DOCKER_TLS_VERIFY": ""}).docker_tls_verify
    assert not Settings.from_env({}).docker_tls_verify


@pytest.mark.parametrize("value", ["0", "false", "No", "off"])
def test_a_tls_verify_value_meaning_off_is_refused_as_the_docker_cli_would_read_it_as_on(value):
    with pytest.raises(ConfigError, match=r"DOCKER_TLS_VERIFY: .* \(any value does\)"):
        Settings.from_env({"DOCKER_TLS_VERIFY": value})


@pytest.mark.parametrize("absent", DOCKER_CERT_FILES)
def test_with_tls_verify_each_file_of_the_cert_path_must_exist(tmp_path, absent):
    for name in DOCKER_CERT_FILES:
        if name != absent:
            (tmp_path / name).write_text("pem")
    with pytest.raises(ConfigError, match=f"DOCKER_CERT_PATH: {tmp_path / absent} does not exist"):
        Settings.from_env({"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)})
    assert Settings.from_env({"DOCKER_CERT_PATH": str(tmp_path)}).docker_cert_path == tmp_path  # off: not read
