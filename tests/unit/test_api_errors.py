"""The API's answer when the store does not answer: 503 with Retry-After, never a 500 or a traceback."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import sqlalchemy as sa

from longshore.api.app import create_app


def get(app, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], dict]:
    """One GET through the ASGI application itself (no server, no HTTP client)."""
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, json.loads(body)


class AwayStore:
    """A store whose every call fails as a restarted PostgreSQL's pooled connection does."""

    def __getattr__(self, _name):
        def call(*_args, **_kwargs):
            raise sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        return call


def test_a_store_that_does_not_answer_is_a_503_with_retry_after():
    settings = SimpleNamespace(archive_limits=SimpleNamespace(zip_bytes=1 << 20))
    projects = AwayStore()
    runtime = SimpleNamespace(settings=settings, store=SimpleNamespace(projects=projects))
    status, headers, body = get(create_app(runtime), "/v1/jobs", {"Authorization": "Bearer something"})
    assert status == 503 and headers["retry-after"] == "1"
    assert body == {"msg": "The store is unavailable; try again shortly"}
