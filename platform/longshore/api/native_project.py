"""/v1/project: the token's project as it stands, its quotas and what they are compared with now."""

from __future__ import annotations

from fastapi import APIRouter, Request

from longshore.api.native import Project
from longshore.service.views import project_view

router = APIRouter(prefix="/v1")


@router.get("/project")
def project(request: Request, project: str = Project) -> dict:
    """The project's id and name; its quotas, its own (`null`: the installation's) and those in effect (0: no
    limit); and its usage: jobs waiting (queued or delayed, as `max_queued_jobs` counts them) and jobs running
    (holding a worker's slot, as `max_running_jobs` counts them)."""
    return project_view(request.app.state.runtime, project)
