"""Admission claims each attempt before it acknowledges the message, and hands only its own claims to its pull
threads: a claim the store refuses, or cannot make now, frees the slot it reserved."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from longshore.store import Claim
from longshore.worker import admission as admission_module
from longshore.worker.admission import Admission, Capacity


class Message:
    def __init__(self, claimed=None):
        self.acked = self.requeued = False
        self.claimed = claimed  # admission's queue for its pull threads, when the ack must come after the put

    def ack(self):
        assert self.claimed is None or not self.claimed.empty(), "acknowledged before its pull was handed on"
        self.acked = True

    def requeue(self):
        self.requeued = True


def admission(monkeypatch, answer) -> Admission:
    def claim_attempt(_ctx, job_id, attempt):
        if isinstance(answer, Exception):
            raise answer
        return answer, SimpleNamespace(id=job_id, attempt=attempt)

    monkeypatch.setattr(admission_module, "claim_attempt", claim_attempt)
    monkeypatch.setattr(admission_module.time, "sleep", lambda _seconds: None)
    me = SimpleNamespace(name="w1", slots=2)
    return Admission(SimpleNamespace(), me, own_queue=None, stacks=["busybox"], capacity=Capacity(2))


def test_a_claimed_attempt_goes_to_a_pull_thread_before_its_message_is_acknowledged(monkeypatch):
    taker = admission(monkeypatch, Claim.CLAIMED)
    message = Message(claimed=taker._claimed)
    assert taker.capacity.reserve(("j", 1))
    taker._claim(("j", 1), message)
    job_id, attempt, job = taker._claimed.get_nowait()
    assert (job_id, attempt, job.id) == ("j", 1, "j") and message.acked and not message.requeued
    assert taker.capacity.pending() == {("j", 1)}  # its slot stays held until a tick sees it owned


@pytest.mark.parametrize("answer", [Claim.HELD, Claim.TAKEN, Claim.STALE])
def test_a_claim_that_is_not_this_workers_to_run_now_frees_its_slot_and_drops_the_message(monkeypatch, answer):
    # HELD: waits in the store; TAKEN, STALE: another's, or moved on
    taker = admission(monkeypatch, answer)
    message = Message()
    taker.capacity.reserve(("j", 1))
    taker._claim(("j", 1), message)
    assert taker._claimed.empty() and message.acked and taker.capacity.room() == 2


def test_a_copy_of_a_message_this_worker_claimed_is_dropped_and_its_slot_stays_held(monkeypatch):
    # (its first acknowledgement was lost: its pull runs, or ran, here; the tick settles the slot)
    taker = admission(monkeypatch, Claim.MINE)
    message = Message()
    taker.capacity.reserve(("j", 1))
    taker._claim(("j", 1), message)
    assert taker._claimed.empty() and message.acked and taker.capacity.pending() == {("j", 1)}


@pytest.mark.parametrize("answer", [Claim.FULL, sa.exc.OperationalError("claim", {}, Exception("store away"))])
def test_a_full_worker_or_a_store_away_puts_the_message_back_for_any_worker(monkeypatch, answer):
    taker = admission(monkeypatch, answer)
    message = Message()
    taker.capacity.reserve(("j", 1))
    taker._claim(("j", 1), message)
    assert taker._claimed.empty() and message.requeued and not message.acked and taker.capacity.room() == 2


def test_a_message_given_while_full_is_held_for_the_next_slot_and_a_second_goes_back(monkeypatch):
    taker = admission(monkeypatch, Claim.CLAIMED)
    assert taker.capacity.reserve(("a", 1)) and taker.capacity.reserve(("b", 1))  # both slots held
    held, second = Message(), Message()
    taker._take([["c", 1], {}, {}], held, producer=None)
    taker._take([["d", 1], {}, {}], second, producer=None)
    assert taker._held[:2] == (("c", 1), held) and not held.requeued and not held.acked
    assert second.requeued  # one held at most
    # When a slot frees, the held message is claimed at once
    taker.capacity.freed(("a", 1))
    assert taker._settle_held(producer=None) and taker._held is None and held.acked
    assert taker._claimed.get_nowait()[:2] == ("c", 1)


def test_a_held_message_no_slot_frees_for_is_given_back_after_the_hold(monkeypatch):
    taker = admission(monkeypatch, Claim.CLAIMED)
    monkeypatch.setattr(admission_module, "HOLD_SECONDS", 0.05)
    assert taker.capacity.reserve(("a", 1)) and taker.capacity.reserve(("b", 1))  # both slots held
    held = Message()
    taker._take([["c", 1], {}, {}], held, producer=None)
    for _ in range(100):  # it waits for room, a little at a time, until the hold is over
        if not taker._settle_held(producer=None):
            break
    taker._give_back_held()
    assert held.requeued and not held.acked and taker._held is None and taker._claimed.empty()


def test_a_full_worker_of_several_queues_gives_a_message_back_at_once(monkeypatch):
    # (RabbitMQ's prefetch is per queue: it could be given one on each, and hold them all)
    taker = admission(monkeypatch, Claim.CLAIMED)
    taker._may_hold = False
    assert taker.capacity.reserve(("a", 1)) and taker.capacity.reserve(("b", 1))
    message = Message()
    taker._take([["c", 1], {}, {}], message, producer=None)
    assert message.requeued and taker._held is None


def test_the_pull_threads_run_every_claim_made_before_admission_ended_then_end(monkeypatch):
    taker = admission(monkeypatch, Claim.CLAIMED)
    ran = []
    monkeypatch.setattr(admission_module.carry, "run_here", lambda _ctx, _step, job_id, attempt, job: ran.append(job_id))
    for job_id in ("a", "b", "c"):
        taker._claimed.put((job_id, 1, None))
    taker._claimed.put(None)  # what the admission thread puts last, once it stopped
    for puller in taker._pullers:
        puller.start()
    for puller in taker._pullers:
        puller.join(2)
    assert sorted(ran) == ["a", "b", "c"] and not any(puller.is_alive() for puller in taker._pullers)
