"""Admission: a worker takes a job from its stacks' queues only while it has a free slot.

A slot is held from the claim of an attempt until its container exits. The admission
thread consumes the stack queues itself, one message at a time, and only while the
worker has room. For each message it takes, it claims the attempt in the store (the
store's claim is the hard cap; admission only keeps claims from being refused), then
acknowledges the message and hands the attempt to one of its pull threads, which run
its pull, create and start here (`service.carry.run_here`): no second message per job,
and no second store write to say where the pull waits. A step that fails there is sent
as its own message to the worker's own queue, where its Celery task and retry policy
take over; an attempt whose steps stop with this process is sent again by its watcher
(`service.supervise`), or handed back once the worker is lost. While a monitor (Flower)
asks for task events, each message is instead forwarded, unchanged (same task id), to
the worker's own queue, where its pull runs as a Celery task the monitor lists.
When the worker is full, the one message its consumer was given waits up to HOLD_SECONDS
for a slot to free (in a burst of short jobs one frees within it: the next job starts at
once, with no consume, cancel and redelivery per job); then it goes back and the worker
stops consuming, so jobs wait in their stack's queue for any worker with room, and no
message is held unacknowledged for longer while containers run. Only a worker consuming
one queue holds a message: RabbitMQ's prefetch is per consumer (per queue), so a worker
of several could be given one on each; it gives back at once, as it always did.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from typing import Callable

from kombu import Connection, Consumer, Producer, Queue

from longshore.broker.routing import durable_queue, legacy_stack_queues, stack_queue_declaration
from longshore.domain.records import Job, WorkerIdentity
from longshore.domain.steps import Step
from longshore.service import carry
from longshore.service.held_seconds import HeldSeconds
from longshore.service.lifecycle import StepContext, claim_attempt
from longshore.service.runtime import Runtime
from longshore.store import STORE_ERRORS, Claim
from longshore.worker import task_events

log = logging.getLogger(__name__)

Key = tuple[str, int]
#: A pull taken (claimed, or forwarded) that the watcher has not seen owned within this long stops holding a slot.
PENDING_SECONDS = 30.0
#: How long a full worker keeps the message its consumer was given, for a slot to free, before giving it back.
HOLD_SECONDS = 1.0


class Capacity:
    """Slots held (as the store says at each watcher tick) plus pulls taken but not yet seen owned."""

    def __init__(self, slots: int):
        self.slots = slots
        self._holding = 0
        self._pending: dict[Key, float] = {}
        self._changed = threading.Condition()

    def room(self) -> int:
        """How many more jobs the worker may take now."""
        with self._changed:
            self._expire()
            return self.slots - self._holding - len(self._pending)

    def reserve(self, key: Key) -> bool:
        """Hold a slot for a pull about to be forwarded; False when there is no room."""
        with self._changed:
            self._expire()
            if key not in self._pending and self._holding + len(self._pending) >= self.slots:
                return False
            self._pending[key] = time.monotonic()
            return True

    def pending(self, *, older_than: float = 0.0) -> set[Key]:
        """The pulls forwarded (at least `older_than` seconds ago: their forwarding is recorded) and not yet
        seen claimed."""
        now = time.monotonic()
        with self._changed:
            return {key for key, at in self._pending.items() if now - at >= older_than}

    def update(self, holding: int, owned: set[Key], settled: set[Key] = frozenset()) -> None:
        """The watcher's count after a tick. Pulls it saw claimed are no longer pending, nor are pulls the
        store says are settled (claimed, or their job ended, since the tick began): a job that ends between
        two ticks never shows as owned, and must not hold a slot until PENDING_SECONDS."""
        with self._changed:
            self._holding = holding
            for key in (owned | settled) & self._pending.keys():
                del self._pending[key]
            self._changed.notify_all()

    def release(self, key: Key) -> None:
        """A reservation that came to nothing."""
        with self._changed:
            self._pending.pop(key, None)
            self._changed.notify_all()

    def freed(self, key: Key) -> None:
        """Attempt `key`'s container exited: its slot is free until the next tick recounts (whether the last
        tick counted it as held, or it was still a pending pull)."""
        with self._changed:
            if self._pending.pop(key, None) is None:
                self._holding = max(self._holding - 1, 0)
            self._changed.notify_all()

    def wait_for_room(self, timeout: float) -> None:
        """Block until the count changes (or `timeout`)."""
        with self._changed:
            self._changed.wait(timeout)

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, at in self._pending.items() if now - at > PENDING_SECONDS]:
            del self._pending[key]

    def __repr__(self) -> str:
        return f"<Capacity slots={self.slots} holding={self._holding} pending={len(self._pending)}>"


class Admission(threading.Thread):
    """Consumes the stack queues while there is room; claims each attempt and runs its pull here (see the
    module's docstring)."""

    def __init__(self, rt: Runtime, me: WorkerIdentity, own_queue: Queue, stacks: list[str], capacity: Capacity,
                 on_admit: Callable[[], None] = lambda: None, held_seconds: HeldSeconds | None = None):
        super().__init__(name="longshore-admission", daemon=True)
        self.rt, self.me, self.own_queue, self.stacks, self.capacity = rt, me, own_queue, stacks, capacity
        self.on_admit = on_admit  #: told of each message given a slot (the watcher looks over it soon)
        self.held_seconds = held_seconds  #: the starts' seconds, for their waits here (`service.held_seconds`)
        self.stopping = threading.Event()
        self._claimed: queue.Queue[tuple[str, int, Job] | None] = queue.Queue()  # None: stop
        self._held: tuple[Key, object, float] | None = None  #: a message given while full, and since when
        self._may_hold = True  #: while consuming one queue
        # One per slot: every claimed attempt holds a slot, so none waits here for a thread
        self._pullers = [threading.Thread(target=self._run_pulls, name=f"longshore-pull-{n}", daemon=True)
                         for n in range(max(me.slots, 1))]

    def stop(self, timeout: float) -> None:
        """Take no more jobs; let the pulls claimed so far reach their start (or `timeout` pass). The
        admission thread goes first: a claim it is making still reaches a pull thread."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for thread in [self, *self._pullers]:
            if thread.is_alive():
                thread.join(max(deadline - time.monotonic(), 0))

    def run(self) -> None:
        for puller in self._pullers:
            puller.start()
        while not self.stopping.is_set():
            try:
                with Connection(self.rt.settings.broker_url, transport_options=self._transport_options()) as conn:
                    self._serve(conn)
            except Exception:  # the broker is away: connect again shortly
                log.warning("admission lost the broker; connecting again", exc_info=True)
                time.sleep(1)
        self._claimed.put(None)  # no claim comes after this: the pull threads stop once they ran the ones before

    def _transport_options(self) -> dict:
        # A forwarded pull is acknowledged on its stack's queue only once the broker confirmed its copy.
        return {"polling_interval": 0.01} if self.rt.settings.embedded else {"confirm_publish": True}

    def _serve(self, conn: Connection) -> None:
        channel = conn.channel()
        channel.basic_qos(0, 1, False)  # one message at a time
        producer = Producer(conn.channel())
        consumer = Consumer(channel, self._queues(conn), callbacks=[lambda body, message: self._take(
            body, message, producer)], accept=["json"], auto_declare=True)
        consuming, full_since = False, None
        self._held = None  # unacknowledged on a connection that is gone: the broker gave it back
        self._may_hold = len(consumer.queues) == 1  # one message given at a time (see the docstring)
        while not self.stopping.is_set():
            if self._held is not None:
                full_since = None  # a message given while full: its own hold counts now
                if not self._settle_held(producer):  # held too long: no slot freed
                    consumer.cancel()  # first: the message given back must not come straight back here
                    consuming = False
                    self._give_back_held()
                continue
            room = self.capacity.room() > 0
            if room:
                full_since = None
            elif consuming and full_since is None:
                full_since = time.monotonic()  # full: the next message given is held for the next slot to free
            if room or (consuming and time.monotonic() - full_since < HOLD_SECONDS):
                if not consuming:
                    consumer.consume()
                    consuming = True
                try:  # while full, a look every 0.2 s for the hold; with room, a message wakes it
                    conn.drain_events(timeout=1.0 if full_since is None else 0.2)
                except socket.timeout:
                    pass
                continue
            if consuming:
                consumer.cancel()  # a message delivered while it cancels is taken (so held): it goes back too
                self._give_back_held()
                channel.basic_recover(requeue=True)  # and whatever else was delivered but not taken
                consuming, full_since = False, None
            self.capacity.wait_for_room(0.5)
        try:
            self._give_back_held()
        except Exception:  # the connection is gone: the broker gave it back
            pass

    def _settle_held(self, producer: Producer) -> bool:
        """Take the held message once a slot frees (waiting for one a little); False once held too long."""
        key, message, since = self._held
        if self.capacity.reserve(key):
            self._held = None
            self._admit(key, message, producer)
            return True
        left = since + HOLD_SECONDS - time.monotonic()
        if left <= 0:
            return False
        self.capacity.wait_for_room(min(left, 0.2))
        return True

    def _give_back_held(self) -> None:
        if self._held is not None:
            message, self._held = self._held[1], None
            message.requeue()

    def _queues(self, conn: Connection) -> list[Queue]:
        """The current stack queues, and earlier versions' queues that still exist (to drain them)."""
        queues = [stack_queue_declaration(stack) for stack in self.stacks]
        for stack in self.stacks:
            for name in legacy_stack_queues(stack):
                channel = conn.channel()
                try:
                    channel.queue_declare(name, passive=True)
                    queues.append(durable_queue(name))
                except conn.channel_errors:
                    pass
                finally:
                    try:
                        channel.close()
                    except Exception:  # already closed by the broker's 404
                        pass
        return queues

    def _take(self, body, message, producer: Producer) -> None:
        try:
            args = body[0]
            key = (str(args[0]), int(args[1]))
        except (TypeError, ValueError, IndexError, KeyError):
            log.error("dropping a malformed message on a stack queue: %r", message.headers)
            message.ack()
            return
        if not self.capacity.reserve(key):
            if self._held is None and self._may_hold:  # the next slot to free takes it (HOLD_SECONDS at most)
                self._held = (key, message, time.monotonic())
            else:
                message.requeue()
            return
        self._admit(key, message, producer)

    def _admit(self, key: Key, message, producer: Producer) -> None:
        """The message's slot is reserved: claim its attempt here, or forward it for a monitor to see."""
        self.on_admit()
        if task_events.asked():
            self._forward(key, message, producer)
        else:
            self._claim(key, message)

    def _claim(self, key: Key, message) -> None:
        """Claim the attempt; once it is this worker's, acknowledge its message and hand it to a pull thread."""
        try:
            claim, job = claim_attempt(StepContext(self.rt, self.me), *key)
        except STORE_ERRORS:
            self._put_back(key, message, store_away=True)
            return
        if claim is Claim.FULL:  # the store counts a slot this worker's count has freed: for another worker
            self._put_back(key, message)
            return
        if claim is Claim.CLAIMED:
            self._claimed.put((*key, job))  # before the acknowledgement: a claimed attempt is never dropped
        elif claim is not Claim.MINE:  # held back in the store, or another worker's, or its job moved on
            self.capacity.release(key)
        # MINE: a copy of a message this worker claimed (its acknowledgement was lost): the slot stays held
        # (by the pull under way, or until the tick sees it owned), and its steps are not run twice
        message.ack()

    def _put_back(self, key: Key, message, *, store_away: bool = False) -> None:
        """Free the slot reserved for the message and put it back on its queue, for any worker."""
        self.capacity.release(key)
        message.requeue()
        if store_away:
            time.sleep(1)  # no claim could succeed now anyway

    def _run_pulls(self) -> None:
        context = StepContext(self.rt, self.me, held_seconds=self.held_seconds)
        while True:
            item = self._claimed.get()  # no polling: the admission thread's end wakes an idle one
            if item is None:
                self._claimed.put(None)  # and through it the next pull thread
                return
            job_id, attempt, job = item
            try:
                carry.run_here(context, Step.PULL, job_id, attempt, job=job)  # one that fails is sent as a message
            except Exception:  # a bug in carrying it out: the thread goes on; the watcher sends it again
                log.exception("the pull of %s attempt %s failed here", job_id, attempt)

    def _forward(self, key: Key, message, producer: Producer) -> None:
        """Forward the pull to the worker's own queue, to run as its Celery task."""
        try:
            # Where the pull waits now: if this worker is lost, or never claims it, it is published again.
            self.rt.store.jobs.mark_forwarded(*key, to=self.me.name)
        except STORE_ERRORS:
            self._put_back(key, message, store_away=True)
            return
        properties = {k: v for k, v in message.properties.items() if k in ("correlation_id", "reply_to", "priority")}
        producer.publish(message.body, exchange="", routing_key=self.own_queue.name, headers=message.headers,
                         content_type=message.content_type, content_encoding=message.content_encoding,
                         delivery_mode=2, declare=[self.own_queue], retry=True, **properties)
        message.ack()
