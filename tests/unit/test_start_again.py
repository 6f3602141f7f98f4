"""A start tried again after one whose engine call failed: when the engine answers it with an error and the
container still never ran, the container is made afresh (an engine that went down mid-start can refuse it for
good: an endpoint left under its name, 403; its containerd task left, 500 on every try). Decided from the
failure's kind and the engine's status code, never its words; no answer at all is retried as before."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from longshore.errors import DockerFailure, FailureKind, TransientDockerFailure
from longshore.service import lifecycle
from longshore.service.lifecycle import StepContext, _start_again

JOB = SimpleNamespace(id="j1")


class Engine:
    """The engine's answers, in order, for one container that was created and never started."""

    def __init__(self, refusal: DockerFailure | None, state_after: str | None = "created"):
        self.refusal, self.state_after, self.calls = refusal, state_after, []

    def start(self, name):
        self.calls.append("start")
        if self.refusal is not None and self.calls.count("start") == 1:
            raise self.refusal
        return True

    def state(self, name):
        self.calls.append("state")
        return None if self.state_after is None else {"Status": self.state_after}

    def clear_failed_start(self, name):
        self.calls.append("clear")

    def create(self, spec, on_progress):
        self.calls.append("create")
        return "new-id"


def context(engine: Engine, monkeypatch) -> StepContext:
    monkeypatch.setattr(lifecycle, "container_spec", lambda rt, job, attempt, worker: "spec")
    return StepContext(SimpleNamespace(engine=engine), SimpleNamespace(name="w1"))


def transient(status):
    return TransientDockerFailure("start", FailureKind.TRANSIENT, "start failed", status=status)


def permanent(status):
    return DockerFailure("start", FailureKind.PERMANENT, "start failed", status=status)


@pytest.mark.parametrize("refusal", [permanent(403), permanent(400), transient(500)])
def test_an_answered_refusal_of_a_container_that_never_ran_makes_it_afresh(refusal, monkeypatch):
    engine = Engine(refusal)
    assert _start_again(context(engine, monkeypatch), JOB, 1) == (True, {"container_id": "new-id"})
    assert engine.calls == ["start", "state", "clear", "create", "start"]


@pytest.mark.parametrize("refusal", [transient(None),  # no answer: the engine is down, the step is retried
                                     DockerFailure("start", FailureKind.CONFLICT, "start failed", status=409)])
def test_no_answer_or_a_conflict_is_not_a_reason_to_make_it_afresh(refusal, monkeypatch):
    engine = Engine(refusal)
    with pytest.raises(DockerFailure):
        _start_again(context(engine, monkeypatch), JOB, 1)
    assert engine.calls == ["start"]


@pytest.mark.parametrize("state_after,exists", [("running", True), ("exited", True), (None, False)])
def test_a_container_that_started_or_went_meanwhile_is_never_made_again(state_after, exists, monkeypatch):
    # a duplicate of the step started it after all (it may have run): it is left as it is
    engine = Engine(transient(500), state_after)
    assert _start_again(context(engine, monkeypatch), JOB, 1) == (exists, {})
    assert "create" not in engine.calls and "clear" not in engine.calls


def test_a_start_that_works_again_makes_nothing(monkeypatch):
    engine = Engine(None)
    assert _start_again(context(engine, monkeypatch), JOB, 1) == (True, {})
    assert engine.calls == ["start"]
