"""Who a request acts for, and the API's own errors."""

from __future__ import annotations

from fastapi import Request


class ApiError(Exception):
    """An answer other than 2xx, with IronWorker's `{"msg": …}` body."""

    def __init__(self, status: int, msg: str):
        super().__init__(msg)
        self.status, self.msg = status, msg


def authenticated(request: Request) -> str | None:
    """The project the request's token acts for; None for none or a wrong one."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    token = value.strip() if scheme.lower() in ("oauth", "bearer") else request.query_params.get("oauth")
    return request.app.state.runtime.store.projects.authenticate(token) if token else None


def project_of(request: Request, project_id: str) -> str:
    """The project the request's token acts for, which must be the one in the path."""
    owner = authenticated(request)
    if owner is None:
        raise ApiError(401, "Unauthorized: give a valid token as `Authorization: OAuth TOKEN`")
    if owner != project_id:
        raise ApiError(404, "Project not found")
    return owner
