"""Delivering webhooks from the outbox: each status change POSTed as JSON, signed, at least once, in
order per job, with doubling waits between tries.

The signature: `X-Longshore-Signature: t=TIMESTAMP,v1=HEX`, HEX being HMAC-SHA256 under the installation's
LONGSHORE_WEBHOOK_SECRET of `TIMESTAMP.BODY` (the body's bytes as sent). A receiver recomputes it, compares
in constant time, and refuses a timestamp far from its clock (replays). `X-Longshore-Delivery` is the
delivery's id: the same id may arrive twice (at least once), never a different change under it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from longshore.service.runtime import Runtime
from longshore.store.webhooks import Delivery

log = logging.getLogger(__name__)

#: Deliveries tried at once (each to a different job's webhook; a job's own go one after another).
PARALLEL = 8
BATCH = 100


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for a body sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def backoff_seconds(tries: int, most: float) -> float:
    """The wait after the `tries`-th failed try: 1, 2, 4 ... seconds, at most `most`."""
    return min(2.0 ** max(tries - 1, 0), most)


def deliver_due(rt: Runtime, session: requests.Session, pool: ThreadPoolExecutor) -> int:
    """Try every delivery that is due (one per job); return how many were tried."""
    due = rt.store.webhooks.due(time.time(), BATCH)
    for future in [pool.submit(_deliver, rt, session, delivery) for delivery in due]:
        future.result()
    return len(due)


def _deliver(rt: Runtime, session: requests.Session, delivery: Delivery) -> None:
    settings = rt.settings.scheduler
    body = delivery.body.encode()
    now = int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": "Longshore-Webhook/1",
               "X-Longshore-Delivery": str(delivery.id), "X-Longshore-Job": delivery.job_id}
    status, error = None, None
    if settings.webhook_secret is None:
        error = "LONGSHORE_WEBHOOK_SECRET is not set: nothing to sign with"
    else:
        headers["X-Longshore-Signature"] = signature(settings.webhook_secret, now, body)
        try:
            response = session.post(delivery.url, data=body, headers=headers, timeout=settings.webhook_timeout_seconds,
                                    allow_redirects=False)
            status = response.status_code
            response.close()
            if 200 <= status < 300:
                rt.store.webhooks.delivered(delivery.id, status)
                return
            error = f"the receiver answered {status}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
    tries = delivery.tries + 1
    retry_at = None if tries >= settings.webhook_max_tries else time.time() + backoff_seconds(
        tries, settings.webhook_max_backoff_seconds)
    rt.store.webhooks.failed(delivery.id, error=error, status=status, retry_at=retry_at)
    log.info("webhook delivery %s for job %s failed (try %s): %s%s", delivery.id, delivery.job_id, tries, error,
             "" if retry_at else "; abandoned")
