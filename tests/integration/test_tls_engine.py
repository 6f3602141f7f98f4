"""A remote engine over TLS: DOCKER_HOST=tcp://…, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, read as the docker CLI does.

The engine is a dockerd of the tests' own that listens only on a TLS port of 127.0.0.1
(`support.tls_engine`), and Longshore is driven as a user drives it: the CLI in its
embedded default, with those three variables in its environment.
"""

from __future__ import annotations

import shutil
import subprocess
import time

from support.services import LABEL_JOB


def longshore(env, *args, timeout=60):
    return subprocess.run(["longshore", *args], env=env, capture_output=True, text=True, timeout=timeout)


def assert_refused_in_words(done: subprocess.CompletedProcess, *names: str) -> None:
    """The run stopped with a message naming the variables, never a traceback, and nothing ran."""
    assert done.returncode != 0 and done.stdout == "", done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    for name in names:
        assert name in done.stderr, done.stderr


def test_a_job_runs_end_to_end_on_an_engine_spoken_to_over_verified_tls(tls_engine, embedded_env):
    # Given an engine reachable only over TLS, its client certificates in DOCKER_CERT_PATH, and a CA bundle
    # for everything else that must not override them (requests lets it: docker/docker-py#2433)
    env = tls_engine.env(embedded_env, REQUESTS_CA_BUNDLE=str(tls_engine.wrong_ca_certs / "ca.pem"))
    since = str(int(time.time()) - 1)
    # When a job runs there
    done = longshore(env, "run", "--stack", "busybox", "--", "echo", "hi")
    # Then it succeeds with its output, its container ran on that engine, and nothing of it is left there
    assert (done.returncode, done.stdout) == (0, "hi\n"), done.stderr
    events = tls_engine.docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                               "--filter", "type=container", "--filter", "event=start", "--format", "{{.ID}}")
    assert events.returncode == 0 and events.stdout.strip(), events.stderr
    left = tls_engine.docker("ps", "--all", "--quiet", "--filter", f"label={LABEL_JOB}")
    volumes = tls_engine.docker("volume", "ls", "--quiet")
    assert (left.returncode, left.stdout, volumes.returncode, volumes.stdout) == (0, b"", 0, b""), left.stderr


def test_plain_http_to_the_tls_port_is_refused_at_once_naming_the_variables(tls_engine, embedded_env):
    # Given DOCKER_HOST at the TLS port but DOCKER_TLS_VERIFY unset: the docker CLI speaks plain HTTP then
    env = tls_engine.env(embedded_env, DOCKER_TLS_VERIFY=None)
    # When a job is run, then it stops within seconds (no waiting for an engine that answers) with what to change
    started = time.monotonic()
    done = longshore(env, "run", "--", "echo", "hi")
    assert time.monotonic() - started < 20
    assert_refused_in_words(done, "DOCKER_HOST", tls_engine.host, "DOCKER_TLS_VERIFY is not set")


def test_an_engine_certificate_from_another_ca_is_refused_naming_the_variables(tls_engine, embedded_env):
    # Given DOCKER_CERT_PATH holding an unrelated CA's files
    env = tls_engine.env(embedded_env, DOCKER_CERT_PATH=str(tls_engine.wrong_ca_certs))
    # When a job is run, then the engine's certificate is not trusted, and the message says which settings
    done = longshore(env, "run", "--", "echo", "hi")
    assert_refused_in_words(done, "DOCKER_HOST", "DOCKER_TLS_VERIFY", f"DOCKER_CERT_PATH={tls_engine.wrong_ca_certs}",
                            "certificate verify failed")


def test_a_cert_path_missing_a_file_stops_the_start_naming_the_variable_and_the_file(tls_engine, embedded_env,
                                                                                     tmp_path):
    # Given a DOCKER_CERT_PATH with the CA and the certificate but no key
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("ca.pem", "cert.pem"):
        shutil.copy(tls_engine.client_certs / name, certs / name)
    # When anything is run, then the settings refuse it before any engine call (exit 2, as for any setting)
    done = longshore(tls_engine.env(embedded_env, DOCKER_CERT_PATH=str(certs)), "run", "--", "echo", "hi")
    assert done.returncode == 2, done.stderr
    assert_refused_in_words(done, "DOCKER_CERT_PATH", str(certs / "key.pem"))
