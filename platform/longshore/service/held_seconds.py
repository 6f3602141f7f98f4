"""Step durations a worker process holds until the attempt's next write, rather than writing each on its own.

A start's record is its duration alone: no step, guard or watcher's judgement depends on it being written
first (the job was marked running, fenced, before its container started). In the worker's own process, whose
watcher runs the wait here, the start's seconds ride with the wait's write (the finishing one, as a rule): one
store write fewer per job. Until then the attempt shows no start time (its `started_at` is there). Where the
wait goes elsewhere (a message: it failed here, or a monitor lists tasks) and when the worker stops, they are
written on their own (`service.carry.write_held`); a write that fails holds them again. Lost if the worker dies
first, or past `KEPT` attempts held.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from typing import Iterator

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

    def take_all(self) -> dict[Key, dict[Step, float]]:
        """Every attempt's seconds, no longer held."""
        with self._lock:
            held, self._held = dict(self._held), OrderedDict()
        return held

    def restore(self, key: Key, seconds: dict[Step, float]) -> None:
        """Hold again what a write that failed took; seconds held for the attempt since then win."""
        if not seconds:
            return
        with self._lock:
            self._held[key] = {**seconds, **self._held.get(key, {})}
            while len(self._held) > self._kept:
                self._held.popitem(last=False)

    @contextlib.contextmanager
    def for_write(self, key: Key) -> Iterator[dict[Step, float]]:
        """The seconds held for the attempt, for a write that carries them: held again if it raises."""
        seconds = self.take(key)
        try:
            yield seconds
        except BaseException:
            self.restore(key, seconds)
            raise

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)
