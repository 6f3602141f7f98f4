"""HTTP/1.1 to the engine's unix socket for docker-py's plain calls: kept-alive connections, answers parsed by
httptools (llhttp, in C: uvicorn's parser, already a dependency).

An inspect through urllib3 and http.client cost this process about 0.38 ms of CPU, much of it in http.client's
header parsing (the `email` package) and urllib3's bookkeeping; through this, 0.2 with docker-py's own work
around it (`bench/engine_calls.py`). A job makes six or seven such calls. Streams, HEAD requests and a body
that is a file or a generator still go through requests (`engine.connection`). Failures are requests' own
exceptions, as requests' adapter raises them: `classify` decides on their types, never their text. A header
value may be bytes (docker-py's X-Registry-Auth is); a 1xx answer before the answer is read and dropped; a
connection is never reused after a failure (its answer may still come) nor once the engine has closed it.
"""

from __future__ import annotations

import queue
import select
import socket
from typing import Any

import httptools
import requests
import requests.structures
import requests.utils

#: Connections kept open while idle (one per thread that calls at once; more are closed as they come back).
DEFAULT_MAX_IDLE = 32
#: A request's bytes a connection reads at a time (an inspect's answer is 3–10 kB; a log up to a megabyte).
READ_BYTES = 65536
#: Methods that send a body: sent with `Content-Length: 0` when they have none, as http.client does.
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
#: Headers this module writes itself: the engine is asked for its answers as they are (never compressed).
_OWN_HEADERS = frozenset({"host", "content-length", "accept-encoding"})


class Answer:
    """One response as httptools hands it over: its status, reason, headers and body. An interim answer (1xx)
    before it is read and dropped."""

    def __init__(self) -> None:
        self.parser: Any = None  #: the parser feeding it (for the status of the answer under way)
        self._start()
        self.complete = False

    def _start(self) -> None:
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.headers_done = self.interim = False

    # httptools' callbacks
    def on_status(self, reason: bytes) -> None:
        self.reason += reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.headers_done:  # not a chunked body's trailers
            self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.interim = 100 <= self.parser.get_status_code() < 200

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.interim:
            self._start()  # 100 Continue and its kind: the answer follows
        else:
            self.complete = True

    def keeps_alive(self, version: str) -> bool:
        """HTTP/1.1 keeps a connection unless it says `close`; 1.0 only if it says `keep-alive` (httptools'
        own answer to this is gone once the message completes)."""
        connection = next((value.lower() for name, value in self.headers if name.lower() == "connection"), "")
        return "keep-alive" in connection if version == "1.0" else "close" not in connection

    def ends_at_close(self) -> bool:
        """A body with neither a length nor chunks ends when the engine closes the connection."""
        names = {name.lower(): value.lower() for name, value in self.headers}
        return self.headers_done and "content-length" not in names and "chunked" not in names.get(
            "transfer-encoding", "")


class SocketHttp:
    """Requests over a pool of connections to one unix socket (thread-safe: each request has its own)."""

    def __init__(self, path: str, *, max_idle: int = DEFAULT_MAX_IDLE):
        self.path = path
        self._idle: queue.LifoQueue[socket.socket] = queue.LifoQueue()
        self._max_idle = max_idle

    @property
    def idle(self) -> int:
        """Connections open and waiting for a request."""
        return self._idle.qsize()

    def request(self, method: str, target: str, *, body: bytes | None, headers: dict[str, Any],
                timeout: float | None) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Send one request and read its whole answer: (status, reason, headers, body)."""
        data = _request_bytes(method, target, body, headers)
        connection = self._connection(timeout)
        try:
            try:
                connection.sendall(data)
            except socket.timeout as exc:
                raise requests.exceptions.ConnectionError(exc) from exc
            except OSError as exc:  # the engine closed it (a broken pipe) or went away
                raise requests.exceptions.ConnectionError(exc) from exc
            answer, keep = self._read(connection)
        except BaseException:
            connection.close()  # never reused: its answer may still come
            raise
        if keep and self._idle.qsize() < self._max_idle:
            self._idle.put(connection)
        else:
            connection.close()
        return answer

    def close(self) -> None:
        """Close every idle connection."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def _connection(self, timeout: float | None) -> socket.socket:
        """An idle connection the engine has not closed (nothing to read on it), else a new one."""
        while True:
            try:
                connection = self._idle.get_nowait()
            except queue.Empty:
                break
            readable = select.poll()  # not select(): it cannot watch a descriptor past 1023
            readable.register(connection, select.POLLIN)
            if not readable.poll(0):
                connection.settimeout(timeout)
                return connection
            connection.close()  # closed by the engine (or it sent what no request asked for)
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.settimeout(timeout)
            connection.connect(self.path)
        except socket.timeout as exc:
            connection.close()
            raise requests.exceptions.ConnectTimeout(exc) from exc
        except OSError as exc:
            connection.close()
            raise requests.exceptions.ConnectionError(exc) from exc
        except BaseException:
            connection.close()
            raise
        return connection

    @staticmethod
    def _read(connection: socket.socket) -> tuple[tuple[int, str, list[tuple[str, str]], bytes], bool]:
        """The answer, and whether the connection may carry another request."""
        answer = Answer()
        parser = answer.parser = httptools.HttpResponseParser(answer)
        try:
            while not answer.complete:
                data = connection.recv(READ_BYTES)
                if not data:
                    if answer.ends_at_close() and not answer.interim:
                        break
                    raise requests.exceptions.ConnectionError("the engine closed the connection mid-answer")
                parser.feed_data(data)
        except socket.timeout as exc:
            raise requests.exceptions.ReadTimeout(exc) from exc
        except httptools.HttpParserError as exc:
            raise requests.exceptions.ConnectionError(f"the engine's answer is not HTTP: {exc}") from exc
        except OSError as exc:
            raise requests.exceptions.ConnectionError(exc) from exc
        keep = answer.complete and answer.keeps_alive(parser.get_http_version())
        return (parser.get_status_code(), answer.reason, answer.headers, b"".join(answer.chunks)), keep


def _request_bytes(method: str, target: str, body: bytes | None, headers: dict[str, Any]) -> bytes:
    """The request as it goes on the wire. A header value may be bytes (docker-py's X-Registry-Auth is);
    a name or value that would split the request (CR, LF) is refused, as requests refuses it."""
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost", "Accept-Encoding: identity"]
    for name, value in headers.items():
        if name.lower() in _OWN_HEADERS:
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if any(character in name + text for character in "\r\n\0") or ":" in name:
            raise requests.exceptions.InvalidHeader(f"header {name!r}: a name or value that is not one line")
        lines.append(f"{name}: {text}")
    if body is not None or method in _WITH_BODY:
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def as_response(status: int, reason: str, headers: list[tuple[str, str]], body: bytes, url: str) -> Any:
    """A requests Response of an answer read whole, for docker-py's reading of it."""
    response = requests.Response()
    response.status_code, response.reason, response.url = status, reason, url
    joined: dict[str, str] = {}
    for name, value in headers:  # a header given twice is one, its values joined (as urllib3 joins them)
        key = next((known for known in joined if known.lower() == name.lower()), name)
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    response.headers = requests.structures.CaseInsensitiveDict(joined)
    response.encoding = requests.utils.get_encoding_from_headers(response.headers)
    response._content, response._content_consumed = body, True
    return response
