"""A full worker holds the one message its consumer was given, on the real RabbitMQ: the next slot to free takes
it at once (no consume, cancel and redelivery per job), and a message no slot frees for within the hold goes
back to its queue for any worker. The store's claim and the steps are stood in for: the broker is what is
under test."""

from __future__ import annotations

import socket
import uuid
from types import SimpleNamespace

import pytest
from kombu import Connection, Consumer, Producer

from longshore.broker.routing import stack_queue_declaration
from longshore.store import Claim
from longshore.worker import admission as admission_module
from longshore.worker.admission import Admission, Capacity
from support.helpers import wait_until


@pytest.fixture
def stack(rabbitmq):
    name = f"hold-{uuid.uuid4().hex[:8]}"
    yield name
    with Connection(rabbitmq) as conn:
        conn.default_channel.queue_delete(stack_queue_declaration(name).name)


@pytest.fixture
def taker(rabbitmq, stack, monkeypatch):
    """A worker of one slot whose claims all succeed; its pull threads record what they were given."""
    claims, pulled = [], []

    def claim_attempt(_ctx, job_id, attempt):
        claims.append((job_id, attempt))
        return Claim.CLAIMED, SimpleNamespace(id=job_id, attempt=attempt)

    monkeypatch.setattr(admission_module, "claim_attempt", claim_attempt)
    monkeypatch.setattr(admission_module.carry, "run_here", lambda _ctx, _step, job_id, attempt, job: pulled.append(
        (job_id, attempt)))
    rt = SimpleNamespace(settings=SimpleNamespace(broker_url=rabbitmq, embedded=False))
    me = SimpleNamespace(name=f"w-{stack}", slots=1)
    taker = Admission(rt, me, own_queue=None, stacks=[stack], capacity=Capacity(1))
    taker.claims, taker.pulled, taker.redelivered = claims, pulled, []
    admit = taker._admit
    monkeypatch.setattr(taker, "_admit", lambda key, message, producer: (
        taker.redelivered.append(message.delivery_info["redelivered"]), admit(key, message, producer)))
    yield taker
    taker.stop(10)
    assert not taker.is_alive()


def publish(url: str, stack: str, *job_ids: str) -> None:
    with Connection(url) as conn:
        producer = Producer(conn.default_channel)
        for job_id in job_ids:
            producer.publish([[job_id, 1], {}, {}], serializer="json", routing_key=stack_queue_declaration(stack).name,
                             declare=[stack_queue_declaration(stack)], delivery_mode=2)


def test_a_full_worker_takes_the_message_it_holds_the_moment_a_slot_frees(rabbitmq, stack, taker):
    # Given a worker of one slot, full with the first job, and a second job's message given to it meanwhile
    publish(rabbitmq, stack, "first", "second")
    taker.start()
    wait_until(lambda: taker.pulled == [("first", 1)], timeout=10, what="the first job's pull")
    wait_until(lambda: taker._held is not None, timeout=5, what="the second message to be held")
    assert taker.claims == [("first", 1)]
    # When the first job's container exits, then the second is claimed at once, from the message held
    taker.capacity.freed(("first", 1))
    wait_until(lambda: taker.pulled == [("first", 1), ("second", 1)], timeout=0.5, what="the second job's pull")
    assert taker.claims == [("first", 1), ("second", 1)]
    assert taker.redelivered == [False, False]  # the message held was taken, never given back and consumed again


def test_a_message_held_while_no_slot_frees_goes_back_for_any_worker(rabbitmq, stack, taker, monkeypatch):
    monkeypatch.setattr(admission_module, "HOLD_SECONDS", 0.5)
    # Given a worker of one slot, full with the first job, holding the second job's message
    publish(rabbitmq, stack, "first", "second")
    taker.start()
    wait_until(lambda: taker._held is not None, timeout=10, what="the second message to be held")
    # When no slot frees within the hold, then the message goes back: another worker's consumer gets it
    wait_until(lambda: taker._held is None, timeout=3, what="the held message to be given back")
    got = []
    with Connection(rabbitmq) as conn:
        with Consumer(conn.default_channel, [stack_queue_declaration(stack)], accept=["json"],
                      callbacks=[lambda body, message: (got.append((body[0][0], message.delivery_info["redelivered"])),
                                                        message.ack())]):
            wait_until(lambda: drained(conn) or got, timeout=5, what="the message back on its queue")
    assert got == [("second", True)] and taker.claims == [("first", 1)]


def drained(conn: Connection) -> None:
    try:
        conn.drain_events(timeout=0.5)
    except socket.timeout:
        pass
