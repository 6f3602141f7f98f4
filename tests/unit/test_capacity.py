"""A worker's count of its slots: held (as the store says at each tick) plus pulls forwarded but unclaimed."""

from __future__ import annotations

from longshore.worker.admission import Capacity


def test_a_forwarded_pull_holds_a_slot_until_claimed():
    capacity = Capacity(2)
    assert capacity.reserve(("a", 1)) and capacity.reserve(("b", 1))
    assert capacity.room() == 0 and not capacity.reserve(("c", 1))
    capacity.update(holding=1, owned={("a", 1)})  # a tick saw a claimed; b still waits for its pull
    assert capacity.room() == 0 and capacity.pending() == {("b", 1)}


def test_a_job_that_ends_between_two_ticks_frees_its_slot_at_its_exit():
    # Given two pulls forwarded and no tick since
    capacity = Capacity(2)
    capacity.reserve(("a", 1))
    capacity.reserve(("b", 1))
    # When a's container exits before any tick saw it claimed
    capacity.freed(("a", 1))
    # Then its slot is free at once, not after PENDING_SECONDS
    assert capacity.room() == 1 and capacity.pending() == {("b", 1)}


def test_a_pull_that_ended_without_a_container_is_settled_by_the_next_tick():
    capacity = Capacity(1)
    capacity.reserve(("a", 1))
    capacity.update(holding=0, owned=set(), settled={("a", 1)})  # its job failed at pull: never owned
    assert capacity.room() == 1


def test_an_exit_of_a_held_attempt_frees_one_held_slot():
    capacity = Capacity(3)
    capacity.update(holding=2, owned={("a", 1), ("b", 1)})
    capacity.freed(("a", 1))
    assert capacity.room() == 2
    capacity.freed(("a", 1))  # a second exit event for the same container
    capacity.freed(("b", 1))
    capacity.freed(("c", 1))
    assert capacity.room() == 3  # never more than the slots
