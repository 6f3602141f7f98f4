"""The API's application: authentication, error bodies, and the routers.

Every response is JSON with a Content-Type (IronWorker's Python client reads that header on every answer,
204s included); errors are `{"msg": …}` with IronWorker's codes: 400 bad input, 401 no or wrong token,
404 no such project, code, task or schedule (another project's records answer 404, as if absent), 405,
413 a body over the limit, 429 a project's quota (with Retry-After). A token comes as
`Authorization: OAuth TOKEN` (IronWorker's clients), `Authorization: Bearer TOKEN`, or `?oauth=TOKEN`.
"""

from __future__ import annotations

import logging
import math

import sqlalchemy as sa

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from longshore.api import ironworker, native, native_codes, native_project, native_schedules
from longshore.api.auth import ApiError
from longshore.domain.quotas import RequestRate
from longshore.errors import (
    CodeNotFound, InvalidJob, JobNotFound, ProjectNotFound, QuotaExceeded, ScheduleNotFound,
)
from longshore.service.runtime import Runtime
from longshore.store import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

#: The largest request bodies read: a code upload (a zip, or Python 3's repr of one, up to 4 bytes a byte;
#: /v1's JSON with its base64, 4 characters for 3 bytes, fits well within), and any other request (a batch of
#: tasks with their payloads). A path ending in /codes takes the upload's limit (/2's and /v1's).
EXTRA_BODY_BYTES = 1 << 20
JSON_BODY_BYTES = 8 << 20


def create_app(rt: Runtime) -> FastAPI:
    """The ASGI application over a runtime."""
    app = FastAPI(title="Longshore", version="2", docs_url="/docs", openapi_url="/openapi.json")
    app.state.runtime = rt
    app.state.request_rate = RequestRate()
    app.state.body_limit = 4 * rt.settings.archive_limits.zip_bytes + EXTRA_BODY_BYTES
    app.include_router(ironworker.router)
    app.include_router(ironworker.clusters)
    app.include_router(native.router)
    for router in (native_codes.router, native_schedules.router, native_project.router):
        app.include_router(router)

    @app.get("/healthz", include_in_schema=False)
    def alive() -> dict:
        """Liveness: the process serves requests (a probe that restarts it when not)."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def ready() -> JSONResponse:
        """Readiness: the store answers (without it no route can); 503 names what does not."""
        try:
            with rt.store.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:  # any failure to reach the store is the answer
            return _msg(503, f"store: {exc.__class__.__name__}")
        return JSONResponse({"status": "ready"})

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        if exc.field is not None:
            return JSONResponse({"msg": exc.msg, "field": exc.field}, status_code=exc.status)
        return _msg(exc.status, exc.msg)

    @app.exception_handler(QuotaExceeded)
    async def over_quota(_request: Request, exc: QuotaExceeded) -> JSONResponse:
        field = str(exc).partition(":")[0]
        return JSONResponse({"msg": str(exc), "field": field}, status_code=429,
                            headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))})

    @app.exception_handler(InvalidJob)
    async def invalid(_request: Request, exc: InvalidJob) -> JSONResponse:
        missing = isinstance(exc, (CodeNotFound, JobNotFound, ScheduleNotFound, ProjectNotFound))
        text = str(exc)
        field, _, _rule = text.partition(":")
        body = {"msg": text, "field": field if _rule and " " not in field else None}
        return JSONResponse(body, status_code=404 if missing else 400)

    @app.exception_handler(JobNotFound)
    async def no_job(_request: Request, _exc: JobNotFound) -> JSONResponse:
        return _msg(404, "Task not found")

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
        rule = "is not a field" if first.get("type") == "extra_forbidden" else first.get("msg", "invalid")
        return JSONResponse({"msg": f"{where}: {rule}" if where else "Invalid request", "field": where or None},
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        words = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
        return _msg(exc.status_code, words)

    async def store_away(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("the store did not answer: %s", exc.__class__.__name__)  # it restarted, or is away
        return JSONResponse({"msg": "The store is unavailable; try again shortly"}, status_code=503,
                            headers={"Retry-After": "1"})

    for transient in TRANSIENT_ERRORS:
        app.add_exception_handler(transient, store_away)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in the API")
        return _msg(500, "Internal error (logged)")

    app.add_middleware(BodyLimit)
    return app


class BodyLimit:
    """Refuses a body over its limit (a code upload's, or any other request's) or one without a length (a
    chunked body could be endless) before a route reads it. A plain ASGI middleware: starlette's
    `BaseHTTPMiddleware` (`@app.middleware`) cost every request a task group and two streams."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        refusal = self._refusal(scope) if scope["type"] == "http" else None
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope) -> JSONResponse | None:
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is None and "transfer-encoding" in headers:
            return _msg(411, "Send the body with a Content-Length")
        upload = scope["method"] == "POST" and scope["path"].endswith("/codes")
        limit = scope["app"].state.body_limit if upload else JSON_BODY_BYTES  # the one the form parser takes
        if length is not None and (not length.isdigit() or int(length) > limit):
            return _msg(413, f"Request body over the limit of {limit} bytes")
        return None


def _msg(status: int, msg: str) -> JSONResponse:
    return JSONResponse({"msg": msg}, status_code=status)
