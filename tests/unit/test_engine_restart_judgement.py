"""Whose fault a signal death is: the engine's if its outage was recorded around it, the job's once an outage
could have been seen and none was, and not judged yet within the outage margin of now (a wait runs the
instant a container exits, before the heartbeat could see the engine go). And the engine client is made
once per process, however many of the watcher's threads make their first call at once."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from longshore.domain.outcome import Outcome
from longshore.domain.policy import Policies
from longshore.domain.status import JobStatus
from longshore.engine import calls as engine_calls
from longshore.service.lifecycle import StepContext, _engine_restarted

MARGIN = 5.0


def context(engine_was_down: bool) -> tuple[StepContext, list]:
    asked = []

    def was_down(name, at, *, margin_seconds):
        asked.append((name, at, margin_seconds))
        return engine_was_down

    policies = Policies(steps={}, max_redeliveries=3, engine_outage_margin_seconds=MARGIN, max_requeues=3)
    runtime = SimpleNamespace(settings=SimpleNamespace(policies=policies),
                              store=SimpleNamespace(workers=SimpleNamespace(engine_was_down=was_down)))
    return StepContext(runtime, SimpleNamespace(name="w1")), asked


def died(exit_code: int, seconds_ago: float, status: JobStatus = JobStatus.FAILED) -> Outcome:
    return Outcome(status=status, exit_code=exit_code, finished_at=time.time() - seconds_ago)


@pytest.mark.parametrize("exit_code", [137, 143, 255])
def test_a_signal_death_just_now_with_no_outage_recorded_is_judged_later(exit_code):
    ctx, asked = context(engine_was_down=False)
    assert _engine_restarted(ctx, died(exit_code, seconds_ago=0.5)) is None
    assert asked and asked[0][0] == "w1" and asked[0][2] == MARGIN


@pytest.mark.parametrize("exit_code", [137, 143, 255])
def test_a_signal_death_older_than_the_margin_with_no_outage_is_the_jobs_own(exit_code):
    ctx, _ = context(engine_was_down=False)
    assert _engine_restarted(ctx, died(exit_code, seconds_ago=MARGIN + 1)) is False


@pytest.mark.parametrize("seconds_ago", [0.5, MARGIN + 1])
def test_a_signal_death_during_a_recorded_outage_is_the_engines_at_once(seconds_ago):
    ctx, _ = context(engine_was_down=True)
    assert _engine_restarted(ctx, died(143, seconds_ago=seconds_ago)) is True


@pytest.mark.parametrize("outcome", [died(1, 0.5), died(0, 0.5, JobStatus.SUCCEEDED),
                                     Outcome(status=JobStatus.FAILED, exit_code=137)])  # no finish time
def test_other_endings_are_judged_at_once_without_asking_the_store(outcome):
    ctx, asked = context(engine_was_down=True)
    assert _engine_restarted(ctx, outcome) is False and asked == []


def test_the_engine_client_is_made_once_however_many_threads_ask_at_once(monkeypatch):
    made = []

    def slow_connect(*args, **kwargs):
        made.append(args)
        time.sleep(0.2)  # negotiating the API version: every thread arrives meanwhile
        return object()

    monkeypatch.setattr(engine_calls, "connect", slow_connect)
    calls = engine_calls.EngineCalls("unix:///nowhere.sock", timeout_seconds=1)
    clients = []
    threads = [threading.Thread(target=lambda: clients.append(calls._api)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(made) == 1 and len(clients) == 8 and len({id(client) for client in clients}) == 1
