"""A create or start that follows a step runs in the task of the step before, not through the broker; one
that fails there is sent as its own message (where its retry policy takes over), never lost."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from longshore.domain.steps import Step
from longshore.errors import FailureKind, TransientDockerFailure
from longshore.service import carry
from longshore.service.lifecycle import NOTHING, Next, Record, StepContext
from support.step_calls import Calls, recording_runtime, sent


def context() -> tuple[StepContext, Calls]:
    runtime, calls = recording_runtime()
    return StepContext(runtime, SimpleNamespace(name="w1")), calls


def test_a_pulls_create_and_the_creates_start_run_here_and_only_the_wait_side_goes_by_message(monkeypatch):
    ctx, calls = context()
    ran = []

    def step(name, after):
        return lambda _ctx, job_id, attempt: ran.append(name) or after

    monkeypatch.setitem(carry.STEPS, Step.CREATE, step("create", Next(record=Record("busybox"), send=Step.START)))
    monkeypatch.setitem(carry.STEPS, Step.START, step("start", Next(record=Record("busybox"))))
    following = carry.carry_out(ctx, Step.PULL, "j", 1, Next(record=Record("busybox"), send=Step.CREATE), 0.01,
                                chain=True)
    assert following is Step.CREATE and sent(calls) == []
    carry.run_here(ctx, following, "j", 1)
    assert ran == ["create", "start"] and sent(calls) == []
    # each kept its own record
    assert [args[2] for name, args in calls if name == "record_step"] == [Step.PULL, Step.CREATE, Step.START]
    # a reap or a wait is still a message of its own, so is a start a wait sends (its start was lost: a
    # redelivery of it must be counted), and so is every step while a monitor lists them
    assert carry.carry_out(ctx, Step.WAIT, "j", 1, Next(send=Step.REAP), 0.01, chain=True) is None
    assert carry.carry_out(ctx, Step.WAIT, "j", 1, Next(send=Step.START), 0.01, chain=True) is None
    assert carry.carry_out(ctx, Step.PULL, "j", 1, Next(send=Step.CREATE), 0.01) is None
    assert sent(calls) == [Step.REAP, Step.START, Step.CREATE]


@pytest.mark.parametrize("failure", [TransientDockerFailure("start", FailureKind.TRANSIENT, "the engine is restarting"), KeyError("bug")])
def test_a_step_that_fails_here_is_sent_as_its_own_message(monkeypatch, failure):
    ctx, calls = context()

    def failing(_ctx, job_id, attempt):
        raise failure

    monkeypatch.setitem(carry.STEPS, Step.CREATE, lambda *_: Next(record=Record("busybox"), send=Step.START))
    monkeypatch.setitem(carry.STEPS, Step.START, failing)
    carry.run_here(ctx, Step.CREATE, "j", 1)
    assert sent(calls) == [Step.START]
    assert ("step_retried", (Step.START,)) in calls and ("count_infra_retry", ("j", 1)) in calls


def test_nothing_follows_a_record_the_store_refused(monkeypatch):
    ctx, calls = context()
    ctx.runtime.store.attempts = SimpleNamespace(record_step=lambda *args, **kwargs: False)
    assert carry.carry_out(ctx, Step.PULL, "j", 1, Next(record=Record("busybox"), send=Step.CREATE), 0.01) is None
    assert carry.carry_out(ctx, Step.PULL, "j", 1, NOTHING, 0.01) is None
    assert sent(calls) == []


def test_a_step_run_here_has_the_job_the_step_before_read_and_a_step_sent_reads_its_own(monkeypatch):
    ctx, calls = context()
    job = SimpleNamespace(id="j", attempt=1)
    seen = {}

    def step(name, after):
        def run(here, job_id, attempt):
            seen[name] = here.job
            return after
        return run

    monkeypatch.setitem(carry.STEPS, Step.CREATE, step("create", Next(record=Record("busybox"), send=Step.START,
                                                                      job=job)))
    monkeypatch.setitem(carry.STEPS, Step.START, step("start", Next(record=Record("busybox"))))
    carry.run_here(ctx, Step.CREATE, "j", 1, job=job)
    assert seen == {"create": job, "start": job}
    # the wait the watcher runs here has none: it reads the job itself
    monkeypatch.setitem(carry.STEPS, Step.WAIT, step("wait", NOTHING))
    carry.run_here(ctx, Step.WAIT, "j", 1)
    assert seen["wait"] is None


@pytest.mark.parametrize("finishes", [True, False])
def test_a_wait_that_ends_the_job_is_recorded_in_the_finishing_write(finishes):
    from longshore.domain.outcome import Outcome
    from longshore.domain.policy import Finish
    from longshore.domain.status import JobStatus

    ctx, calls = context()
    calls.finishes = finishes
    ended = Next(record=Record("busybox"), release=True, conclude=Finish(Outcome(status=JobStatus.SUCCEEDED)),
                 send=Step.REAP)
    carry.carry_out(ctx, Step.WAIT, "j", 1, ended, 0.02)
    names = [name for name, _ in calls]
    if finishes:  # one write: the finish, with the wait's seconds
        assert names == ["finish", "job_finished", "step_done", "send_step"]
        assert calls[0][1][-1] == (Step.WAIT, 0.02)
    else:  # the job had ended or moved on: the wait is recorded (fenced) and its slot released as before
        assert names[:3] == ["finish", "record_step", "step_done"] and names[-1] == "send_step"
    assert sent(calls) == [Step.REAP]


def test_a_step_whose_job_moved_on_since_it_was_read_sends_the_next_step_which_reads_it_itself():
    ctx, calls = context()
    # the store refuses the record while the job must be current (cancelled, requeued), not the owner's fence
    ctx.runtime.store.attempts = SimpleNamespace(
        record_step=lambda *args, job_current=False, **kwargs: calls.append(("record_step", job_current)) or
        not job_current)
    following = carry.carry_out(ctx, Step.CREATE, "j", 1, Next(record=Record("busybox"), send=Step.START),
                                0.01, chain=True)
    assert following is None and sent(calls) == [Step.START]
    assert [args for name, args in calls if name == "record_step"] == [True, False]


def _written(calls, name: str) -> list[dict]:
    """The keyword arguments of each call of `name`, in order."""
    return [kwargs for (called, _), kwargs in zip(calls, calls.keywords) if called == name]


def _worker_process_context():
    from longshore.service.held_seconds import HeldSeconds

    ctx, calls = context()
    return dataclasses.replace(ctx, held_seconds=HeldSeconds()), calls


@pytest.mark.parametrize("finishes", [True, False])
def test_in_the_workers_own_process_a_starts_seconds_ride_with_the_attempts_next_write(finishes):
    from longshore.domain.outcome import Outcome
    from longshore.domain.policy import Finish
    from longshore.domain.status import JobStatus

    here, calls = _worker_process_context()
    calls.finishes = finishes
    # Given a start carried out by the worker's own process (whose watcher runs the waits)
    carry.carry_out(here, Step.START, "j", 1, Next(record=Record("busybox")), 0.05, chain=True)
    # Then no write of its own, but its duration is counted
    assert [name for name, _ in calls] == ["step_done"]
    # When the wait that ends the job writes, the start's seconds are in that write, and held no longer
    ended = Next(record=Record("busybox"), release=True, conclude=Finish(Outcome(status=JobStatus.SUCCEEDED)))
    carry.carry_out(here, Step.WAIT, "j", 1, ended, 0.02)
    assert _written(calls, "finish")[0]["held"] == {Step.START: 0.05}
    if not finishes:  # the job had ended or moved on: the wait's own record (fenced) carries them instead
        assert _written(calls, "record_step")[0]["start_seconds"] == 0.05
    assert len(here.held_seconds) == 0


def test_held_seconds_wait_for_a_write_and_are_held_again_if_it_fails():
    here, calls = _worker_process_context()
    carry.carry_out(here, Step.START, "j", 2, Next(record=Record("busybox")), 0.05)
    # A wait that writes nothing (its container still runs) leaves them held
    carry.carry_out(here, Step.WAIT, "j", 2, NOTHING, 0.01)
    assert len(here.held_seconds) == 1
    # A write that fails (the store away) holds them again
    failing = dataclasses.replace(here, runtime=SimpleNamespace(
        store=SimpleNamespace(attempts=SimpleNamespace(record_step=lambda *a, **k: 1 / 0)), events=calls))
    with pytest.raises(ZeroDivisionError):
        carry.carry_out(failing, Step.REAP, "j", 2, Next(record=Record("busybox", {"reaped_at": 1.0})), 0.01)
    assert here.held_seconds.take(("j", 2)) == {Step.START: 0.05}


def test_a_start_with_more_than_its_duration_to_write_is_not_held():
    here, calls = _worker_process_context()
    for after in (Next(record=Record("busybox"), release=True), Next(record=Record("busybox", {"remade_from": "c"}))):
        carry.carry_out(here, Step.START, "j", 1, after, 0.05)
    assert [args[2] for name, args in calls if name == "record_step"] == [Step.START, Step.START]
    assert len(here.held_seconds) == 0


def test_held_seconds_whose_wait_runs_elsewhere_are_written_on_their_own(monkeypatch):
    here, calls = _worker_process_context()
    carry.carry_out(here, Step.START, "j", 1, Next(record=Record("busybox")), 0.05)
    carry.carry_out(here, Step.START, "j", 2, Next(record=Record("busybox")), 0.06)

    def failing(_ctx, job_id, attempt):
        raise TransientDockerFailure("wait", FailureKind.TRANSIENT, "the engine is restarting")

    monkeypatch.setitem(carry.STEPS, Step.WAIT, failing)
    # A wait that fails here goes as a message (to any process): the start's record is written first
    carry.run_here(here, Step.WAIT, "j", 1)
    assert [(args[2], args[3]) for name, args in calls if name == "record_step"] == [(Step.START, 0.05)]
    # And a worker that stops writes whatever it still holds
    carry.write_held(here)
    assert [(args[1], args[3]) for name, args in calls if name == "record_step"][-1] == (2, 0.06)
    assert len(here.held_seconds) == 0
def test_a_start_run_as_a_celery_task_writes_its_own_record():
    ctx, calls = context()  # a task's context holds nothing: its wait may run in another process
    carry.carry_out(ctx, Step.START, "j", 1, Next(record=Record("busybox")), 0.1)
    assert [args[2] for name, args in calls if name == "record_step"] == [Step.START]


def test_held_seconds_are_bounded():
    from longshore.service.held_seconds import HeldSeconds

    held = HeldSeconds(kept=2)
    for attempt in range(1, 4):
        held.hold(("j", attempt), Step.START, 0.1)
    assert len(held) == 2 and held.take(("j", 1)) == {} and held.take(("j", 3)) == {Step.START: 0.1}
