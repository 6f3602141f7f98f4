"""An exited container's wait, and then its reap, run on the watcher of its worker, not through the broker,
while no monitor asks for task events; once a monitor asks, each is a message."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from longshore.domain.outcome import Outcome
from longshore.domain.policy import Finish
from longshore.domain.status import JobStatus
from longshore.domain.steps import Step, container_name
from longshore.errors import FailureKind, TransientDockerFailure
from longshore.service import carry
from longshore.service.lifecycle import Next, Record
from longshore.worker import task_events
from longshore.worker.watcher import Watcher
from support.step_calls import Calls, recording_runtime, sent


def watcher() -> tuple[Watcher, Calls]:
    runtime, calls = recording_runtime()
    return Watcher(runtime, SimpleNamespace(name="w1", slots=2), capacity=None, stacks=["busybox"]), calls


def run_here(w: Watcher, calls: Calls, until, steps=(Step.WAIT,)) -> None:
    """Run a watcher thread for each of `steps` until `until()` holds (5 s at most), then stop them."""
    for step in steps:
        threading.Thread(target=w._run_here, args=(step,), daemon=True).start()
    deadline = time.monotonic() + 5
    while not until() and time.monotonic() < deadline:
        time.sleep(0.01)
    w.stop()


def test_a_wait_runs_here_once_however_often_it_is_sent_and_so_does_its_reap(monkeypatch):
    monkeypatch.setattr(task_events, "asked", lambda: False)
    ran = []
    monkeypatch.setitem(carry.STEPS, Step.WAIT,
                        lambda _ctx, job_id, attempt: ran.append((Step.WAIT, job_id, attempt)) or
                        Next(record=Record("busybox"), release=True, send=Step.REAP))
    monkeypatch.setitem(carry.STEPS, Step.REAP,
                        lambda _ctx, job_id, attempt: ran.append((Step.REAP, job_id, attempt)) or
                        Next(record=Record("busybox", {"reaped_at": 1.0})))
    w, calls = watcher()
    w.send(Step.WAIT, "j", 1)
    w.send(Step.WAIT, "j", 1)  # the tick sends it again while the first waits: once
    run_here(w, calls, lambda: len(ran) == 2, steps=(Step.WAIT, Step.REAP))
    assert ran == [(Step.WAIT, "j", 1), (Step.REAP, "j", 1)] and sent(calls) == []
    assert [args[2] for name, args in calls if name == "record_step"] == [Step.WAIT, Step.REAP]
    assert w._outbox.empty()  # nothing went to the broker


def test_a_reap_that_fails_here_is_sent_as_its_own_message(monkeypatch):
    monkeypatch.setattr(task_events, "asked", lambda: False)

    def failing(_ctx, job_id, attempt):
        raise TransientDockerFailure("remove", FailureKind.TRANSIENT, "engine restarting")

    monkeypatch.setitem(carry.STEPS, Step.REAP, failing)
    w, calls = watcher()
    w.send(Step.REAP, "j", 1)  # as the tick sends one for an ended attempt whose container is still there
    run_here(w, calls, lambda: sent(calls), steps=(Step.REAP,))
    assert sent(calls) == [Step.REAP] and ("count_infra_retry", ("j", 1)) in calls


@pytest.mark.parametrize("failure", [TransientDockerFailure("wait", FailureKind.TRANSIENT, "engine restarting"),
                                     KeyError("bug")])
def test_a_wait_that_fails_here_is_sent_as_its_own_message_and_counted(monkeypatch, failure):
    monkeypatch.setattr(task_events, "asked", lambda: False)

    def failing(_ctx, job_id, attempt):
        raise failure

    monkeypatch.setitem(carry.STEPS, Step.WAIT, failing)
    w, calls = watcher()
    w.send(Step.WAIT, "j", 1)
    run_here(w, calls, lambda: sent(calls))
    assert sent(calls) == [Step.WAIT] and ("count_infra_retry", ("j", 1)) in calls


def test_while_a_monitor_asks_for_task_events_and_for_a_redrive_a_wait_or_reap_is_a_message(monkeypatch):
    w, calls = watcher()
    monkeypatch.setattr(task_events, "asked", lambda: True)
    w.send(Step.WAIT, "j", 1)
    w.send(Step.REAP, "j", 4)
    assert w.send_here(Step.REAP, "j", 5)  # a wait's reap: to the dispatch thread, never published by the wait
    monkeypatch.setattr(task_events, "asked", lambda: False)
    w.send(Step.WAIT, "j", 2, redrive=True)  # a stalled attempt's step goes again the way it went
    w.send(Step.START, "j", 3)
    assert not w.send_here(Step.START, "j", 6)
    assert [w._outbox.get_nowait()[:3] for _ in range(5)] == [(Step.WAIT, "j", 1), (Step.REAP, "j", 4),
                                                              (Step.REAP, "j", 5), (Step.WAIT, "j", 2),
                                                              (Step.START, "j", 3)]
    assert w._outbox.empty() and w._here[Step.WAIT].empty() and w._here[Step.REAP].empty()


def test_an_exit_sends_its_wait_first_and_frees_its_slot_meanwhile():
    from longshore.service import supervise

    done = []
    runtime = SimpleNamespace(store=SimpleNamespace(attempts=SimpleNamespace(
        release=lambda job_id, attempt: done.append(("release", job_id, attempt)))))
    supervise.on_exit(runtime, supervise.WatchState(), lambda step, job_id, attempt, **_: done.append(
        (step, job_id, attempt)), "j", 1)
    assert done == [(Step.WAIT, "j", 1), ("release", "j", 1)]


def test_a_wait_asked_for_again_while_it_runs_is_not_run_twice_at_once(monkeypatch):
    monkeypatch.setattr(task_events, "asked", lambda: False)
    running, release, ran = threading.Event(), threading.Event(), []

    def slow_wait(_ctx, job_id, attempt):
        ran.append(job_id)
        running.set()
        release.wait(5)  # a slow engine: the tick sends the wait again meanwhile
        return Next(record=Record("busybox"), send=Step.REAP)

    monkeypatch.setitem(carry.STEPS, Step.WAIT, slow_wait)
    w, calls = watcher()
    threads = [threading.Thread(target=w._run_here, args=(Step.WAIT,), daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    w.send(Step.WAIT, "j", 1)
    assert running.wait(5)
    w.send(Step.WAIT, "j", 1)  # while it runs: dropped, not run by the second thread
    time.sleep(0.3)
    assert ran == ["j"] and w._here[Step.WAIT].empty()
    release.set()
    deadline = time.monotonic() + 5
    while (Step.WAIT, "j", 1) in w._queued and time.monotonic() < deadline:  # until it is done
        time.sleep(0.01)
    w.send(Step.WAIT, "j", 1)  # once it is done, asked again: it runs again (it finds nothing left to do)
    deadline = time.monotonic() + 5
    while len(ran) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    w.stop()
    assert ran == ["j", "j"] and w._here[Step.REAP].get_nowait() == ("j", 1, None)  # its reap, to run here


def concluding_wait(monkeypatch, *, lands: bool) -> tuple[Watcher, Calls, list]:
    """A watcher whose wait ends job j (the store's finish takes it if `lands`) and sends its reap, run here on an
    engine that records removals, over a store with no reads (one fails the reap here: it goes as a message)."""
    monkeypatch.setattr(task_events, "asked", lambda: False)
    job = SimpleNamespace(id="j", attempt=1, stack="busybox")
    succeeded = Finish(Outcome(status=JobStatus.SUCCEEDED, exit_code=0))
    monkeypatch.setitem(carry.STEPS, Step.WAIT, lambda _ctx, job_id, attempt: Next(
        record=Record("busybox"), conclude=succeeded, send=Step.REAP, job=job))
    w, calls = watcher()
    calls.finishes = lands
    removed = []
    w.rt.engine = SimpleNamespace(remove=removed.append)
    w.send(Step.WAIT, "j", 1)
    return w, calls, removed


def test_the_reap_of_an_attempt_its_wait_concluded_here_removes_the_container_without_reading_the_store(
        monkeypatch):
    w, calls, removed = concluding_wait(monkeypatch, lands=True)
    reaped = lambda: [args[2] for name, args in calls if name == "record_step"] == [Step.REAP]  # noqa: E731
    run_here(w, calls, reaped, steps=(Step.WAIT, Step.REAP))
    assert reaped() and removed == [container_name("j", 1)] and sent(calls) == []
    assert [name for name, _ in calls if name == "finish"] == ["finish"]


def test_the_reap_after_a_wait_whose_conclusion_did_not_land_reads_the_store_before_it_removes_anything(
        monkeypatch):
    # Given a wait whose attempt ended or moved on under it (the store's finish refuses the conclusion)
    w, calls, removed = concluding_wait(monkeypatch, lands=False)
    # When it runs here, and its reap after it
    run_here(w, calls, lambda: sent(calls) == [Step.REAP], steps=(Step.WAIT, Step.REAP))
    # Then the reap did not trust the job as the wait read it: it went to read the store (which fails here: it
    # went as its own message), and removed nothing
    assert sent(calls) == [Step.REAP] and removed == []


def test_stop_ends_the_idle_wait_and_reap_threads_at_once():
    # (they block on their queues, never polling: `stop` is what wakes them)
    w, _calls = watcher()
    threads = [threading.Thread(target=w._run_here, args=(step,), daemon=True)
               for step in (Step.WAIT, Step.WAIT, Step.REAP, Step.REAP)]
    for thread in threads:
        thread.start()
    w.stop()
    for thread in threads:
        thread.join(1)
    assert not any(thread.is_alive() for thread in threads)


def test_a_wait_sent_as_a_message_takes_the_starts_seconds_held_here_with_it_to_the_store(monkeypatch):
    from longshore.service.held_seconds import HeldSeconds

    runtime, calls = recording_runtime()
    held = HeldSeconds()
    w = Watcher(runtime, SimpleNamespace(name="w1", slots=2), capacity=None, stacks=["busybox"], held_seconds=held)
    held.hold(("j", 1), Step.START, 0.05)
    held.hold(("j", 2), Step.START, 0.06)
    monkeypatch.setattr(task_events, "asked", lambda: True)  # a monitor lists tasks: every wait is a message
    w.send(Step.WAIT, "j", 1)
    assert [(args[:4]) for name, args in calls if name == "record_step"] == [("j", 1, Step.START, 0.05)]
    assert held.take(("j", 2)) == {Step.START: 0.06}  # another attempt's stay held
