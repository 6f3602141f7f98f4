"""Schedules: a job request made into jobs at `start_at`, then every `run_every` seconds (at least 60),
at most `run_times` times and not after `end_at`, with IronWorker's field names.

Occurrence `i` is due at `start_at + i * run_every`; each makes at most one job (the store's unique index
on the job's schedule and occurrence). **Catch-up rule:** when the scheduler looks after downtime (or a
pause) and several occurrences are due, only the latest is run, at once; the ones before it are counted
as skipped, never run. So a schedule never floods its stack after an outage. No occurrence due after
`end_at` is ever run (one due before it may run late, by this rule).
"""

from __future__ import annotations

import math
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from longshore.domain.projects import DEFAULT_PROJECT
from longshore.errors import InvalidJob, ScheduleNotFound

MIN_RUN_EVERY_SECONDS = 60
#: How far ahead a schedule may start or end (ten years).
MAX_AHEAD_SECONDS = 10 * 366 * 86400
MAX_RUN_TIMES = 1_000_000
#: A schedule's id: its jobs' ids are the id, '-' and the occurrence's number (at most 10 digits), in 64.
SCHEDULE_ID = re.compile(r"[A-Za-z0-9_-]{1,53}")
#: How far back a schedule may start (ten years): occurrence numbers stay small.
MAX_BEHIND_SECONDS = 10 * 366 * 86400
#: The fields of a schedule; every other field of a request is the job's (`longshore.submit`'s fields).
SCHEDULE_FIELDS = ("start_at", "run_every", "run_times", "end_at")


@dataclass(frozen=True, kw_only=True)
class Timing:
    """When a schedule's occurrences are."""

    start_at: float
    run_every: float | None  #: None: it runs once, at start_at
    run_times: int | None  #: None: no limit but end_at
    end_at: float | None

    def due_at(self, occurrence: int) -> float:
        """When occurrence `occurrence` (0 first) is due."""
        return self.start_at + occurrence * (self.run_every or 0)

    def last_occurrence(self) -> int | None:
        """The last occurrence end_at allows (None: no end)."""
        if self.run_every is None:
            return 0
        if self.end_at is None:
            return None
        return self.latest_due_by(self.end_at)

    def latest_due_by(self, when: float) -> int:
        """The last occurrence due at or before `when` (-1 if none), exact where division rounds."""
        latest = math.floor((when - self.start_at) / self.run_every)
        while self.due_at(latest + 1) <= when:
            latest += 1
        while latest >= 0 and self.due_at(latest) > when:
            latest -= 1
        return latest


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A schedule as the store holds it."""

    id: str
    request: dict[str, Any]  #: the job fields each occurrence is submitted with
    timing: Timing
    label: str | None
    next_occurrence: int | None  #: the first occurrence not yet run or skipped; None once it has ended
    next_at: float | None
    runs: int
    skipped: int
    last_run_at: float | None
    last_job_id: str | None
    last_error: str | None
    paused: bool
    created_at: float
    updated_at: float
    project_id: str = DEFAULT_PROJECT

    @property
    def state(self) -> str:
        """active, paused, or done."""
        return "done" if self.next_at is None else "paused" if self.paused else "active"


@dataclass(frozen=True)
class Plan:
    """What the scheduler does with a due schedule now."""

    occurrence: int  #: the occurrence to run
    skipped: int  #: occurrences before it that are skipped (catch-up rule)
    following: int | None  #: the occurrence after it, None if there is none


def plan(timing: Timing, next_occurrence: int, runs: int, now: float) -> Plan | None:
    """The catch-up rule: of the occurrences due by `now` from `next_occurrence` on, run the latest and
    skip the rest; None if none is due."""
    if now < timing.due_at(next_occurrence):
        return None
    latest = next_occurrence if timing.run_every is None else max(next_occurrence, timing.latest_due_by(now))
    last = timing.last_occurrence()
    if last is not None:
        if next_occurrence > last:
            return None
        latest = min(latest, last)
    following = latest + 1
    if (last is not None and following > last) or timing.run_every is None:
        following = None
    if timing.run_times is not None and runs + 1 >= timing.run_times:
        following = None
    return Plan(occurrence=latest, skipped=latest - next_occurrence, following=following)


def build_timing(fields: dict[str, Any], now: float | None = None) -> Timing:
    """Check a schedule's timing fields; raise InvalidJob naming the field. `start_at` defaults to now."""
    now = time.time() if now is None else now
    start_at = _time(fields.get("start_at"), "start_at", now) if fields.get("start_at") is not None else now
    if start_at < now - MAX_BEHIND_SECONDS:
        raise InvalidJob("start_at: is more than ten years ago")
    run_every = fields.get("run_every")
    if run_every is not None:
        if isinstance(run_every, bool) or not isinstance(run_every, (int, float)) \
                or not MIN_RUN_EVERY_SECONDS <= run_every <= MAX_AHEAD_SECONDS:  # NaN fails this too
            raise InvalidJob(f"run_every: must be a number of seconds, at least {MIN_RUN_EVERY_SECONDS}")
        run_every = float(run_every)
    run_times = fields.get("run_times")
    if run_times is not None and (isinstance(run_times, bool) or not isinstance(run_times, int)
                                  or not 1 <= run_times <= MAX_RUN_TIMES):
        raise InvalidJob(f"run_times: must be a whole number from 1 to {MAX_RUN_TIMES}")
    end_at = _time(fields.get("end_at"), "end_at", now) if fields.get("end_at") is not None else None
    if end_at is not None and end_at < start_at:
        raise InvalidJob("end_at: must not be before start_at")
    if run_every is None and (run_times or 1) > 1:
        raise InvalidJob("run_times: a schedule that runs more than once needs run_every")
    return Timing(start_at=start_at, run_every=run_every, run_times=run_times, end_at=end_at)


def new_schedule_id() -> str:
    return uuid.uuid4().hex


def check_id(schedule_id: Any) -> str:
    if not isinstance(schedule_id, str) or not SCHEDULE_ID.fullmatch(schedule_id):
        raise InvalidJob("schedule_id: must be 1 to 53 letters, digits, '-' or '_'")
    return schedule_id


def known_id(schedule_id: str) -> str:
    """A schedule's id to look up: one no schedule can have is answered as a schedule never made
    (ScheduleNotFound, with the store's words), before any lookup."""
    if not SCHEDULE_ID.fullmatch(schedule_id):
        raise ScheduleNotFound(f"schedule_id: no schedule {schedule_id[:64]!r}")
    return schedule_id


def _time(value: Any, field: str, now: float) -> float:
    """A Unix time (seconds), or an ISO 8601 time with its zone (`2026-11-28T09:00:00Z`)."""
    if isinstance(value, str):
        from datetime import datetime

        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidJob(f"{field}: {value[:40]!r} is not an ISO 8601 time such as 2026-11-28T09:00:00Z") from None
        if parsed.tzinfo is None:
            raise InvalidJob(f"{field}: {value[:40]!r} has no time zone (add Z or +01:00)")
        value = parsed.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1e12 < value < 1e12:
        raise InvalidJob(f"{field}: must be a Unix time or an ISO 8601 time such as 2026-11-28T09:00:00Z")
    if value > now + MAX_AHEAD_SECONDS:
        raise InvalidJob(f"{field}: is more than ten years ahead")
    return float(value)
