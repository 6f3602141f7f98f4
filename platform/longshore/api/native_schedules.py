"""/v1 schedules, for the token's project: make one (`longshore.schedule`'s fields: a job request, of a code or
a stack and command, and its timing), list (by label), read, pause, resume, delete. The request is checked as
a job now by the core (`service.scheduling.check_schedule`); another project's schedule answers 404 exactly
as one never made."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import Field

from longshore.api.auth import ApiError
from longshore.api.native import JobSubmission, Project
from longshore.domain.schedules import known_id
from longshore.service.runtime import Runtime
from longshore.service.scheduling import create_schedule
from longshore.service.views import schedule_view

router = APIRouter(prefix="/v1")


class ScheduleSubmission(JobSubmission):
    """The job each run submits (`POST /v1/jobs`'s fields but `delay`, `job_id` and `secret_env`, which the
    core refuses by name) and when: at `start_at`, then every `run_every` seconds, at most `run_times` runs,
    none after `end_at`."""

    start_at: float | str | None = Field(default=None, description="a Unix time, or an ISO 8601 time with its "
                                                                   "zone; default now")
    run_every: float | None = Field(default=None, description="seconds between runs, at least 60; none: it runs "
                                                              "once")
    run_times: int | None = Field(default=None, description="at most this many runs")
    end_at: float | str | None = Field(default=None, description="no run after this time")


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


@router.post("/schedules", status_code=201)
def create(request: Request, schedule: ScheduleSubmission, project: str = Project) -> dict:
    """Make a schedule; answers it as stored. Runs missed while nothing could make them are not made up:
    of the runs due at once only the latest is made."""
    rt = _rt(request)
    schedule_id = create_schedule(rt, schedule.model_dump(exclude_unset=True), project=project)
    return schedule_view(rt.store.schedules.get(schedule_id, project=project))


@router.get("/schedules")
def list_schedules(request: Request, label: str | None = None, project: str = Project) -> dict:
    """The project's schedules not deleted, oldest first (of a label, if given)."""
    if label is not None and "\x00" in label:
        raise ApiError(400, "label: must not contain a NUL character", field="label")
    found = _rt(request).store.schedules.list(label=label, project=project)
    return {"schedules": [schedule_view(item) for item in found]}


@router.get("/schedules/{schedule_id}")
def get_schedule(request: Request, schedule_id: str, project: str = Project) -> dict:
    """The schedule: its request, its timing, its runs (`last_job_id`: the job its latest run made)."""
    return schedule_view(_rt(request).store.schedules.get(known_id(schedule_id), project=project))


@router.post("/schedules/{schedule_id}/pause")
def pause(request: Request, schedule_id: str, project: str = Project) -> dict:
    """No runs until `resume`; then the runs missed meanwhile collapse into one, made at once."""
    return _set_paused(request, schedule_id, True, project)


@router.post("/schedules/{schedule_id}/resume")
def resume(request: Request, schedule_id: str, project: str = Project) -> dict:
    return _set_paused(request, schedule_id, False, project)


@router.delete("/schedules/{schedule_id}")
def delete(request: Request, schedule_id: str, project: str = Project) -> dict:
    """No more runs; the jobs it made stay."""
    _rt(request).store.schedules.delete(known_id(schedule_id), project=project)
    return {"id": schedule_id, "deleted": True}


def _set_paused(request: Request, schedule_id: str, paused: bool, project: str) -> dict:
    schedules = _rt(request).store.schedules
    schedules.set_paused(known_id(schedule_id), paused, project=project)
    return schedule_view(schedules.get(schedule_id, project=project))
