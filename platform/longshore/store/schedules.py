"""Schedules in the store: made, listed, paused, deleted, and advanced by the one active scheduler."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.domain.projects import DEFAULT_PROJECT
from longshore.domain.schedules import Plan, Schedule, Timing
from longshore.errors import ScheduleNotFound
from longshore.store.database import read
from longshore.store.schema import schedules

LIVE = schedules.c.deleted_at.is_(None)


class ScheduleStore:
    """Writes and reads of schedules."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def create(self, schedule_id: str, request: dict[str, Any], timing: Timing, label: str | None, *,
               project: str = DEFAULT_PROJECT) -> str:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(schedules.insert().values(
                id=schedule_id, project_id=project, request=request, label=label, start_at=timing.start_at,
                run_every=timing.run_every, run_times=timing.run_times, end_at=timing.end_at, next_occurrence=0,
                next_at=timing.start_at,
                runs=0, skipped=0, paused=False, created_at=now, updated_at=now))
        return schedule_id

    def reject(self, schedule_id: str, error: str) -> None:
        """Store a refused Celery-native schedule, ended, saying why (once: a redelivery changes nothing)."""
        now = time.time()
        try:
            with self.engine.begin() as conn:
                conn.execute(schedules.insert().values(
                    id=schedule_id, request={}, start_at=now, next_occurrence=None, next_at=None, runs=0,
                    skipped=0, paused=False, last_error=error[:2000], created_at=now, updated_at=now))
        except sa.exc.IntegrityError:
            pass

    def get(self, schedule_id: str, *, project: str | None = None) -> Schedule:
        """A schedule not deleted (of `project`, unless None); ScheduleNotFound naming it if there is none."""
        with read(self.engine) as conn:
            row = conn.execute(sa.select(schedules).where(*_key(schedule_id, project))).mappings().first()
        if row is None:
            raise ScheduleNotFound(f"schedule_id: no schedule {schedule_id!r}")
        return _schedule(row)

    def list(self, *, label: str | None = None, project: str | None = None) -> list[Schedule]:
        """Schedules not deleted, oldest first (of a label, of a project: all when None)."""
        query = sa.select(schedules).where(LIVE).order_by(schedules.c.created_at)
        if project is not None:
            query = query.where(schedules.c.project_id == project)
        if label is not None:
            query = query.where(schedules.c.label == label)
        with read(self.engine) as conn:
            return [_schedule(row) for row in conn.execute(query).mappings()]

    def due(self, now: float, limit: int = 100) -> list[Schedule]:
        """Active schedules whose next occurrence is due, the most overdue first."""
        query = (sa.select(schedules).where(LIVE, schedules.c.paused.is_(False), schedules.c.next_at <= now)
                 .order_by(schedules.c.next_at).limit(limit))
        with read(self.engine) as conn:
            return [_schedule(row) for row in conn.execute(query).mappings()]

    def advance(self, schedule: Schedule, plan: Plan, *, job_id: str | None, error: str | None) -> bool:
        """Record that `plan` was carried out (a job made, or `error` saying why none could be), moving the
        schedule to its following occurrence; a compare-and-set on the occurrence it was at (False if
        another scheduler moved it first)."""
        now = time.time()
        following = plan.following
        with self.engine.begin() as conn:
            return conn.execute(schedules.update().where(
                schedules.c.id == schedule.id, schedules.c.next_occurrence == schedule.next_occurrence, LIVE,
            ).values(
                next_occurrence=following, next_at=None if following is None else schedule.timing.due_at(following),
                runs=schedules.c.runs + (1 if job_id else 0), skipped=schedules.c.skipped + plan.skipped,
                last_run_at=now, last_job_id=job_id, last_error=error, updated_at=now,
            )).rowcount == 1

    def postpone(self, schedule: Schedule, until: float, error: str) -> None:
        """Look at a schedule again at `until` (its round failed), saying why."""
        with self.engine.begin() as conn:
            conn.execute(schedules.update().where(schedules.c.id == schedule.id, LIVE,
                                                  schedules.c.next_occurrence == schedule.next_occurrence)
                         .values(next_at=until, last_error=error[:2000], updated_at=time.time()))

    def set_paused(self, schedule_id: str, paused: bool, *, project: str | None = None) -> None:
        self._update(schedule_id, project, paused=paused)

    def delete(self, schedule_id: str, *, project: str | None = None) -> None:
        """No more jobs from it; the jobs it made stay."""
        self._update(schedule_id, project, deleted_at=time.time(), next_at=None, next_occurrence=None)

    def _update(self, schedule_id: str, project: str | None, **values: Any) -> None:
        with self.engine.begin() as conn:
            changed = conn.execute(schedules.update().where(*_key(schedule_id, project))
                                   .values(updated_at=time.time(), **values)).rowcount
        if not changed:
            raise ScheduleNotFound(f"schedule_id: no schedule {schedule_id!r}")


def _key(schedule_id: str, project: str | None) -> tuple:
    """A live schedule by its id, of `project` when one is given (another project's is as absent)."""
    mine = () if project is None else (schedules.c.project_id == project,)
    return (schedules.c.id == schedule_id, LIVE, *mine)


def _schedule(row: Any) -> Schedule:
    return Schedule(
        id=row["id"], request=row["request"], label=row["label"],
        timing=Timing(start_at=row["start_at"], run_every=row["run_every"], run_times=row["run_times"],
                      end_at=row["end_at"]),
        next_occurrence=row["next_occurrence"], next_at=row["next_at"], runs=row["runs"], skipped=row["skipped"],
        last_run_at=row["last_run_at"], last_job_id=row["last_job_id"], last_error=row["last_error"],
        paused=bool(row["paused"]), created_at=row["created_at"], updated_at=row["updated_at"],
        project_id=row["project_id"])
