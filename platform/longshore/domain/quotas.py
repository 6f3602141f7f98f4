"""Per-project quotas: how many jobs a project may have waiting and holding slots, and how fast its API
requests may come. A project's own value (None: the installation's, from settings) wins; 0 is no limit.

Jobs waiting over the queued quota are refused at submit (the API answers 429 with Retry-After), counted
in the same transaction as the insert, with the project's row locked, so concurrent submits cannot
overshoot. The running quota is a gate at claim time, like a code's max concurrency: the job waits
queued and is looked at again shortly. The request rate is a token bucket per project in each API
process (a deployment with N API replicas allows N times the rate)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from longshore.errors import InvalidJob

#: How long a client is told to wait when its project's queue is full (jobs take time to drain).
QUEUED_RETRY_AFTER_SECONDS = 5
#: A bucket holds this many seconds of the rate: a burst of twice the rate passes.
BURST_SECONDS = 2
MAX_REQUESTS_PER_SECOND = 1e6


@dataclass(frozen=True)
class Quotas:
    """A project's limits; None takes the installation's (see `effective`)."""

    max_queued_jobs: int | None = None
    max_running_jobs: int | None = None
    requests_per_second: float | None = None

    def effective(self, defaults: "Quotas") -> "Quotas":
        """These limits, each unset one taken from `defaults`."""
        return Quotas(*(mine if mine is not None else theirs for mine, theirs in (
            (self.max_queued_jobs, defaults.max_queued_jobs), (self.max_running_jobs, defaults.max_running_jobs),
            (self.requests_per_second, defaults.requests_per_second))))


def check_quotas(max_queued_jobs: object = None, max_running_jobs: object = None,
                 requests_per_second: object = None) -> Quotas:
    """Quotas as given (None: the installation's), or InvalidJob naming the field."""
    for name, value in (("max_queued_jobs", max_queued_jobs), ("max_running_jobs", max_running_jobs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidJob(f"{name}: must be a whole number, 0 (no limit) or more")
    rate = requests_per_second
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate)
                             or not 0 <= rate <= MAX_REQUESTS_PER_SECOND):
        raise InvalidJob(f"requests_per_second: must be 0 (no limit) to {MAX_REQUESTS_PER_SECOND:g}")
    return Quotas(max_queued_jobs, max_running_jobs, None if rate is None else float(rate))


class RequestRate:
    """Token buckets, one per project: `take` answers 0 when a request may go, else the seconds to wait."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # project -> (tokens, when counted)
        self.lock = threading.Lock()

    def take(self, project: str, rate: float) -> float:
        if rate <= 0:
            return 0.0
        capacity = max(1.0, rate * BURST_SECONDS)
        with self.lock:
            now = self.clock()
            tokens, then = self.buckets.get(project, (capacity, now))
            tokens = min(capacity, tokens + (now - then) * rate)
            if tokens >= 1:
                self.buckets[project] = (tokens - 1, now)
                return 0.0
            self.buckets[project] = (tokens, now)
            return (1 - tokens) / rate
