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
    # one after another, these calls of many URLs shared one connection
    assert ours._socket_pool.idle == 1


def test_a_socket_that_does_not_answer_or_answers_badly_is_a_transient_failure(tmp_path):
    import socket
    import threading

    from longshore.engine.socket_http import SocketHttp

    client = connect(None, tls_certs=None, timeout=1)
    # no engine at that path
    client._socket_pool = SocketHttp(str(tmp_path / "no-engine.sock"))
    failures = []
    for answer in (None, b"", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", b"not HTTP at all\r\n\r\n"):
        if answer is not None:  # an engine that says nothing (a timeout), closes mid-answer, or speaks nonsense
            path = str(tmp_path / f"engine-{len(failures)}.sock")
            server = socket.socket(socket.AF_UNIX)
            server.bind(path)
            server.listen()

            def serve(server=server, answer=answer):
                connection, _ = server.accept()
                connection.recv(65536)
                if answer:
                    connection.sendall(answer)
                    connection.close()
                else:
                    connection.recv(65536)  # holds it open, silent, until the client gives up

            threading.Thread(target=serve, daemon=True).start()
            client._socket_pool = SocketHttp(path)
        with pytest.raises(Exception) as raised:
            client.inspect_container("anything")
        failures.append(raised.value)
        assert classify.classify(raised.value) is FailureKind.TRANSIENT, raised.value
        assert client._socket_pool.idle == 0  # a connection that failed is never reused
    assert [type(failure).__name__ for failure in failures] == [
        "ConnectionError", "ReadTimeout", "ConnectionError", "ConnectionError"]


def test_the_pool_answers_threads_at_once_and_replaces_a_connection_the_engine_closed(clients):
    from concurrent.futures import ThreadPoolExecutor

    ours, theirs, made = clients
    name = f"longshore-socket-test-{uuid.uuid4().hex[:8]}"
    theirs.create_container(IMAGE, ["seq", "1", "200000"], name=name)  # 1.3 MB of output
    made.append(name)
    theirs.start(name)
    assert theirs.wait(name)["StatusCode"] == 0
    expected = theirs.inspect_container(name)
    with ThreadPoolExecutor(8) as threads:
        answers = list(threads.map(lambda _: ours.inspect_container(name), range(200)))
    assert all(answer == expected for answer in answers)
    assert 1 <= ours._socket_pool.idle <= 8
    # connections the engine closed while idle (here: shut down under the pool) are noticed and replaced
    for connection in list(ours._socket_pool._idle.queue):
        connection.shutdown(2)
    assert ours.inspect_container(name) == expected
    # a chunked answer (the engine sends a container's logs in chunks, no length given) reads whole
    status, _, headers, _ = ours._socket_pool.request("GET", f"/v{ours._version}/containers/{name}/logs?stdout=1",
                                                      body=None, headers={}, timeout=30)
    assert status == 200 and ("Transfer-Encoding", "chunked") in headers
    assert ours.logs(name) == theirs.logs(name) and len(ours.logs(name)) > 1_000_000


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
