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

from longshore.domain.schedules import SCHEDULE_FIELDS, build_timing, check_id, new_schedule_id, plan
from longshore.errors import DuplicateJob, InvalidJob, ScheduleNotFound
from longshore.service.runtime import Runtime
from longshore.service.submit import build, submit

log = logging.getLogger(__name__)


def create_schedule(rt: Runtime, fields: dict[str, Any], schedule_id: str | None = None) -> str:
    """Check and store a schedule: its timing fields, and the rest as a job request (validated now, as a
    job of its code or stack; checked again at each occurrence). Returns its id."""
    fields = {key: value for key, value in fields.items() if value is not None}
    timing = build_timing({key: fields.pop(key, None) for key in SCHEDULE_FIELDS})
    for refused, why in (("delay", "its start_at is when it runs"), ("job_id", "each occurrence's job gets one"),
                         ("secret_env", "secrets are never kept beyond one job")):
        if refused in fields:
            raise InvalidJob(f"{refused}: a schedule's jobs cannot have one ({why})")
    example = build(rt, dict(fields))  # the request must make a valid job today
    return rt.store.schedules.create(schedule_id or new_schedule_id(), fields, timing, example.label)


def schedule_from_message(rt: Runtime, message_id: Any, args: tuple, fields: dict[str, Any]) -> str:
    """The Celery-native entry point: the schedule's id is the message's id. A bad message is never dropped:
    it is stored as an ended schedule whose `last_error` says why (a redelivery changes nothing)."""
    schedule_id = check_id(message_id)
    try:
        rt.store.schedules.get(schedule_id)
        return schedule_id  # a redelivered message: made already
    except ScheduleNotFound:
        pass
    try:
        if args:
            raise InvalidJob(f"the message has {len(args)} positional argument(s); longshore.schedule takes its "
                             "fields as keyword arguments only")
        return create_schedule(rt, fields, schedule_id)
    except InvalidJob as exc:
        log.warning("rejected schedule %s: %s", schedule_id, exc)
        rt.store.schedules.reject(schedule_id, f"rejected: {exc}")
        return schedule_id


def run_due(rt: Runtime, now: float | None = None) -> int:
    """Make the jobs of every due schedule (one per schedule: the catch-up rule); return how many were made."""
    now = time.time() if now is None else now
    made = 0
    for schedule in rt.store.schedules.due(now):
        chosen = plan(schedule.timing, schedule.next_occurrence, schedule.runs, now)
        if chosen is None:
            continue
        job_id, error = None, None
        try:
            new = build(rt, dict(schedule.request))
            new = dataclasses.replace(new, id=f"{schedule.id}-{chosen.occurrence}", schedule_id=schedule.id,
                                      schedule_occurrence=chosen.occurrence)
            job_id = submit(rt, new)
            made += 1
        except DuplicateJob:
            job_id = f"{schedule.id}-{chosen.occurrence}"  # made before a crash, or by another scheduler
        except InvalidJob as exc:  # its code was deleted, a limit was lowered...: say so on the schedule
            error = str(exc)
            log.warning("schedule %s occurrence %s made no job: %s", schedule.id, chosen.occurrence, exc)
        rt.store.schedules.advance(schedule, chosen, job_id=job_id, error=error)
        if chosen.skipped:
            log.info("schedule %s skipped %s missed occurrence(s) (catch-up rule)", schedule.id, chosen.skipped)
    return made
