"""Step durations a worker process holds until the attempt's next write, rather than writing each on its own.

A start's record is its duration alone: nothing later depends on it being written first (the job was marked
running, fenced, before its container started). In the worker's own process, whose watcher runs the wait
here, the start's seconds ride with the wait's write (the finishing one, as a rule): one store write fewer per
job. Lost if the worker dies before that write (the attempt then shows no start time), and held at most
`KEPT` attempts: a wait that runs elsewhere (sent as a message while a monitor lists tasks) never takes them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from longshore.domain.steps import Step, timed_step

#: Attempts whose seconds are held at most: the oldest are forgotten past it.
KEPT = 4096

Key = tuple[str, int]


class HeldSeconds:
    """Durations of steps by attempt, held for the attempt's next write (thread-safe)."""

    def __init__(self, kept: int = KEPT):
        self._kept = kept
        self._held: OrderedDict[Key, dict[Step, float]] = OrderedDict()
        self._lock = threading.Lock()

    def hold(self, key: Key, step: Step, seconds: float) -> None:
        """Keep `step`'s seconds for the attempt's next write."""
        step = timed_step(step)
        with self._lock:
            self._held.setdefault(key, {})[step] = seconds
            self._held.move_to_end(key)
            while len(self._held) > self._kept:
                self._held.popitem(last=False)

    def take(self, key: Key) -> dict[Step, float]:
        """The seconds held for the attempt, no longer held (empty if none)."""
        with self._lock:
            return self._held.pop(key, {})

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)
