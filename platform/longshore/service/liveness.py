"""Whether a worker is lost: never from a heartbeat alone.

A worker is lost when its heartbeat is stale *and* the broker shows nobody consuming
its own queue (a connected worker is alive, even when the store was unreachable for
it), and only when this process has itself reached the store for a whole lost window
(after a store outage every heartbeat looks stale). An embedded worker on this host
is lost exactly when the lock it holds for its lifetime is free.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from longshore.store.workers import WorkerRow

EMBEDDED_PREFIX = "embedded-"


def lock_path(home: Path, nodename: str) -> Path:
    """Where an embedded worker holds its lifetime lock."""
    return home / "workers" / f"{nodename}.lock"


def hold_lifetime_lock(home: Path, nodename: str):
    """Take this process's lifetime lock (an open file: released by the kernel when the process ends)."""
    path = lock_path(home, nodename)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("w")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def _lock_is_free(home: Path, nodename: str) -> bool:
    path = lock_path(home, nodename)
    try:
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        return False
    except OSError:
        return True
    path.unlink(missing_ok=True)
    return True


def lost_workers(rows: list[WorkerRow], *, consumers: dict[str, int] | None, lost_seconds: float,
                 store_up_seconds: float, home: Path, here: str, now: float | None = None) -> set[str]:
    """The names among `rows` of workers that are lost (see the module's docstring); `here` is this host."""
    now = time.time() if now is None else now
    lost = set()
    for row in rows:
        if row.name.startswith(EMBEDDED_PREFIX) and row.host == here and row.pid != os.getpid():
            if _lock_is_free(home, row.name):
                lost.add(row.name)
            continue
        if now - row.last_seen < lost_seconds or store_up_seconds < lost_seconds:
            continue
        if consumers is not None and consumers.get(row.name, 0) == 0:
            lost.add(row.name)
    return lost


def embedded_lost(home: Path, nodename: str, here: str) -> bool:
    """True when `nodename` is an embedded worker of this host whose process has ended."""
    return (nodename.startswith(EMBEDDED_PREFIX) and nodename.endswith(f"@{here}")
            and _lock_is_free(home, nodename))
