"""On a local socket the engine client sends docker-py's plain calls straight to its socket connections
(`engine.connection`): against the real engine, every answer and every typed error is the one docker-py
gives through requests, and a socket that does not answer is a transient failure, as before."""

from __future__ import annotations

import time
import uuid

import docker
import pytest
import requests

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


def test_the_pool_answers_threads_at_once_each_its_own_answer_and_reuses_a_descriptor_past_1023(clients):
    import fcntl
    import resource
    import socket
    from concurrent.futures import ThreadPoolExecutor

    ours, theirs, made = clients
    names = [f"longshore-socket-test-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    theirs.create_container(IMAGE, ["seq", "1", "200000"], name=names[0])  # 1.3 MB of output
    theirs.create_container(IMAGE, ["true"], name=names[1])
    made.extend(names)
    theirs.start(names[0])
    assert theirs.wait(names[0])["StatusCode"] == 0
    expected = {name: theirs.inspect_container(name) for name in names}

    def ask(n: int):
        if n % 5 == 4:
            with pytest.raises(docker.errors.NotFound):
                ours.inspect_container(names[0] + "-absent")
            return "absent", None
        name = names[n % 2]
        return name, ours.inspect_container(name)

    with ThreadPoolExecutor(8) as threads:
        answers = list(threads.map(ask, range(200)))
    assert all(answer == expected[name] for name, answer in answers if name != "absent")
    assert 1 <= ours._socket_pool.idle <= 8
    # a kept connection on a descriptor past 1023 (a busy worker's: select() cannot watch one, poll() can) is
    # checked and reused like any other
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    try:
        kept = ours._socket_pool._idle.get_nowait()
        high = fcntl.fcntl(kept.fileno(), fcntl.F_DUPFD_CLOEXEC, 2000)  # the first free one from 2000
        moved = socket.socket(fileno=high)
        kept.close()
        ours._socket_pool._idle.put(moved)
        for _ in range(3):
            assert ours.inspect_container(names[1]) == expected[names[1]]
            assert ours._socket_pool._idle.queue[-1].fileno() == high > 1023  # it carried the call, and was kept
    finally:
        ours._socket_pool.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    # a chunked answer (the engine sends a container's logs in chunks, no length given) reads whole
    logs = f"/v{ours._version}/containers/{names[0]}/logs?stdout=1"
    status, _, headers, _ = ours._socket_pool.request("GET", logs, body=None, headers={}, timeout=30)
    assert status == 200 and ("Transfer-Encoding", "chunked") in headers
    assert ours.logs(names[0]) == theirs.logs(names[0]) and len(ours.logs(names[0])) > 1_000_000


def _fake_engine(path: str, answers: list[list[bytes]], requests_seen: list[bytes]) -> None:
    """A unix socket that answers each connection's requests with its list of answers, in order, then closes it."""
    import socket
    import threading

    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()

    def serve():
        for per_connection in answers:
            connection, _ = server.accept()
            for answer in per_connection:
                requests_seen.append(connection.recv(65536))
                for part in answer.split(b"|"):  # `|`: a pause between two writes
                    connection.sendall(part)
                    time.sleep(0.05)
            connection.close()
        server.close()

    threading.Thread(target=serve, daemon=True).start()


def test_the_wire_bytes_headers_an_interim_answer_and_a_connection_the_engine_closed(tmp_path):
    from longshore.engine.socket_http import SocketHttp

    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Twice: a\r\nX-Twice: b\r\n\r\nok"
    seen: list[bytes] = []
    _fake_engine(str(tmp_path / "engine.sock"), [
        [ok, b"HTTP/1.1 100 Continue\r\n\r\n|" + ok, b"HTTP/1.1 100 Continue\r\n\r\n" + ok],  # then it closes
        [ok]], seen)
    pool = SocketHttp(str(tmp_path / "engine.sock"))
    # a bytes header value (docker-py's X-Registry-Auth) goes as its text; the answer's repeated header joined
    answer = pool.request("POST", "/v1.41/x?a=1", body=None, headers={"X-Registry-Auth": b"e30="}, timeout=5)
    assert answer[:2] == (200, "OK") and answer[3] == b"ok"
    request = seen[0].decode()
    assert request.startswith("POST /v1.41/x?a=1 HTTP/1.1\r\n") and "X-Registry-Auth: e30=\r\n" in request
    assert "Content-Length: 0\r\n" in request and "Accept-Encoding: identity\r\n" in request
    # 100 Continue before the answer, apart from it or with it: the answer is the 200 after it
    for _ in range(2):
        assert pool.request("GET", "/x", body=None, headers={}, timeout=5)[:2] == (200, "OK")
    # the engine closed the kept connection: noticed before reuse, and a new one asks again
    time.sleep(0.2)
    assert pool.request("GET", "/x", body=None, headers={}, timeout=5)[3] == b"ok" and len(seen) == 4
    # a header that would split the request is refused before anything is sent
    with pytest.raises(requests.exceptions.InvalidHeader):
        pool.request("GET", "/x", body=None, headers={"X-Bad": "a\r\nX-Injected: 1"}, timeout=5)


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
