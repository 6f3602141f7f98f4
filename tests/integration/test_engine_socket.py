"""On a local socket the engine client sends docker-py's plain calls straight to its socket connections
(`engine.connection`): against the real engine, every answer and every typed error is the one docker-py
gives through requests, and a socket that does not answer is a transient failure, as before."""

from __future__ import annotations

import time
import uuid

import docker
import pytest

from longshore.engine import classify
from longshore.engine.calls import path_stat
from longshore.engine.connection import connect
from longshore.errors import FailureKind
from support.services import IMAGE

pytestmark = pytest.mark.usefixtures("docker_engine")


@pytest.fixture
def clients():
    ours = connect(None, tls_certs=None, timeout=30)
    theirs = docker.APIClient(base_url="unix:///var/run/docker.sock", version="auto")
    made: list[str] = []
    yield ours, theirs, made
    for name in made:
        try:
            theirs.remove_container(name, force=True, v=True)
        except docker.errors.NotFound:
            pass  # the test removed it


def test_every_plain_call_answers_as_docker_py_does_through_one_pool_of_connections(clients):
    ours, theirs, made = clients
    name = f"longshore-socket-test-{uuid.uuid4().hex[:8]}"
    # create (a JSON body and a query), start, wait for it, read it back
    created = ours.create_container(IMAGE, ["sh", "-c", "echo out; echo err >&2; exit 3"], name=name,
                                    labels={"io.longshore.socket-test": name})
    made.append(name)
    ours.start(name)
    assert theirs.wait(name)["StatusCode"] == 3
    assert ours.inspect_container(name) == theirs.inspect_container(name)
    assert ours.inspect_container(name)["Id"] == created["Id"]
    # the logs as bytes, both streams; an image; a list filtered by label (a JSON parameter)
    both = ours.logs(name, stdout=True, stderr=True)
    assert both == theirs.logs(name, stdout=True, stderr=True) and sorted(both.splitlines()) == [b"err", b"out"]
    assert ours.logs(name, stdout=False, stderr=True) == b"err\n"
    assert ours.inspect_image(IMAGE) == theirs.inspect_image(IMAGE)
    listed = ours.containers(all=True, filters={"label": f"io.longshore.socket-test={name}"})
    assert [c["Id"] for c in listed] == [created["Id"]]
    # a stream (the engine's events) and a HEAD (a path's stat) still go through requests, and work
    events = ours.events(since=int(time.time()) - 60, until=int(time.time()) + 1, decode=True,
                         filters={"container": name})
    assert "start" in {event.get("Action") for event in events}
    assert path_stat(ours, name, "/bin")["name"] == "bin"
    # the typed errors docker-py raises from the status code, and their kinds
    for call, error, kind in [
        (lambda: ours.inspect_container(name + "-absent"), docker.errors.NotFound, FailureKind.NOT_FOUND),
        (lambda: ours.inspect_image("longshore/absent:1"), docker.errors.ImageNotFound, FailureKind.NOT_FOUND),
        (lambda: ours.create_container(IMAGE, ["true"], name=name), docker.errors.APIError, FailureKind.CONFLICT),
        (lambda: ours.start(name + "-absent"), docker.errors.NotFound, FailureKind.NOT_FOUND),
    ]:
        with pytest.raises(error) as raised:
            call()
        assert classify.classify(raised.value) is kind
    ours.remove_container(name, force=True, v=True)
    with pytest.raises(docker.errors.NotFound):
        ours.remove_container(name, force=True)
    # one after another, these calls of many URLs shared one connection (the pool's idle ones: urllib3's queue)
    assert sum(connection is not None for connection in ours._socket_pool.pool.queue) == 1


def test_a_socket_that_does_not_answer_is_a_transient_failure(tmp_path):
    from docker.transport.unixconn import UnixHTTPConnectionPool

    client = connect(None, tls_certs=None, timeout=5)
    client._socket_pool = UnixHTTPConnectionPool(client.base_url, str(tmp_path / "no-engine.sock"), 5)
    with pytest.raises(Exception) as raised:
        client.inspect_container("anything")
    assert classify.classify(raised.value) is FailureKind.TRANSIENT


def test_collecting_an_exited_container_reads_its_output_in_one_call_as_docker_py_does(clients):
    from longshore.engine.client import DockerEngine

    _, theirs, made = clients
    engine = DockerEngine(None, timeout_seconds=30)
    inspects: list[tuple] = []
    api, inspect = engine._api, engine._api.inspect_container
    api.inspect_container = lambda *args, **kwargs: inspects.append(args) or inspect(*args, **kwargs)
    for tty in (False, True):
        name = f"longshore-socket-test-{uuid.uuid4().hex[:8]}"
        # both streams interleaved, bytes that are not UTF-8, and a line with no newline at the end
        theirs.create_container(IMAGE, ["sh", "-c", r"echo out; echo err >&2; printf '\377\000\n' ; printf end >&2"],
                                name=name, tty=tty)
        made.append(name)
        theirs.start(name)
        assert theirs.wait(name)["StatusCode"] == 0
        inspected = engine.inspect(name)
        inspects.clear()
        report = engine.collect(name, output_limit_bytes=1 << 20, result_limit_bytes=1 << 20, inspected=inspected)
        assert report.output == theirs.logs(name, stdout=True, stderr=True) and report.exit_code == 0
        assert b"out" in report.output and b"end" in report.output
        assert inspects == []  # given the inspect after the exit: neither its own nor docker-py's TTY check
    # a container that is gone is docker-py's typed error, classified as before
    with pytest.raises(Exception) as raised:
        engine._call("wait", engine._output, f"absent-{uuid.uuid4().hex[:8]}", tty=False)
    assert raised.value.kind is FailureKind.NOT_FOUND
