"""Schedules: made (their request checked as a job now), and carried out by the active scheduler.

Each due schedule is planned by the catch-up rule (`domain.schedules.plan`), its job submitted with the
schedule's id and the occurrence's number (a unique pair in the store: a second scheduler, or this one
after a crash between the job and the schedule's update, cannot make it twice), then the schedule moves on.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from longshore.domain.projects import DEFAULT_PROJECT
from longshore.domain.schedules import SCHEDULE_FIELDS, Plan, Schedule, build_timing, check_id, new_schedule_id, plan
from longshore.errors import DuplicateJob, InvalidJob, ScheduleNotFound
from longshore.service.runtime import Runtime
from longshore.service.submit import build, check_webhook_secret, rejected_id, submit

log = logging.getLogger(__name__)

#: A schedule whose round failed unexpectedly is looked at again this much later.
RETRY_FAILED_SECONDS = 60


def create_schedule(rt: Runtime, fields: dict[str, Any], schedule_id: str | None = None, *,
                    project: str = DEFAULT_PROJECT) -> str:
    """Check and store a schedule: its timing fields, and the rest as a job request (validated now, as a
    job of its code or stack; checked again at each occurrence). Returns its id."""
    return store_schedule(rt, *check_schedule(rt, fields, project=project), schedule_id=schedule_id,
                          project=project)


def check_schedule(rt: Runtime, fields: dict[str, Any], *, project: str = DEFAULT_PROJECT) -> tuple:
    """A schedule's request and timing, checked (InvalidJob naming the field); nothing is stored."""
    fields = {key: value for key, value in fields.items() if value is not None}
    timing = build_timing({key: fields.pop(key, None) for key in SCHEDULE_FIELDS})
    for refused, why in (("delay", "its start_at is when it runs"), ("job_id", "each occurrence's job gets one"),
                         ("secret_env", "secrets are never kept beyond one job")):
        if refused in fields:
            raise InvalidJob(f"{refused}: a schedule's jobs cannot have one ({why})")
    example = build(rt, dict(fields), project=project)  # the request must make a valid job today
    check_webhook_secret(rt, example)
    return fields, timing, example.label


def store_schedule(rt: Runtime, fields: dict[str, Any], timing: Any, label: str | None, *,
                   schedule_id: str | None = None, project: str = DEFAULT_PROJECT) -> str:
    return rt.store.schedules.create(schedule_id or new_schedule_id(), fields, timing, label, project=project)


def schedule_from_message(rt: Runtime, message_id: Any, args: tuple, fields: dict[str, Any]) -> str:
    """The Celery-native entry point: the schedule's id is the message's id. A bad message is never dropped:
    it is stored as an ended schedule whose `last_error` says why (a redelivery changes nothing); one whose id
    cannot name a schedule, under `rejected_id(id)`."""
    try:
        schedule_id = check_id(message_id)
    except InvalidJob:
        schedule_id = rejected_id(message_id)
    try:
        rt.store.schedules.get(schedule_id)
        return schedule_id  # a redelivered message: made already
    except ScheduleNotFound:
        pass
    try:
        if schedule_id != message_id:
            check_id(message_id)  # names the rule the id broke
        if args:
            raise InvalidJob(f"the message has {len(args)} positional argument(s); longshore.schedule takes its "
                             "fields as keyword arguments only")
        return create_schedule(rt, fields, schedule_id)
    except InvalidJob as exc:
        log.warning("rejected schedule %s: %s", schedule_id, exc)
        rt.store.schedules.reject(schedule_id, f"rejected: {exc}")
        return schedule_id


def _run_one(rt: Runtime, schedule: Schedule, now: float) -> int:
    """Carry out one due schedule's plan; 1 if it made a job."""
    chosen = plan(schedule.timing, schedule.next_occurrence, schedule.runs, now)
    if chosen is None:
        last = schedule.timing.last_occurrence()
        if last is not None and schedule.next_occurrence > last:  # its end passed: it is done
            rt.store.schedules.advance(schedule, Plan(schedule.next_occurrence, 0, None), job_id=None, error=None)
        return 0
    job_id, error, made = f"{schedule.id}-{chosen.occurrence}", None, 0
    try:
        new = build(rt, dict(schedule.request), project=schedule.project_id)
        submit(rt, dataclasses.replace(new, id=job_id, schedule_id=schedule.id,
                                       schedule_occurrence=chosen.occurrence))
        made = 1
    except DuplicateJob:  # made before a crash, or by another scheduler: unless another job took the id
        existing = rt.store.jobs.get(job_id)
        if (existing.schedule_id, existing.schedule_occurrence) != (schedule.id, chosen.occurrence):
            job_id, error = None, f"job id {job_id} is taken by a job this schedule did not make"
    except InvalidJob as exc:  # its code was deleted, a limit was lowered...: say so on the schedule
        job_id, error = None, str(exc)
        log.warning("schedule %s occurrence %s made no job: %s", schedule.id, chosen.occurrence, exc)
    rt.store.schedules.advance(schedule, chosen, job_id=job_id, error=error)
    if chosen.skipped:
        log.info("schedule %s skipped %s missed occurrence(s) (catch-up rule)", schedule.id, chosen.skipped)
    return made


def run_due(rt: Runtime, now: float | None = None) -> int:
    """Make the jobs of every due schedule (one per schedule: the catch-up rule); return how many were made."""
    now = time.time() if now is None else now
    made = 0
    for schedule in rt.store.schedules.due(now):
        try:
            made += _run_one(rt, schedule, now)
        except Exception as exc:  # one schedule must never stop the others: it is looked at again later
            log.exception("schedule %s failed; looking at it again in %ss", schedule.id, RETRY_FAILED_SECONDS)
            try:
                rt.store.schedules.postpone(schedule, now + RETRY_FAILED_SECONDS, f"{type(exc).__name__}: {exc}")
            except Exception:  # the store is away: the next round sees it again
                log.warning("could not postpone schedule %s", schedule.id, exc_info=True)
    return made
