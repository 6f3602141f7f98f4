"""The webhook outbox: one row per status change of a job that names a webhook, written in the same
transaction as the change (so none is lost, and none is told of a change that did not happen), delivered
in order per job: a job's next row waits until the one before it is delivered or abandoned."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.store.database import read
from longshore.store.schema import webhook_deliveries

PENDING = sa.and_(webhook_deliveries.c.delivered_at.is_(None), webhook_deliveries.c.abandoned_at.is_(None))
#: A job's deliveries in order (built once: every status read of the API asks it).
_OF_JOB = sa.select(webhook_deliveries).where(webhook_deliveries.c.job_id == sa.bindparam("job_id")).order_by(
    webhook_deliveries.c.id)


@dataclass(frozen=True)
class Delivery:
    """One status change to tell a job's webhook, and how its delivery went so far."""

    id: int
    job_id: str
    url: str
    body: str
    tries: int
    next_at: float
    last_error: str | None
    last_status: int | None
    delivered_at: float | None
    abandoned_at: float | None
    created_at: float

    @property
    def state(self) -> str:
        """delivered, abandoned, or pending."""
        return "delivered" if self.delivered_at else "abandoned" if self.abandoned_at else "pending"


def record_change(conn: sa.Connection, job_id: str, url: str, event: dict[str, Any], now: float) -> None:
    """Add a status change to the outbox, inside the transaction that made it."""
    conn.execute(webhook_deliveries.insert().values(
        job_id=job_id, url=url, body=json.dumps(event, separators=(",", ":")), tries=0, next_at=now,
        created_at=now))


class WebhookOutbox:
    """Reads and writes of the outbox, for the deliverer and for `status`."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def due(self, now: float, limit: int) -> list[Delivery]:
        """The deliveries to try now: for each job, its oldest pending one, if its time has come."""
        earlier = webhook_deliveries.alias("earlier")
        query = (sa.select(webhook_deliveries)
                 .where(PENDING, webhook_deliveries.c.next_at <= now,
                        ~sa.exists().where(earlier.c.job_id == webhook_deliveries.c.job_id,
                                           earlier.c.id < webhook_deliveries.c.id,
                                           earlier.c.delivered_at.is_(None), earlier.c.abandoned_at.is_(None)))
                 .order_by(webhook_deliveries.c.id).limit(limit))
        with read(self.engine) as conn:
            return [Delivery(**row) for row in conn.execute(query).mappings()]

    def delivered(self, delivery_id: int, status: int) -> None:
        """The receiver answered 2xx."""
        self._update(delivery_id, tries=webhook_deliveries.c.tries + 1, last_status=status, last_error=None,
                     delivered_at=time.time())

    def failed(self, delivery_id: int, *, error: str, status: int | None, retry_at: float | None) -> None:
        """A try failed: try again at `retry_at`, or (None) give up on it."""
        values: dict[str, Any] = {"tries": webhook_deliveries.c.tries + 1, "last_error": error[:500],
                                  "last_status": status}
        if retry_at is None:
            values["abandoned_at"] = time.time()
        else:
            values["next_at"] = retry_at
        self._update(delivery_id, **values)

    def of_job(self, job_id: str) -> list[Delivery]:
        """A job's deliveries, in order."""
        with read(self.engine) as conn:
            rows = conn.execute(_OF_JOB, {"job_id": job_id}).mappings().all()
        return [Delivery(**row) for row in rows]

    def _update(self, delivery_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(webhook_deliveries.update().where(webhook_deliveries.c.id == delivery_id, PENDING)
                         .values(**values))
