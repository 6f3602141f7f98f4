"""longshore.Client against answers Longshore's API would not give (another server, a proxy, an old API):
errors in words, never a traceback; a 429 or 503 waited out, a POST sent again only after a 429."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from longshore.errors import JobNotFound, Unreachable
from longshore.remote import Client


def serve(answers: list[tuple[int, dict[str, str], bytes]]):
    """An HTTP server on 127.0.0.1 giving these answers in turn; the requests it saw."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            seen.append(f"{self.command} {self.path}")
            status, headers, body = answers.pop(0) if answers else (500, {}, b"")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


JSON = {"Content-Type": "application/json"}


def test_odd_answers_are_errors_in_words():
    server, _seen = serve([(404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>"),
                           (200, {"Content-Type": "text/html"}, b"<html>a proxy's page</html>"),
                           (200, JSON, b"[1, 2]")])
    client = Client(f"http://127.0.0.1:{server.server_port}", "token")
    with pytest.raises(JobNotFound):
        client.stacks()
    for _ in range(2):
        with pytest.raises(Unreachable, match="did not answer as Longshore's API does"):
            client.stacks()
    server.shutdown()


def test_a_429_is_waited_out_even_with_an_http_date_and_a_post_is_not_repeated_after_a_503():
    server, seen = serve([(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT", **JSON}, b'{"msg": "slow"}'),
                          (200, JSON, json.dumps({"stacks": []}).encode()),
                          (503, {"Retry-After": "1", **JSON}, b'{"msg": "store away"}')])
    client = Client(f"http://127.0.0.1:{server.server_port}", "token")
    assert client.stacks() == [] and seen == ["GET /v1/stacks", "GET /v1/stacks"]
    with pytest.raises(Unreachable, match="503"):
        client.submit("busybox", ["true"])
    assert seen[-1] == "POST /v1/jobs" and len(seen) == 3  # the job may be stored: not sent twice
    server.shutdown()
