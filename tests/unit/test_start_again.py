"""A start tried again after one whose engine call failed (`service.remake`): a container that never ran and that
the engine refuses twice in a row is made afresh, once per attempt, fenced in the store by the attempt's container
id (an engine that went down mid-start can refuse it for good: an endpoint left under its name, 403; its
containerd task left, 500 on every try). Decided from the failure's kind and the engine's status code, never its
words; no answer at all is retried as before. The store's fence itself is tested in `test_store.py`."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from longshore.errors import DockerFailure, FailureKind, TransientDockerFailure
from longshore.service import remake
from longshore.service.remake import start_again

JOB = SimpleNamespace(id="j1")
NEVER = {"Status": "created", "Pid": 0, "StartedAt": "0001-01-01T00:00:00Z"}


class Engine:
    """The engine's answers for one attempt's container, created and never started (id "old-id")."""

    def __init__(self, refusals: list[DockerFailure] = (), state: dict | None = NEVER, removable: bool = True):
        self.refusals, self.removable, self.calls = list(refusals), removable, []
        self.containers = {} if state is None else {"old-id": state}

    def inspect(self, name):
        self.calls.append("inspect")
        return next(({"Id": cid, "State": state} for cid, state in self.containers.items()), None)

    def start(self, container_id):
        self.calls.append("start")
        if container_id in self.containers and self.refusals:
            raise self.refusals.pop(0)
        return container_id in self.containers

    def state(self, container_id):
        self.calls.append("state")
        return self.containers.get(container_id)

    def clear_failed_start(self, container_id, name):
        assert container_id == "old-id"  # by its id: never a container made by another start meanwhile
        self.calls.append("clear")
        if self.removable:
            del self.containers[container_id]
        return self.removable

    def create(self, spec, on_progress):
        self.calls.append("create")
        self.containers.setdefault("new-id", {"Status": "created", "Pid": 0, "StartedAt": ""})
        return "new-id"


class Attempts:
    """The store's attempt row, as far as a remake reads and writes it (the fence: `test_store.py`)."""

    def __init__(self, container_id="old-id", remade_at=None):
        self.row = SimpleNamespace(container_id=container_id, remade_at=remade_at)

    def begin_remake(self, job_id, number, *, owner, container_id):
        if self.row.container_id != container_id or self.row.remade_at is not None:
            return False
        self.row.container_id, self.row.remade_at = None, 1.0
        return True

    def end_remake(self, job_id, number, *, owner, container_id):
        if self.row.container_id is None and self.row.remade_at is not None:
            self.row.container_id = container_id

    def current(self, job_id, number):
        being_remade = self.row.remade_at is not None and self.row.container_id is None
        return SimpleNamespace(attempt=SimpleNamespace(**vars(self.row), being_remade=being_remade))


def again(engine: Engine, attempts: Attempts, monkeypatch) -> bool:
    monkeypatch.setattr(remake, "container_spec", lambda rt, job, attempt, worker: SimpleNamespace(name="c"))
    return start_again(SimpleNamespace(engine=engine, store=SimpleNamespace(attempts=attempts)), "w1", JOB, 1,
                       on_progress=lambda: None)


def transient(status):
    return TransientDockerFailure("start", FailureKind.TRANSIENT, "start failed", status=status)


def permanent(status):
    return DockerFailure("start", FailureKind.PERMANENT, "start failed", status=status)


@pytest.mark.parametrize("refusal", [permanent(403), permanent(400), transient(500)])
def test_a_container_that_never_ran_refused_twice_is_made_afresh_once_and_its_new_id_stored(refusal, monkeypatch):
    engine, attempts = Engine([refusal, refusal]), Attempts()
    assert again(engine, attempts, monkeypatch)
    assert engine.calls == ["inspect", "start", "start", "clear", "create", "start"]
    assert (attempts.row.container_id, attempts.row.remade_at) == ("new-id", 1.0)


def test_a_refusal_once_is_the_engines_moment_and_makes_nothing(monkeypatch):
    engine = Engine([transient(500)])
    assert again(engine, Attempts(), monkeypatch)
    assert engine.calls == ["inspect", "start", "start"]


@pytest.mark.parametrize("refusal", [transient(None),  # no answer: the engine is down, the step is retried
                                     DockerFailure("start", FailureKind.CONFLICT, "start failed", status=409)])
def test_no_answer_or_a_conflict_is_not_a_reason_to_make_it_afresh(refusal, monkeypatch):
    engine = Engine([refusal, refusal])
    with pytest.raises(DockerFailure):
        again(engine, Attempts(), monkeypatch)
    assert engine.calls == ["inspect", "start"]


@pytest.mark.parametrize("state", [{"Status": "running"}, {"Status": "exited"}])
def test_a_container_that_ran_is_never_started_again(state, monkeypatch):
    engine = Engine(state=state)
    assert again(engine, Attempts(), monkeypatch)
    assert engine.calls == ["inspect"]


def test_a_created_container_the_engine_says_once_started_is_not_made_again(monkeypatch):
    engine = Engine([permanent(400)] * 2, state={"Status": "created", "Pid": 0, "StartedAt": "2026-11-29T01:00:00Z"})
    with pytest.raises(DockerFailure):
        again(engine, Attempts(), monkeypatch)
    assert "clear" not in engine.calls


def test_a_container_made_afresh_once_and_refused_again_is_not_made_a_third_time(monkeypatch):
    engine, attempts = Engine([permanent(400)] * 2), Attempts(container_id="old-id", remade_at=1.0)
    with pytest.raises(DockerFailure, match="start failed"):
        again(engine, attempts, monkeypatch)
    assert "clear" not in engine.calls and "create" not in engine.calls


def test_a_start_that_finds_another_making_it_afresh_leaves_it(monkeypatch):
    engine, attempts = Engine([transient(500)] * 2), Attempts(container_id=None, remade_at=1.0)
    assert again(engine, attempts, monkeypatch)
    assert "clear" not in engine.calls and "create" not in engine.calls


def test_a_container_another_start_set_running_as_it_is_cleared_is_kept_and_its_id_put_back(monkeypatch):
    # the removal is by id and unforced: the engine refuses it for a container that runs (409), and it is kept
    engine, attempts = Engine([transient(500)] * 2, removable=False), Attempts()
    assert again(engine, attempts, monkeypatch)
    assert "create" not in engine.calls and attempts.row.container_id == "old-id"


def test_a_start_that_finds_no_container_while_it_is_being_made_afresh_finishes_that(monkeypatch):
    # the start that began the remake stopped between the removal and the create (or is there now: the second
    # create adopts the first)
    engine, attempts = Engine(state=None), Attempts(container_id=None, remade_at=1.0)
    assert again(engine, attempts, monkeypatch)
    assert engine.calls == ["inspect", "create", "start"] and attempts.row.container_id == "new-id"


def test_a_start_that_finds_no_container_otherwise_says_it_is_gone(monkeypatch):
    engine = Engine(state=None)
    assert not again(engine, Attempts(), monkeypatch)
    assert engine.calls == ["inspect"]
