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
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import requests

from longshore.domain.webhooks import refused_address
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


def deliver_due(rt: Runtime, pool: ThreadPoolExecutor, in_flight: set[int]) -> int:
    """Start every delivery that is due (one per job) and not already under way; return how many were
    started. It does not wait for them: a slow receiver delays only its own job's changes."""
    if rt.settings.scheduler.webhook_secret is None:
        return 0  # nothing to sign with here: leave them for a scheduler that has the key
    started = 0
    for delivery in rt.store.webhooks.due(time.time(), BATCH):
        if delivery.id in in_flight or len(in_flight) >= PARALLEL * 4:
            continue
        in_flight.add(delivery.id)
        pool.submit(_deliver, rt, delivery).add_done_callback(lambda _f, done=delivery.id: in_flight.discard(done))
        started += 1
    return started


def _deliver(rt: Runtime, delivery: Delivery) -> None:
    settings = rt.settings.scheduler
    body = delivery.body.encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Longshore-Webhook/1",
               "X-Longshore-Delivery": str(delivery.id), "X-Longshore-Job": delivery.job_id,
               "X-Longshore-Signature": signature(settings.webhook_secret, int(time.time()), body)}
    status = None
    try:
        url, host = _pinned(delivery.url, settings.webhook_allow_networks)
        if host:
            headers["Host"] = host
        # A fresh connection each time (no cookies kept); the body of the answer is never read.
        with requests.post(url, data=body, headers=headers, timeout=settings.webhook_timeout_seconds,
                           allow_redirects=False, stream=True) as response:
            status = response.status_code
        if 200 <= status < 300:
            rt.store.webhooks.delivered(delivery.id, status)
            return
        error, permanent = f"the receiver answered {status}", False
    except Refused as exc:
        error, permanent = str(exc), True
    except (requests.RequestException, OSError, ValueError) as exc:
        error, permanent = f"{type(exc).__name__}: {_without_query(str(exc))[:300]}", False
    try:
        _failed(rt, delivery, error, status, permanent)
    except Exception:  # the store is away: the delivery stays pending and is tried again
        log.warning("could not record webhook delivery %s", delivery.id, exc_info=True)


def _failed(rt: Runtime, delivery: Delivery, error: str, status: int | None, permanent: bool) -> None:
    settings = rt.settings.scheduler
    tries = delivery.tries + 1
    retry_at = None if permanent or tries >= settings.webhook_max_tries else time.time() + backoff_seconds(
        tries, settings.webhook_max_backoff_seconds)
    rt.store.webhooks.failed(delivery.id, error=error, status=status, retry_at=retry_at)
    log.info("webhook delivery %s for job %s failed (try %s): %s%s", delivery.id, delivery.job_id, tries, error,
             "" if retry_at else "; abandoned")


class Refused(Exception):
    """The webhook's address is one Longshore never delivers to."""


def _pinned(url: str, allowed) -> tuple[str, str | None]:
    """The URL to connect to, and the Host header to send: the host is resolved once and every address
    checked (`domain.webhooks.refused_address`); a plain-http URL is sent to the checked address itself,
    so a second lookup cannot lead elsewhere."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)}
    bad = sorted(a for a in addresses if refused_address(a, allowed))
    if bad:
        raise Refused(f"refused: {parts.hostname} resolves to {bad[0]}, a loopback or private address "
                      "(LONGSHORE_WEBHOOK_ALLOW_NETWORKS allows some)")
    if parts.scheme != "http":
        return url, None  # https: the certificate names the host; connecting by name keeps it verifiable
    address = sorted(addresses)[0]
    shown = f"[{address}]" if ":" in address else address
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    return urlunsplit(parts._replace(netloc=netloc)), parts.netloc.rpartition("@")[2]


def _without_query(text: str) -> str:
    """An error's words without URL queries (a receiver's token may be in one)."""
    return re.sub(r"\?[^\s)'\"]*", "?…", text)
