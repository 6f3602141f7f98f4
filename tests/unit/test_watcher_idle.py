"""A watcher with nothing owned, taken or on its engine looks over its worker IDLE_TICKS times less often (each
look is a store query and an engine list); work taken wakes it to the busy interval at once."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from longshore.service import supervise
from longshore.worker.admission import Capacity
from longshore.engine.container import LABEL_ATTEMPT, LABEL_JOB, LABEL_TIMEOUT, LABEL_WORKER
from longshore.worker.watcher import _WAKE, IDLE_TICKS, Watcher
from support.helpers import wait_until

INTERVAL = 0.2  # idle: every 2 s


def test_an_idle_watcher_looks_less_often_and_work_taken_wakes_it(monkeypatch):
    looks, owned = [], set()

    def tick(_rt, _me, state, _send):
        looks.append(time.monotonic())
        state.owned = set(owned)

    monkeypatch.setattr(supervise, "tick", tick)
    rt = SimpleNamespace(settings=SimpleNamespace(worker=SimpleNamespace(supervise_interval_seconds=INTERVAL)),
                         store=SimpleNamespace(attempts=SimpleNamespace(unclaimed=lambda keys, forwarded_to: set())))
    w = Watcher(rt, SimpleNamespace(name="w1", slots=2), capacity=Capacity(2), stacks=["busybox"])
    thread = threading.Thread(target=w._watch, daemon=True)
    thread.start()
    try:
        # Given a watcher that found nothing at its first look: the next is IDLE_TICKS intervals away
        wait_until(lambda: looks, timeout=2, what="the first look")
        time.sleep(IDLE_TICKS * INTERVAL * 0.3)
        assert len(looks) == 1
        # When admission takes a job, then the watcher looks at once, and every interval while it owns it
        owned.add(("j", 1))
        w.wake()
        wait_until(lambda: len(looks) >= 2, timeout=IDLE_TICKS * INTERVAL * 0.5, what="a look soon after the wake")
        time.sleep(INTERVAL * 6)
        assert len(looks) >= 4
    finally:
        w.stop()
        thread.join(2)
    assert not thread.is_alive()


def test_a_container_of_the_worker_starting_wakes_its_watcher():
    # (a pull task may have claimed it without admission: a start after a restart, from the worker's own queue)
    w = Watcher(SimpleNamespace(), SimpleNamespace(name="w1", slots=2), capacity=Capacity(2), stacks=["busybox"])
    w._on_event({"Action": "start", "id": "c1", "timeNano": 1, "Actor": {"Attributes": {
        LABEL_JOB: "j", LABEL_ATTEMPT: "1", LABEL_WORKER: "w1", LABEL_TIMEOUT: "60"}}})
    assert w._exits.get_nowait() == _WAKE
