"""A start tried again after one whose engine call failed (`service.remake`): it works on the container only under
the attempt's lease; a container that never ran and that the engine refuses twice in a row is made afresh, once
per attempt (an engine that went down mid-start can refuse it for good: an endpoint left under its name, 403; its
containerd task left, 500 on every try). Decided from the failure's kind and the engine's status code, never its
words; no answer at all is retried as before. The store's lease itself is tested in `test_store.py`."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from longshore.domain.status import AttemptStatus, JobStatus
from longshore.errors import DockerFailure, FailureKind, TransientDockerFailure
from longshore.service import remake
from longshore.service.remake import start_again

JOB = SimpleNamespace(id="j1")
NEVER = {"Status": "created", "Pid": 0, "StartedAt": "0001-01-01T00:00:00Z"}


class Engine:
    """The engine's answers for one attempt's container, created and never started (id "old-id")."""

    def __init__(self, refusals: list[DockerFailure] = (), state: dict | None = NEVER, removable: bool = True):
        self.refusals, self.removable, self.calls = list(refusals), removable, []
        self.containers = {} if state is None else {"old-id": dict(state)}

    def inspect(self, name):
        self.calls.append("inspect")
        return next(({"Id": cid, "State": state} for cid, state in self.containers.items()), None)

    def start(self, container_id):
        self.calls.append("start")
        if container_id in self.containers and self.refusals:
            raise self.refusals.pop(0)
        if container_id in self.containers:
            self.containers[container_id]["Status"] = "running"
        return container_id in self.containers

    def state(self, container_id):
        self.calls.append("state")
        return self.containers.get(container_id)

    def remove_unstarted(self, container_id):
        assert container_id == "old-id"  # by its id: never a container made by another start meanwhile
        self.calls.append("remove")
        if self.removable:
            del self.containers[container_id]
        return self.removable

    def clear_endpoint(self, name):
        self.calls.append("clear")

    def create(self, spec, on_progress):
        self.calls.append("create")
        self.containers.setdefault("new-id", dict(NEVER))
        return "new-id"

    def remove(self, container_id):
        self.calls.append("force-remove")
        self.containers.pop(container_id, None)


class Attempts:
    """The store's attempt row and its lease, as far as a repeated start reads and writes them (`store.repairs`
    is tested in `test_store.py`)."""

    def __init__(self, container_id="old-id", remade_from=None, repair_at=None, open=True):
        self.row = SimpleNamespace(container_id=container_id, remade_from=remade_from, repair_at=repair_at)
        self.open, self.takes = open, 0

    def take(self, job_id, number, *, owner, stale_after):
        now = time.time()
        if not self.open or (self.row.repair_at is not None and self.row.repair_at >= now - stale_after):
            return None
        self.takes += 1
        self.row.repair_at = now
        return now

    def renew(self, job_id, number, *, owner, lease):
        if not self.open or self.row.repair_at != lease:
            return None
        self.row.repair_at = lease + 1
        return self.row.repair_at

    def keep(self, job_id, number, *, owner, lease, **fields):
        if not self.open or self.row.repair_at != lease:
            return False
        vars(self.row).update(fields)
        return True

    def let_go(self, job_id, number, *, owner, lease):
        if self.row.repair_at == lease:
            self.row.repair_at = None

    def current(self, job_id, number):
        status = AttemptStatus.RUNNING if self.open else AttemptStatus.CANCELLED
        return SimpleNamespace(attempt=SimpleNamespace(**vars(self.row), status=status),
                               job=SimpleNamespace(status=JobStatus.RUNNING if self.open else JobStatus.CANCELLED,
                                                   attempt=1), over=not self.open)


def again(engine: Engine, attempts: Attempts, monkeypatch) -> bool:
    monkeypatch.setattr(remake, "container_spec", lambda rt, job, attempt, worker: "spec")
    rt = SimpleNamespace(engine=engine, store=SimpleNamespace(attempts=attempts, repairs=attempts),
                         settings=SimpleNamespace(worker=SimpleNamespace(redrive_after_seconds=30)))
    return start_again(rt, "w1", JOB, 1, on_progress=lambda: None)


def transient(status):
    return TransientDockerFailure("start", FailureKind.TRANSIENT, "start failed", status=status)


def permanent(status):
    return DockerFailure("start", FailureKind.PERMANENT, "start failed", status=status)


@pytest.mark.parametrize("refusal", [permanent(403), permanent(400), transient(500)])
def test_a_container_that_never_ran_refused_twice_is_made_afresh_once_under_the_lease(refusal, monkeypatch):
    engine, attempts = Engine([refusal, refusal]), Attempts()
    assert again(engine, attempts, monkeypatch)
    assert engine.calls == ["inspect", "inspect", "start", "start", "state", "remove", "clear", "create", "start"]
    assert vars(attempts.row) == {"container_id": "new-id", "remade_from": "old-id", "repair_at": None}


def test_a_refusal_once_is_the_engines_moment_and_makes_nothing(monkeypatch):
    engine, attempts = Engine([transient(500)]), Attempts()
    assert again(engine, attempts, monkeypatch)
    assert engine.calls == ["inspect", "inspect", "start", "start"] and attempts.row.repair_at is None


@pytest.mark.parametrize("refusal", [transient(None),  # no answer: the engine is down, the step is retried
                                     DockerFailure("start", FailureKind.CONFLICT, "start failed", status=409)])
def test_no_answer_or_a_conflict_is_not_a_reason_to_make_it_afresh_and_lets_the_lease_go(refusal, monkeypatch):
    engine, attempts = Engine([refusal, refusal]), Attempts()
    with pytest.raises(DockerFailure):
        again(engine, attempts, monkeypatch)
    assert engine.calls == ["inspect", "inspect", "start"] and attempts.row.repair_at is None


@pytest.mark.parametrize("state", [{"Status": "running"}, {"Status": "exited"}])
def test_a_container_that_ran_is_never_started_again_nor_leased(state, monkeypatch):
    engine, attempts = Engine(state=state), Attempts()
    assert again(engine, attempts, monkeypatch)
    assert engine.calls == ["inspect"] and attempts.takes == 0


def test_a_created_container_the_engine_says_once_started_is_not_made_again(monkeypatch):
    engine = Engine([permanent(400)] * 2, state={**NEVER, "StartedAt": "2026-11-29T01:00:00Z"})
    attempts = Attempts()
    with pytest.raises(DockerFailure):
        again(engine, attempts, monkeypatch)
    assert "remove" not in engine.calls and attempts.row.repair_at is None


def test_a_container_made_afresh_once_and_refused_again_is_not_made_a_third_time(monkeypatch):
    engine, attempts = Engine([permanent(400)] * 2), Attempts(container_id="old-id", remade_from="older-id")
    with pytest.raises(DockerFailure, match="start failed"):
        again(engine, attempts, monkeypatch)
    assert "remove" not in engine.calls and "create" not in engine.calls and attempts.row.repair_at is None


def test_a_start_that_finds_another_at_work_on_it_leaves_it(monkeypatch):
    engine, attempts = Engine([transient(500)] * 2), Attempts(repair_at=time.time())
    assert again(engine, attempts, monkeypatch)
    assert engine.calls == ["inspect"]


def test_a_lease_its_start_left_stale_is_taken_over(monkeypatch):
    engine, attempts = Engine(), Attempts(repair_at=time.time() - 31)
    assert again(engine, attempts, monkeypatch)
    assert engine.calls == ["inspect", "inspect", "start"] and attempts.row.repair_at is None


def test_a_container_a_start_set_running_as_it_is_removed_is_kept(monkeypatch):
    # the removal is by id and unforced: the engine refuses it for a container that runs (409), and it is kept
    engine, attempts = Engine([transient(500)] * 2, removable=False), Attempts()
    engine.state = lambda container_id: engine.calls.append("state") or (
        NEVER if engine.calls.count("state") == 1 else {"Status": "running"})
    assert again(engine, attempts, monkeypatch)
    assert "create" not in engine.calls and attempts.row.container_id == "old-id" and attempts.row.repair_at is None
    assert attempts.row.remade_from is None  # it is the attempt's container: a later refusal may make it again


def test_a_remake_whose_start_stopped_after_the_removal_is_finished_by_the_next(monkeypatch):
    # the lease it held went stale and was taken (here: free); the refused container is gone, its id recorded
    engine, attempts = Engine(state=None), Attempts(remade_from="old-id")
    assert again(engine, attempts, monkeypatch)
    assert engine.calls == ["inspect", "inspect", "clear", "create", "start"]
    assert (attempts.row.container_id, attempts.row.repair_at) == ("new-id", None)


def test_a_remake_whose_start_stopped_before_the_removal_is_finished_by_the_next(monkeypatch):
    engine, attempts = Engine(), Attempts(remade_from="old-id")
    assert again(engine, attempts, monkeypatch)
    assert engine.calls == ["inspect", "inspect", "remove", "clear", "create", "start"]
    assert attempts.row.container_id == "new-id"


def test_a_container_made_afresh_by_a_start_that_stopped_before_recording_it_is_started_and_recorded(monkeypatch):
    engine, attempts = Engine(), Attempts(container_id="older-id", remade_from="older-id")
    assert again(engine, attempts, monkeypatch)
    assert engine.calls == ["inspect", "inspect", "start"] and attempts.row.container_id == "old-id"


def test_a_container_made_for_an_attempt_that_ended_meanwhile_is_removed_never_started(monkeypatch):
    engine, attempts = Engine(state=None), Attempts(remade_from="old-id")
    create = engine.create

    def cancelled_meanwhile(spec, on_progress):
        attempts.open = False
        return create(spec, on_progress)

    engine.create = cancelled_meanwhile
    assert again(engine, attempts, monkeypatch)
    assert engine.calls[-2:] == ["create", "force-remove"] and "start" not in engine.calls


def test_a_failure_after_the_removal_keeps_the_lease_so_no_wait_calls_the_attempt_lost(monkeypatch):
    engine, attempts = Engine([permanent(403)] * 2), Attempts()
    engine.create = lambda spec, on_progress: (_ for _ in ()).throw(transient(None))
    with pytest.raises(DockerFailure):
        again(engine, attempts, monkeypatch)
    assert attempts.row.repair_at is not None and attempts.row.remade_from == "old-id"


@pytest.mark.parametrize("removal", ["removed unanswered", "engine away"])
def test_a_removal_the_engine_did_not_answer_keeps_the_lease(removal, monkeypatch):
    # it may have removed the container all the same: no wait may call the attempt lost while the name is free
    engine, attempts = Engine([permanent(403)] * 2), Attempts()

    def unanswered(container_id):
        if removal == "removed unanswered":
            del engine.containers[container_id]
        raise transient(None)

    engine.remove_unstarted = unanswered
    with pytest.raises(TransientDockerFailure):
        again(engine, attempts, monkeypatch)
    assert attempts.row.repair_at is not None and attempts.row.remade_from == "old-id"


def test_a_remake_whose_lease_was_taken_over_mid_create_starts_nothing(monkeypatch):
    engine, attempts = Engine([permanent(403)] * 2), Attempts()
    create = engine.create

    def taken_over_meanwhile(spec, on_progress):
        attempts.row.repair_at = time.time() + 1  # another start took the stale lease
        return create(spec, on_progress)

    engine.create = taken_over_meanwhile
    assert again(engine, attempts, monkeypatch)
    assert engine.calls[-1] == "create" and "force-remove" not in engine.calls


def test_a_long_create_renews_the_lease(monkeypatch):
    engine, attempts = Engine([permanent(403)] * 2), Attempts()
    create = engine.create

    def pulling_again(spec, on_progress):
        held = attempts.row.repair_at
        on_progress()
        assert attempts.row.repair_at == held + 1
        return create(spec, on_progress)

    engine.create = pulling_again
    assert again(engine, attempts, monkeypatch)
    assert attempts.row.container_id == "new-id" and attempts.row.repair_at is None


def test_a_successor_that_ran_and_vanished_is_not_made_again(monkeypatch):
    # its container made afresh was recorded (and ran): gone now, the attempt is lost, never run a third time
    engine, attempts = Engine(state=None), Attempts(container_id="new-id", remade_from="old-id")
    assert not again(engine, attempts, monkeypatch)
    assert "create" not in engine.calls


def test_a_start_that_finds_no_container_and_no_remake_says_it_is_gone(monkeypatch):
    engine, attempts = Engine(state=None), Attempts()
    assert not again(engine, attempts, monkeypatch)
    assert engine.calls == ["inspect", "inspect"] and attempts.row.repair_at is None


@pytest.mark.parametrize("lease", [None, "held"])
def test_a_wait_that_finds_no_container_looks_again_after_the_store_says_no_start_is_at_work(lease):
    from longshore.domain.steps import Step
    from longshore.service.lifecycle import NOTHING, Next, StepContext, wait

    # a repair that ended between the wait's inspect and its read made the container: it is found, not lost
    job = SimpleNamespace(id="j1", attempt=1, status=JobStatus.RUNNING, timeout_seconds=60, stack="busybox")
    record = SimpleNamespace(worker="w1", status=AttemptStatus.RUNNING, repair_at=time.time() if lease else None)
    running = {"Id": "new-id", "State": {"Status": "running", "Running": True,
                                         "StartedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
    answers = [None, running]
    engine = SimpleNamespace(inspect=lambda name: answers.pop(0))
    attempts = SimpleNamespace(current=lambda job_id, number: SimpleNamespace(job=job, attempt=record))
    rt = SimpleNamespace(engine=engine, store=SimpleNamespace(attempts=attempts), settings=SimpleNamespace(jobs=None))
    after = wait(StepContext(rt, SimpleNamespace(name="w1")), "j1", 1)
    assert after == (Next(send=Step.START) if lease else NOTHING)
