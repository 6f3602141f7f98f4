"""Who a request acts for (its token's project, within that project's request rate), and the API's own errors."""

from __future__ import annotations

from fastapi import Request

from longshore.errors import QuotaExceeded


class ApiError(Exception):
    """An answer other than 2xx, with IronWorker's `{"msg": …}` body (and /v1's `"field"` when one is named)."""

    def __init__(self, status: int, msg: str, *, field: str | None = None):
        super().__init__(msg)
        self.status, self.msg, self.field = status, msg, field


def authenticated(request: Request) -> str | None:
    """The project the request's token acts for; None for none or a wrong one. QuotaExceeded (429) when the
    project's requests come faster than its rate."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    token = value.strip() if scheme.lower() in ("oauth", "bearer") else request.query_params.get("oauth")
    rt = request.app.state.runtime
    caller = rt.store.projects.authenticate(token) if token else None
    if caller is None:
        return None
    rate = rt.settings.quotas.requests_per_second if caller.requests_per_second is None else caller.requests_per_second
    wait = request.app.state.request_rate.take(caller.project_id, rate)
    if wait:
        raise QuotaExceeded(f"requests_per_second: project {caller.project_id} may make {rate:g} requests a second; "
                            "slow down", retry_after=wait)
    return caller.project_id


def project_of(request: Request, project_id: str) -> str:
    """The project the request's token acts for, which must be the one in the path."""
    owner = authenticated(request)
    if owner is None:
        raise ApiError(401, "Unauthorized: give a valid token as `Authorization: OAuth TOKEN`")
    if owner != project_id:
        raise ApiError(404, "Project not found")
    return owner
