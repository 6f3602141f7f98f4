"""Whether a monitor asked for task events, as the worker's main process sees it, reaches its pool's
processes: while one has, every lifecycle step travels as a message the monitor can list."""

from __future__ import annotations

import multiprocessing
import time
from types import SimpleNamespace

from longshore.worker import task_events


def _until(expected: bool) -> bool:
    deadline = time.monotonic() + 5 * task_events.LOOK_EVERY_SECONDS
    while task_events.asked() != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return task_events.asked() == expected


def test_the_flag_follows_the_dispatcher_into_processes_forked_before_it_changed():
    dispatcher = SimpleNamespace(enabled=True, groups={"worker"})  # a worker without task events
    with multiprocessing.get_context("fork").Pool(1) as pool:  # forked before the flag changes, as a pool is
        task_events.follow(SimpleNamespace(event_dispatcher=dispatcher))
        assert _until(False) and not pool.apply(task_events.asked)
        dispatcher.groups.add("task")  # Flower's enable_events
        assert _until(True) and pool.apply(task_events.asked)
        dispatcher.groups.discard("task")  # disable_events
        assert _until(False) and not pool.apply(task_events.asked)
        dispatcher.groups = set()  # started with --task-events: every group
        assert _until(True) and pool.apply(task_events.asked)
    dispatcher.enabled = False  # this process's flag back as it was: its follower thread goes on
    assert _until(False)
