"""Retention: how long an ended job keeps its data, and its row, in the store (LONGSHORE_RETENTION_*).

The janitor deletes in batches of `BATCH_JOBS` jobs, each batch its own short transaction, so that no pass
holds a long transaction or many locks; a pass stops after `PASS_SECONDS` and the next one goes on. Jobs
that have not ended are never touched: their status is not final (and a final status never changes)."""

from __future__ import annotations

import time
from typing import Callable

SECONDS_PER_DAY = 86400
#: Jobs deleted (or erased) per transaction.
BATCH_JOBS = 500
#: A pass starts no new batch after this long.
PASS_SECONDS = 5.0


def ended_before(now: float, days: float) -> float | None:
    """Jobs that ended before this time are past a retention of `days`; None for 0 days (kept forever)."""
    return None if days <= 0 else now - days * SECONDS_PER_DAY


def drain(batch: Callable[[int], int], *, batch_jobs: int = BATCH_JOBS, budget_seconds: float = PASS_SECONDS,
          clock: Callable[[], float] = time.monotonic) -> int:
    """Call `batch(batch_jobs)`, which handles at most that many jobs and says how many it did, until one
    handles fewer (nothing is left) or the budget is spent; how many in all."""
    deadline = clock() + budget_seconds
    total = 0
    while True:
        done = batch(batch_jobs)
        total += done
        if done < batch_jobs or clock() >= deadline:
            return total
