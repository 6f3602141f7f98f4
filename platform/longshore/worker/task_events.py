"""Whether a monitor (Flower) has asked this worker for task events, as every process of the worker sees it.

While one has, every lifecycle step travels as its own message, so the monitor lists each step of each job;
while none has, a create and a start run in the task of the step before (`service.carry`), two broker
round trips fewer per job. Celery keeps the answer in the main process's event dispatcher (Flower's
`enable_events`, every 5 s); a thread there copies it into memory shared with the pool's processes.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

#: Made when this module is imported, before the pool forks: the main process writes, its children read.
_ASKED = multiprocessing.RawValue("b", 0)
#: How often the main process looks at its dispatcher: a monitor's first look misses a job at most this late.
LOOK_EVERY_SECONDS = 0.5


def asked() -> bool:
    """True while a monitor has task events on (or the worker was started with them)."""
    return bool(_ASKED.value)


def follow(consumer: Any) -> None:
    """In the worker's main process: keep `asked()` equal to whether the consumer sends task events."""
    def copy() -> None:
        while True:
            dispatcher = getattr(consumer, "event_dispatcher", None)
            # An empty `groups` means every group (a worker started with task events)
            _ASKED.value = bool(dispatcher is not None and dispatcher.enabled
                                and (not dispatcher.groups or "task" in dispatcher.groups))
            time.sleep(LOOK_EVERY_SECONDS)

    threading.Thread(target=copy, name="longshore-task-events", daemon=True).start()
