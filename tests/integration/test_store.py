"""The store's guarantees against the real PostgreSQL: guarded transitions, owners, slots, bytes, waiters."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from longshore.domain.outcome import Outcome
from longshore.domain.records import NewJob
from longshore.domain.status import AttemptStatus, JobStatus
from longshore.domain.steps import Step
from longshore.store import Claim, Store


@pytest.fixture
def store(postgres):
    return Store(postgres)


def new_job(**overrides):
    fields = dict(stack="busybox", image="longshore/busybox:1", command=["true"], env={}, payload="{}",
                  disk_bytes=16 << 20, timeout_seconds=10, memory_bytes=64 << 20, cpus=0.5)
    return NewJob(**{**fields, **overrides})


def ended(status: JobStatus, exit_code: int | None = None, **fields) -> Outcome:
    return Outcome(status=status, exit_code=exit_code, **fields)


def worker(store, slots: int = 4) -> str:
    name = f"store-test-{uuid.uuid4().hex[:8]}"
    store.workers.register(name, host="h", engine_id="engine", instance="i", pid=1, stacks=["busybox"], slots=slots)
    return name


def claim(store, job_id, me, slots=4, number=1):
    return store.attempts.claim(job_id, number, worker=me, engine="engine", host="h", slots=slots)[0]


def test_a_job_finishes_once_and_never_moves_backwards(store):
    me = worker(store)
    job_id = store.jobs.create(new_job())
    assert claim(store, job_id, me) is Claim.CLAIMED
    assert store.jobs.begin_running(job_id, 1, owner=me)
    assert store.jobs.finish(job_id, 1, ended(JobStatus.SUCCEEDED, 0), owner=me)
    # A duplicate or late message can neither finish it again nor restart it
    assert not store.jobs.finish(job_id, 1, ended(JobStatus.FAILED, 1), owner=me)
    assert not store.jobs.begin_running(job_id, 1, owner=me)
    job = store.jobs.get(job_id)
    assert (job.status, job.exit_code) == (JobStatus.SUCCEEDED, 0)


def test_a_claim_hands_the_pull_the_job_as_it_read_it(store):
    me, other = worker(store), worker(store)
    job_id = store.jobs.create(new_job(command=["echo", "hi"], env={"A": "1"}))
    found, job = store.attempts.claim(job_id, 1, worker=me, engine="engine", host="h", slots=4)
    assert found is Claim.CLAIMED and job == store.jobs.get(job_id)
    assert (job.id, job.attempt, job.command, job.env) == (job_id, 1, ["echo", "hi"], {"A": "1"})
    assert store.attempts.claim(job_id, 1, worker=other, engine="engine", host="h", slots=4)[0] is Claim.TAKEN
    assert store.attempts.claim("no-such-job", 1, worker=me, engine="engine", host="h", slots=4) == (
        Claim.STALE, None)


def test_a_late_publish_mark_hides_neither_a_forwarded_pull_nor_a_job_put_back_to_wait(store):
    from longshore.store.attempts import _put_back

    # Given a pull a worker took from its stack's queue before the publisher marked it published
    forwarded = store.jobs.create(new_job())
    assert store.jobs.mark_forwarded(forwarded, 1, to="w-forwarded")
    store.jobs.mark_published(forwarded, 1)
    # then the worker it waits with is still on record (if it is lost, the pull is published again)
    assert forwarded in {due.job_id for due in store.reads.due(grace_seconds=3600, lost_publishers=["w-forwarded"])}
    # Given a job a worker put back to wait in the store (its code paused) before the mark
    held = store.jobs.create(new_job())
    with store.engine.begin() as conn:
        _put_back(conn, held, not_before=0)
    store.jobs.mark_published(held, 1)
    # then it is still due (it was stranded: marked published, with no message anywhere)
    assert held in {due.job_id for due in store.reads.due(grace_seconds=3600)}
    # and a mark with nothing in between marks it
    plain = store.jobs.create(new_job())
    store.jobs.mark_published(plain, 1)
    assert store.jobs.get(plain).published_at is not None


def test_a_requeued_attempt_is_published_once_whoever_held_the_pull_before(store):
    # Given a pull forwarded to a worker that claimed it and was lost before it started
    me = worker(store)
    job_id = store.jobs.create(new_job())
    store.jobs.mark_published(job_id, 1)
    assert store.jobs.mark_forwarded(job_id, 1, to=me)
    assert claim(store, job_id, me) is Claim.CLAIMED
    # When the janitor requeues it and publishes the new attempt
    assert store.jobs.next_attempt(job_id, 1, AttemptStatus.LOST, error="lost", owner=me, unstarted_only=True)
    store.jobs.mark_published(job_id, 2)
    # Then the new attempt is marked published, by no one in particular, and nothing publishes it a second
    # time (the last CI: a second pull ran a second create of the same container, which failed the job)
    from longshore.store.schema import jobs

    with store.engine.connect() as conn:
        published = conn.execute(sa.select(jobs.c.published_at, jobs.c.published_by).where(jobs.c.id == job_id)).one()
    assert published.published_at is not None and published.published_by is None
    assert job_id not in {due.job_id for due in store.reads.due(grace_seconds=0, lost_publishers=[me])}


def test_finishing_says_how_long_the_job_ran_and_a_misspelt_field_is_refused_not_dropped(store):
    me = worker(store)
    job_id = store.jobs.create(new_job())
    assert claim(store, job_id, me) is Claim.CLAIMED
    # A prebuilt UPDATE sets the parameters that name a column: a misspelt one must not vanish silently
    with pytest.raises(ValueError, match="attempts have no column contianer_id"):
        store.attempts.record_step(job_id, 1, "create", 0.1, owner=me, contianer_id="c1")
    assert store.attempts.record_step(job_id, 1, "create", 0.1, owner=me, container_id="c1")
    assert store.jobs.begin_running(job_id, 1, owner=me)
    # the wait that ends it is recorded in the same write, a step that is not timed refused before any
    with pytest.raises(ValueError, match="step 'kill' is not timed"):
        store.jobs.finish(job_id, 1, ended(JobStatus.SUCCEEDED, 0), owner=me, took=("kill", 0.1))
    # with the start's seconds the worker held for it (`service.held_seconds`)
    finished = store.jobs.finish(job_id, 1, ended(JobStatus.SUCCEEDED, 0), owner=me, took=("wait", 0.25),
                                 held={"start": 0.125})
    job = store.jobs.get(job_id)
    assert finished.stack == "busybox"
    assert finished.run_seconds == pytest.approx(job.finished_at - job.started_at, abs=0.01)
    [attempt] = store.jobs.attempts(job_id)
    assert attempt.container_id == "c1" and attempt.released_at
    assert (attempt.step_seconds["start"], attempt.step_seconds["wait"]) == (0.125, 0.25)
    assert attempt.progress_at == pytest.approx(job.finished_at, abs=0.01)


def test_a_record_for_a_step_that_goes_on_with_its_job_is_refused_once_the_job_moved_on(store):
    me = worker(store)
    job_id = store.jobs.create(new_job())
    assert claim(store, job_id, me) is Claim.CLAIMED
    assert store.attempts.record_step(job_id, 1, "pull", 0.1, owner=me, job_current=True)
    # Once the job is cancelled, the attempt is still this worker's, but a step must not go on with the job
    store.jobs.cancel(job_id)
    assert not store.attempts.record_step(job_id, 1, "create", 0.1, owner=me, job_current=True, container_id="c1")
    assert store.attempts.record_step(job_id, 1, "create", 0.1, owner=me, container_id="c1")  # the plain fence


def test_a_repeated_starts_lease_is_held_by_one_start_of_the_owner_until_let_go_or_stale(store):
    from concurrent.futures import ThreadPoolExecutor

    owner, other = worker(store), worker(store)
    job_id = store.jobs.create(new_job())
    assert claim(store, job_id, owner) is Claim.CLAIMED
    # Of eight starts of the owner at once, one takes the lease; another worker never does
    assert store.repairs.take(job_id, 1, owner=other, stale_after=30) is None
    with ThreadPoolExecutor(8) as pool:
        leases = list(pool.map(lambda _: store.repairs.take(job_id, 1, owner=owner, stale_after=30),
                               range(8)))
    [lease] = [taken for taken in leases if taken is not None]
    assert store.jobs.attempt(job_id, 1).repair_at == lease
    # Its holder writes under it; once let go, the next start takes it at once
    assert store.repairs.keep(job_id, 1, owner=owner, lease=lease, remade_from="refused", container_id="c2")
    assert not store.repairs.keep(job_id, 1, owner=owner, lease=lease + 1, container_id="c3")
    store.repairs.let_go(job_id, 1, owner=owner, lease=lease)
    attempt = store.jobs.attempt(job_id, 1)
    assert (attempt.repair_at, attempt.remade_from, attempt.container_id) == (None, "refused", "c2")
    second = store.repairs.take(job_id, 1, owner=owner, stale_after=30)
    assert second is not None
    # Its holder renews it (a long create); a renewal of a lease taken over is refused
    renewed = store.repairs.renew(job_id, 1, owner=owner, lease=second)
    assert renewed is not None and store.repairs.renew(job_id, 1, owner=owner, lease=second) is None
    second = renewed
    # A lease held past `stale_after` is taken over, and its first holder's writes are refused from then on
    time.sleep(0.05)
    third = store.repairs.take(job_id, 1, owner=owner, stale_after=0.01)
    assert third is not None and third != second
    assert not store.repairs.keep(job_id, 1, owner=owner, lease=second, container_id="late")
    store.repairs.let_go(job_id, 1, owner=owner, lease=second)  # a late let-go leaves the new holder's
    assert store.jobs.attempt(job_id, 1).repair_at == third
    # Once the job ends (a cancel), no lease is taken and none is written under
    store.jobs.cancel(job_id)
    assert not store.repairs.keep(job_id, 1, owner=owner, lease=third, container_id="c4")
    store.repairs.let_go(job_id, 1, owner=owner, lease=third)
    assert store.repairs.take(job_id, 1, owner=owner, stale_after=30) is None


def test_a_claim_is_one_call_of_the_store_unless_a_cap_may_hold_the_job(store):
    me, other, small = worker(store), worker(store), worker(store, slots=1)
    held_by_small, job_id, another = (store.jobs.create(new_job()) for _ in range(3))
    assert claim(store, held_by_small, small, slots=1) is Claim.CLAIMED
    sent: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *call: sent.append(call[2]))

    def one_call(asking):
        sent.clear()
        answer = asking()
        return answer, len(sent) == 1 and "longshore_claim_v1(" in sent[0]

    # When a worker claims a job, and then it, another worker, a full worker and a stale claim ask again:
    # each is one call, and answers as the transaction answered
    assert one_call(lambda: claim(store, job_id, me)) == (Claim.CLAIMED, True)
    assert one_call(lambda: claim(store, job_id, other)) == (Claim.TAKEN, True)
    assert one_call(lambda: claim(store, job_id, me)) == (Claim.MINE, True)
    assert one_call(lambda: claim(store, another, small, slots=1)) == (Claim.FULL, True)
    assert one_call(lambda: claim(store, job_id, me, number=2)) == (Claim.STALE, True)  # no such attempt
    retried, ended_job = store.jobs.create(new_job(retries=1)), store.jobs.create(new_job())
    assert claim(store, retried, me) is Claim.CLAIMED and claim(store, ended_job, me) is Claim.CLAIMED
    assert store.jobs.next_attempt(retried, 1, AttemptStatus.FAILED, error="exit 1", user_retry=True, owner=me)
    assert store.jobs.begin_running(ended_job, 1, owner=me)
    assert store.jobs.finish(ended_job, 1, ended(JobStatus.SUCCEEDED, 0), owner=me)
    assert one_call(lambda: claim(store, retried, other)) == (Claim.STALE, True)  # the job is at its second
    assert one_call(lambda: claim(store, ended_job, other)) == (Claim.STALE, True)  # the job ended
    assert one_call(lambda: store.attempts.claim("no-such-job", 1, worker=me, engine="e", host="h", slots=4)) == (
        (Claim.STALE, None), True)
    # And under a project's cap of running jobs (one) the transaction counts, and holds the second job
    from longshore.domain.quotas import Quotas

    project, _ = store.projects.create(f"capped-{uuid.uuid4().hex[:6]}", Quotas(max_running_jobs=1))
    capped = worker(store)
    first, second = (store.jobs.create(new_job(project_id=project.id)) for _ in range(2))
    assert claim(store, first, capped) is Claim.CLAIMED
    sent.clear()
    assert claim(store, second, capped) is Claim.HELD and len(sent) > 1
    assert store.attempts.holding(capped) == 1 and store.jobs.attempt(second, 1).worker is None


def test_a_claim_in_a_session_stricter_than_read_committed_takes_the_transaction(postgres):
    # Given a server whose sessions default to REPEATABLE READ (the function's read after the lock needs a
    # snapshot of its own, which only READ COMMITTED gives each statement)
    from urllib.parse import quote

    options = quote("-c default_transaction_isolation=repeatable\\ read")
    strict = Store(f"{postgres}{'&' if '?' in postgres else '?'}options={options}")
    with strict.engine.connect() as conn:
        assert conn.execute(sa.text("SHOW default_transaction_isolation")).scalar() == "repeatable read"
    me = worker(strict, slots=1)
    first, second = strict.jobs.create(new_job()), strict.jobs.create(new_job())
    sent: list[str] = []
    sa.event.listen(strict.engine, "before_cursor_execute", lambda *call: sent.append(call[2]))
    # When its worker claims: the function reads and writes nothing, and the transaction claims, within the slots
    assert claim(strict, first, me, slots=1) is Claim.CLAIMED and len(sent) > 1
    assert claim(strict, second, me, slots=1) is Claim.FULL
    assert strict.attempts.holding(me) == 1 and strict.jobs.attempt(second, 1).worker is None
    strict.close()


def test_a_store_role_refused_the_claim_functions_execute_claims_in_the_transaction(migrated_database, caplog,
                                                                                  monkeypatch):
    from longshore.store import moves

    monkeypatch.setattr(moves, "_refused", moves._Refused())  # this process's memory of a refusal, for the test
    # Given a store whose role may not run the claim's function (an installation that revoked PUBLIC's default
    # right to run functions, and granted the workers' role only the tables)
    store = Store(migrated_database)
    with store.engine.begin() as conn:
        if conn.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
            pytest.skip("the store's role is a superuser here: no right can be taken from it")
        conn.execute(sa.text("REVOKE EXECUTE ON FUNCTION longshore_claim_v1 FROM PUBLIC, CURRENT_USER"))
    me = worker(store, slots=1)
    first, second = store.jobs.create(new_job()), store.jobs.create(new_job())
    # When its worker claims, then the transaction claims within the slots, and the log says what to grant
    with caplog.at_level("WARNING", logger="longshore.store.moves"):
        assert claim(store, first, me, slots=1) is Claim.CLAIMED
        assert claim(store, second, me, slots=1) is Claim.FULL
    assert store.attempts.holding(me) == 1 and store.jobs.attempt(second, 1).worker is None
    refusals = [record.getMessage() for record in caplog.records if record.name == "longshore.store.moves"]
    assert len(refusals) == 1  # once: the next claim did not try the function again
    assert "GRANT EXECUTE ON FUNCTION longshore_claim_v1" in refusals[0]
    # And once granted, a claim RETRY_FUNCTION_SECONDS later is one call of the function again
    with store.engine.begin() as conn:
        conn.execute(sa.text("GRANT EXECUTE ON FUNCTION longshore_claim_v1 TO CURRENT_USER"))
    moves._refused.until -= moves.RETRY_FUNCTION_SECONDS  # as if that long had passed
    assert store.attempts.release(first, 1)
    sent: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *call: sent.append(call[2]))
    assert claim(store, second, me, slots=1) is Claim.CLAIMED
    assert len(sent) == 1 and "longshore_claim_v1(" in sent[0]
    # And a table inside the function the role may not touch is no refused EXECUTE: its error is the claim's,
    # as the transaction would meet it, with no advice to grant the function and no minute without it
    with store.engine.begin() as conn:
        conn.execute(sa.text("REVOKE UPDATE ON workers FROM CURRENT_USER"))
    assert store.attempts.release(second, 1)
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied for table workers"):
        claim(store, store.jobs.create(new_job()), me, slots=1)
    assert len([record for record in caplog.records if record.name == "longshore.store.moves"]) == 1
    assert moves._refused.until < time.monotonic()
    store.close()


def test_a_stale_attempt_cannot_touch_the_job(store):
    job_id = store.jobs.create(new_job())
    assert not store.jobs.finish(job_id, 2, ended(JobStatus.SUCCEEDED))
    assert store.jobs.get(job_id).status is JobStatus.QUEUED


def test_only_the_owner_of_an_attempt_moves_it(store):
    # Given an attempt claimed by one worker
    owner, other = worker(store), worker(store)
    job_id = store.jobs.create(new_job())
    assert claim(store, job_id, owner) is Claim.CLAIMED
    # When another worker claims it, starts it, records a step or finishes it, then it is refused
    assert claim(store, job_id, other) is Claim.TAKEN
    assert not store.jobs.begin_running(job_id, 1, owner=other)
    assert not store.attempts.record_step(job_id, 1, "pull", 0.1, owner=other)
    assert not store.jobs.finish(job_id, 1, ended(JobStatus.FAILED, 1), owner=other)
    # And the owner's own writes go through
    assert claim(store, job_id, owner) is Claim.MINE
    assert store.attempts.record_step(job_id, 1, "pull", 0.1, owner=owner)
    assert store.jobs.begin_running(job_id, 1, owner=owner)


def test_a_worker_holds_at_most_its_slots(store):
    # Given a worker with two slots and three jobs
    me = worker(store, slots=2)
    jobs = [store.jobs.create(new_job()) for _ in range(3)]
    # When it claims all three, then the third is refused until a container ends
    assert [claim(store, j, me, slots=2) for j in jobs] == [Claim.CLAIMED, Claim.CLAIMED, Claim.FULL]
    assert store.attempts.release(jobs[0], 1)
    assert claim(store, jobs[2], me, slots=2) is Claim.CLAIMED
    assert store.attempts.holding(me) == 2


def test_a_worker_that_adopted_past_its_slots_claims_nothing_until_enough_exited(store):
    # Given a worker of one slot, running a job, that adopts the running job of a lost worker on its engine
    me, lost = worker(store, slots=1), worker(store, slots=1)
    mine, orphan, waiting = (store.jobs.create(new_job()) for _ in range(3))
    assert claim(store, mine, me, slots=1) is Claim.CLAIMED and claim(store, orphan, lost, slots=1) is Claim.CLAIMED
    assert store.attempts.adopt(orphan, 1, from_worker=lost, to_worker=me, host="h", engine="engine")
    # Then it holds both (the containers already run), and its next claim is refused while it holds its slots
    assert store.attempts.holding(me) == 2
    assert claim(store, waiting, me, slots=1) is Claim.FULL
    assert store.attempts.release(mine, 1)
    assert claim(store, waiting, me, slots=1) is Claim.FULL  # one of the two exited: still one slot's worth held
    assert store.attempts.release(orphan, 1)
    assert claim(store, waiting, me, slots=1) is Claim.CLAIMED


def test_concurrent_claims_never_exceed_the_slots(store):
    me = worker(store, slots=3)
    jobs = [store.jobs.create(new_job()) for _ in range(20)]
    with ThreadPoolExecutor(10) as pool:
        claims = list(pool.map(lambda j: claim(store, j, me, slots=3), jobs))
    assert claims.count(Claim.CLAIMED) == 3 and store.attempts.holding(me) == 3


def test_a_cancel_racing_a_retry_still_cancels(store):
    # Given a job that has just moved to its second attempt (a retry)
    me = worker(store)
    job_id = store.jobs.create(new_job(retries=1))
    claim(store, job_id, me)
    assert store.jobs.next_attempt(job_id, 1, AttemptStatus.FAILED, error="exit 1", user_retry=True, owner=me)
    # When it is cancelled, then the current attempt is cancelled, whatever the canceller last saw
    job, attempt = store.jobs.cancel(job_id)
    assert job.status is JobStatus.CANCELLED and attempt.number == 2 and attempt.status is AttemptStatus.CANCELLED


def test_output_and_results_keep_every_byte(store):
    me = worker(store)
    job_id = store.jobs.create(new_job())
    claim(store, job_id, me)
    store.jobs.begin_running(job_id, 1, owner=me)
    raw = b"ok\x00\xff\xfe not utf-8 \xc3\x28"
    assert store.jobs.finish(job_id, 1, ended(JobStatus.SUCCEEDED, 0, output=raw, result=b"\x00{}"), owner=me)
    job = store.jobs.get(job_id)
    assert (job.output, job.result) == (raw, b"\x00{}")


def test_paging_by_cursor_shows_every_job_once_in_order_ties_included(store):
    # Given single jobs and a batch stored in one transaction (its jobs share their created_at)
    label = f"paged-{uuid.uuid4().hex[:6]}"
    store.jobs.create(new_job(label=label))
    store.jobs.create_many([(new_job(label=label), None) for _ in range(5)])
    store.jobs.create(new_job(label=label))
    everything = [job.id for job in store.reads.list_jobs(label=label, limit=100)]
    # When they are read two a page, each page starting after the last job of the one before
    seen, cursor = [], None
    while True:
        page = store.reads.list_jobs(label=label, limit=2, before=cursor)
        if not page:
            break
        seen += [job.id for job in page]
        cursor = (page[-1].created_at, page[-1].id)
    # Then every job shows once, in the order of one long page
    assert len(everything) == 7 and seen == everything


def test_a_projects_queue_quota_counts_its_jobs_only_when_the_installation_could_reach_it(store):
    import dataclasses

    import sqlalchemy as sa

    from longshore.domain.quotas import Quotas
    from longshore.errors import QuotaExceeded

    counted = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda _c, _cur, statement, *_: counted.append("count(*)" in statement.lower()))
    # Given a project whose quota is above every job waiting in the installation
    roomy, _token = store.projects.create(f"roomy-{uuid.uuid4().hex[:6]}", Quotas(max_queued_jobs=1_000_000))
    # When it submits, then its waiting jobs are not counted (the installation's are fewer than its quota)
    store.jobs.create(dataclasses.replace(new_job(), project_id=roomy.id), default_max_queued=10)
    assert not any(counted)
    # Given a project allowed two waiting jobs, and another with three waiting
    tight, _token = store.projects.create(f"tight-{uuid.uuid4().hex[:6]}", Quotas(max_queued_jobs=2))
    busy, _token = store.projects.create(f"busy-{uuid.uuid4().hex[:6]}", Quotas(max_queued_jobs=0))
    for _ in range(3):
        store.jobs.create(dataclasses.replace(new_job(), project_id=busy.id))
    # When it submits three, then its own are counted and the third is refused
    for _ in range(2):
        store.jobs.create(dataclasses.replace(new_job(), project_id=tight.id))
    with pytest.raises(QuotaExceeded, match="has 2 jobs waiting"):
        store.jobs.create(dataclasses.replace(new_job(), project_id=tight.id))
    assert any(counted)


def test_a_move_from_the_job_as_its_step_read_it_is_as_guarded_as_one_that_reads_it_again(store):
    stack = f"known-{uuid.uuid4().hex[:6]}"
    owner, other = worker(store), worker(store)
    # Given a claimed job, as its claim read it, then cancelled: a start from what was read is refused
    cancelled = store.jobs.create(new_job(stack=stack))
    _, read_then = store.attempts.claim(cancelled, 1, worker=owner, engine="engine", host="h", slots=4)
    store.jobs.cancel(cancelled)
    assert not store.jobs.begin_running(cancelled, 1, owner=owner, known=read_then)
    assert store.jobs.get(cancelled).status is JobStatus.CANCELLED
    # And another worker's start from the job as read is refused; its owner's goes through
    job_id = store.jobs.create(new_job(stack=stack))
    _, queued = store.attempts.claim(job_id, 1, worker=owner, engine="engine", host="h", slots=4)
    assert not store.jobs.begin_running(job_id, 1, owner=other, known=queued)
    assert store.jobs.begin_running(job_id, 1, owner=owner, known=queued)
    # When it is finished from the job read before it started (stale: the move reads it again)
    finished = store.jobs.finish(job_id, 1, ended(JobStatus.SUCCEEDED, 0), owner=owner, known=queued)
    assert finished is not None and finished.stack == stack and finished.run_seconds >= 0
    # And another job from the job as running: by another worker refused, by its owner once
    second = store.jobs.create(new_job(stack=stack))
    claim(store, second, owner)
    assert store.jobs.begin_running(second, 1, owner=owner)
    running = store.jobs.get(second)
    assert not store.jobs.finish(second, 1, ended(JobStatus.FAILED, 1), owner=other, known=running)
    assert store.jobs.finish(second, 1, ended(JobStatus.SUCCEEDED, 0), owner=owner, known=running).run_seconds >= 0
    assert not store.jobs.finish(second, 1, ended(JobStatus.FAILED, 1), owner=owner, known=running)
    # Then each moved once each way, and the counts followed every move
    assert {(j.status, j.exit_code) for j in map(store.jobs.get, (job_id, second))} == {(JobStatus.SUCCEEDED, 0)}
    counts = store.reads.installation_counts(overdue_margin_seconds=60)
    assert counts.current[(stack, "queued")] == counts.current[(stack, "running")] == 0
    assert (counts.totals[(stack, "running")], counts.totals[(stack, "succeeded")]) == (2, 2)
    assert counts.totals[(stack, "cancelled")] == 1


def test_a_workers_start_and_finish_are_one_statement_each_with_all_that_goes_with_them(store, postgres):
    # Given a claimed job with a secret, and a waiter in another process, listening
    stack, me, other = f"at-once-{uuid.uuid4().hex[:6]}", worker(store), worker(store)
    job_id = store.jobs.create(new_job(stack=stack, secret_env={"TOKEN": "x"}), sealed_secret_env="sealed")
    _, queued = store.attempts.claim(job_id, 1, worker=me, engine="engine", host="h", slots=4)
    waiting, woke = Store(postgres), []
    _listening(waiting)
    waiter = threading.Thread(target=lambda: woke.append(waiting.jobs.wait_finished(job_id, timeout=4)))
    waiter.start()
    sent: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *call: sent.append(call[2]))
    # When its worker starts it: one statement
    assert store.jobs.begin_running(job_id, 1, owner=me, known=queued)
    assert len(sent) == 1 and sent[0].lstrip().startswith("WITH moved AS")
    # And its slot is released, then another worker's finish from the job as running is refused
    assert store.attempts.release(job_id, 1)
    running, before = store.jobs.get(job_id), store.jobs.attempt(job_id, 1)
    assert store.jobs.finish(job_id, 1, ended(JobStatus.FAILED, 1), owner=other, known=running) is None
    assert store.jobs.attempt(job_id, 1) == before  # the attempt's write went with the refused move
    # When its owner finishes it with the wait's and the held start's seconds
    sent.clear()
    finished = store.jobs.finish(job_id, 1, ended(JobStatus.SUCCEEDED, 0, output=b"out"), owner=me,
                                 took=(Step.WAIT, 0.25), known=running, held={Step.START: 0.5})
    # Then that was one statement too
    assert len(sent) == 1 and sent[0].lstrip().startswith("WITH moved AS")
    assert finished is not None and finished.stack == stack and finished.run_seconds >= 0
    # And the job, its attempt (its release kept), its counts and its secrets are as a transaction left them
    job, attempt = store.jobs.get(job_id), store.jobs.attempt(job_id, 1)
    assert (job.status, job.exit_code, job.started_at is not None) == (JobStatus.SUCCEEDED, 0, True)
    assert (attempt.status, attempt.exit_code, attempt.released_at) == (AttemptStatus.SUCCEEDED, 0,
                                                                        before.released_at)
    assert attempt.started_at == job.started_at and attempt.finished_at == job.finished_at
    assert (attempt.step_seconds["wait"], attempt.step_seconds["start"]) == (0.25, 0.5)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT secret_env FROM jobs WHERE id = :id"), {"id": job_id}).scalar() is None
    counts = store.reads.installation_counts(overdue_margin_seconds=60)
    assert counts.current[(stack, "succeeded")] == counts.totals[(stack, "running")] == 1
    assert counts.current[(stack, "queued")] == counts.current[(stack, "running")] == 0
    assert counts.totals.get((stack, "failed"), 0) == 0
    # And the waiter, listening since before the finish, was told (its own re-read comes only after 5 s)
    waiter.join(timeout=4)
    assert [job.status for job in woke] == [JobStatus.SUCCEEDED]
    waiting.engine.dispose()


def test_the_one_statement_writes_are_prepared_on_their_connection(postgres):
    # Given a store of one connection, which has run a few jobs' submits, starts and finishes
    store = Store(postgres, pool_size=1, max_overflow=0)
    me = worker(store)
    for _ in range(3):
        job_id = store.jobs.create(new_job())
        _, queued = store.attempts.claim(job_id, 1, worker=me, engine="engine", host="h", slots=4)
        assert store.jobs.begin_running(job_id, 1, owner=me, known=queued)
        assert store.jobs.finish(job_id, 1, ended(JobStatus.SUCCEEDED, 0), owner=me, known=store.jobs.get(job_id))
    # Then PostgreSQL holds each of them prepared on that connection (its plan made once)
    with store.engine.connect() as conn:
        prepared = [" ".join(text.split()) for text in
                    conn.execute(sa.text("SELECT statement FROM pg_prepared_statements")).scalars()]
    store.engine.dispose()
    shapes = {"WITH job AS (INSERT INTO jobs", "WITH moved AS (UPDATE jobs SET status=",
              "WITH moved AS (UPDATE jobs SET secret_env=", "FROM longshore_claim_v1("}
    assert {shape for shape in shapes if any(shape in text for text in prepared)} == shapes


def test_a_submit_is_one_statement_and_stores_what_the_transaction_stores(store):
    from longshore.errors import DuplicateJob, ProjectNotFound

    stack = f"submit-{uuid.uuid4().hex[:6]}"
    fields = dict(stack=stack, command=None, env={"A": "1"}, secret_env={"S": "1"}, delay_seconds=30, label="l",
                  priority=2, retries=2, retry_delay_seconds=1.5, config='{"c": 1}', payload='{"p": [1]}')
    sent: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *call: sent.append(call[2]))
    # When a job is submitted alone (no webhook, its project with no quota): one statement
    alone = store.jobs.create(new_job(**fields), sealed_secret_env="sealed")
    assert len(sent) == 1 and sent[0].lstrip().startswith("WITH job AS")
    # And the same job goes with another in one transaction
    in_batch, _other = store.jobs.create_many([(new_job(**fields), "sealed"), (new_job(stack=stack), None)])
    # Then both are stored alike, their first attempts too, and counted
    def stored(table, key, job_id, ignored):
        with store.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(key == job_id)).mappings().one()
        return {name: value for name, value in row.items() if name not in ignored}

    from longshore.store.schema import attempts, jobs
    ignored = {"id", "job_id", "created_at", "not_before"}
    assert stored(jobs, jobs.c.id, alone, ignored) == stored(jobs, jobs.c.id, in_batch, ignored)
    assert stored(attempts, attempts.c.job_id, alone, ignored) == stored(attempts, attempts.c.job_id, in_batch, ignored)
    job = store.jobs.get(alone)
    assert (job.status, job.attempt, job.secret_names, job.command) == (JobStatus.QUEUED, 1, ["S"], None)
    assert job.not_before == pytest.approx(job.created_at + 30)
    counts = store.reads.installation_counts(overdue_margin_seconds=60)
    assert (counts.current[(stack, "queued")], counts.totals[(stack, "submitted")]) == (3, 3)
    # And a project that is not there, or a job id taken, is refused by name and stores nothing
    with pytest.raises(ProjectNotFound, match="no project 'nope'"):
        store.jobs.create(dataclasses.replace(new_job(stack=stack), project_id="nope"))
    with pytest.raises(DuplicateJob, match=alone):
        store.jobs.create(dataclasses.replace(new_job(stack=stack), id=alone))
    with pytest.raises(sa.exc.DataError, match="too long"):  # refused by its column, never cut to fit
        store.jobs.create(new_job(stack=stack, label="x" * 101))
    counts = store.reads.installation_counts(overdue_margin_seconds=60)
    assert (counts.current[(stack, "queued")], counts.totals[(stack, "submitted")]) == (3, 3)


def test_the_counts_follow_every_transition(store):
    stack = f"counted-{uuid.uuid4().hex[:6]}"
    me = worker(store)
    done, cancelled = (store.jobs.create(new_job(stack=stack)) for _ in range(2))
    claim(store, done, me)
    store.jobs.begin_running(done, 1, owner=me)
    store.jobs.finish(done, 1, ended(JobStatus.SUCCEEDED, 0), owner=me)
    store.jobs.cancel(cancelled)
    counts = store.reads.installation_counts(overdue_margin_seconds=60)
    assert counts.totals[(stack, "submitted")] == 2
    assert counts.totals[(stack, "succeeded")] == counts.totals[(stack, "cancelled")] == 1
    assert counts.current[(stack, "queued")] == counts.current[(stack, "running")] == 0
    # a requeue before its start moves queued → queued: still one waiting, entered twice
    requeued = store.jobs.create(new_job(stack=stack))
    claim(store, requeued, me)
    assert store.jobs.next_attempt(requeued, 1, AttemptStatus.LOST, error="lost before it started",
                                   unstarted_only=True)
    counts = store.reads.installation_counts(overdue_margin_seconds=60)
    assert (counts.current[(stack, "queued")], counts.totals[(stack, "queued")]) == (1, 4)
    assert counts.totals[(stack, "submitted")] == 3


def test_waiting_returns_when_another_connection_finishes_the_job(store, postgres):
    job_id = store.jobs.create(new_job())
    other = Store(postgres)
    threading.Timer(0.3, lambda: other.jobs.finish(job_id, 1, ended(JobStatus.SUCCEEDED, 0))).start()
    assert store.jobs.wait_finished(job_id, timeout=10).status is JobStatus.SUCCEEDED


def test_a_closed_store_stops_listening_and_never_connects_again(postgres):
    # Given a store whose finish listener listens, known by its own application name
    name = f"listener-{uuid.uuid4().hex[:8]}"
    store, watching = Store(f"{postgres}?application_name={name}"), Store(postgres)
    _listening(store)

    def connections() -> int:
        with watching.engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                                {"name": name}).scalar()

    # When it is closed, and its listener's connection is ended as a database dropped or restarted ends it
    store.close()
    with watching.engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
                     {"name": name})
    # Then nothing of it connects again (a listener left running did, every half second)
    time.sleep(2)
    assert connections() == 0
    watching.engine.dispose()


def test_fifty_waiters_in_one_process_all_return_without_exhausting_the_pool(postgres):
    # Given a process whose pool has 2 connections, and 50 threads waiting on 50 jobs
    waiting = Store(postgres, pool_size=1, max_overflow=1)
    finishing = Store(postgres)
    jobs = [finishing.jobs.create(new_job()) for _ in range(50)]
    with ThreadPoolExecutor(50) as pool:
        waits = [pool.submit(waiting.jobs.wait_finished, job_id, 30) for job_id in jobs]
        # When another process finishes them all
        threading.Timer(0.5, lambda: [finishing.jobs.finish(j, 1, ended(JobStatus.SUCCEEDED, 0)) for j in jobs]).start()
        # Then every wait returns the finished job
        assert {w.result(timeout=60).status for w in waits} == {JobStatus.SUCCEEDED}


def test_a_pooled_connection_that_died_is_replaced_and_sessions_read_committed(postgres, monkeypatch):
    import sqlalchemy as sa

    from longshore.store import database

    store = Store(postgres, pool_size=1, max_overflow=0)
    job_id = store.jobs.create(new_job())

    def backend() -> int:
        with store.engine.connect() as conn:
            level = conn.execute(sa.text("SHOW transaction_isolation")).scalar()
            assert level == "read committed"  # the guarded writes rely on it, set once per session
            return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()

    def kill(pid: int) -> None:
        with Store(postgres, pool_size=1, max_overflow=0).engine.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    # A connection idle past the ping threshold that died is noticed by its ping and replaced: no error
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)
    first = backend()
    kill(first)
    assert store.jobs.get(job_id).id == job_id and backend() != first
    # One used a moment ago is not pinged: if it died, its next call fails as an outage does (callers
    # retry those), and the one after runs on a new connection
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 3600.0)
    second = backend()
    kill(second)
    with pytest.raises(database.TRANSIENT_ERRORS):
        store.jobs.get(job_id)
    assert store.jobs.get(job_id).id == job_id and backend() != second


def test_a_read_is_one_statement_outside_a_transaction_and_leaves_writes_transactional(postgres):
    import time

    import sqlalchemy as sa

    from longshore.store.database import read

    store = Store(postgres, pool_size=1, max_overflow=0)  # one connection: every block below shares it

    def clock_twice(conn) -> tuple:
        first = conn.execute(sa.text("SELECT now()")).scalar()
        time.sleep(0.01)
        return first, conn.execute(sa.text("SELECT now()")).scalar()

    for _ in range(2):
        # A read runs each statement as its own transaction (no BEGIN, no ROLLBACK: one round trip)
        with read(store.engine) as conn:
            first, second = clock_twice(conn)
            assert first != second
            with pytest.raises(sa.exc.DataError):
                conn.execute(sa.text("SELECT 1 / 0"))
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1  # an error aborted no transaction
        # and hands the connection back as it was: a write block is one transaction at READ COMMITTED
        with store.engine.begin() as conn:
            first, second = clock_twice(conn)
            assert first == second
            assert conn.execute(sa.text("SHOW transaction_isolation")).scalar() == "read committed"
    # a connection handed back in autocommit whatever happened (an interrupt mid-read) is made
    # transactional again as it goes back into the pool
    with store.engine.connect() as conn:
        conn.connection.dbapi_connection.isolation_level = None
        conn.connection.dbapi_connection.autocommit = True
    with store.engine.begin() as conn:
        first, second = clock_twice(conn)
        assert first == second
        assert conn.execute(sa.text("SHOW transaction_isolation")).scalar() == "read committed"
    # the reads of the repositories take this path too
    job_id = store.jobs.create(new_job())
    assert store.jobs.get(job_id).status is JobStatus.QUEUED


def test_a_write_alone_commits_as_it_runs_and_leaves_the_connection_transactional(postgres, tmp_path):
    import time

    from longshore.domain.steps import Step
    from longshore.store.database import single_write

    store = Store(postgres, pool_size=1, max_overflow=0)  # one connection: every block below shares it
    other = Store(postgres, pool_size=1, max_overflow=0)
    job_id = store.jobs.create(new_job())
    with single_write(store.engine) as conn:
        # A write alone is its own transaction (no BEGIN, no COMMIT: one round trip): others see it at once
        conn.execute(sa.text("UPDATE jobs SET progress = 7 WHERE id = :id"), {"id": job_id})
        assert other.jobs.get(job_id).progress == 7
        first = conn.execute(sa.text("SELECT now()")).scalar()
        time.sleep(0.01)
        assert conn.execute(sa.text("SELECT now()")).scalar() != first
    # and the connection goes back as it was: a write block is one transaction at READ COMMITTED
    with store.engine.begin() as conn:
        first = conn.execute(sa.text("SELECT now()")).scalar()
        time.sleep(0.01)
        assert conn.execute(sa.text("SELECT now()")).scalar() == first
        assert conn.execute(sa.text("SHOW transaction_isolation")).scalar() == "read committed"
    # The repositories' single writes stay fenced: a step of a worker that does not own the attempt is refused
    me = worker(store)
    assert claim(store, job_id, me) is Claim.CLAIMED
    assert not store.attempts.record_step(job_id, 1, Step.PULL, 0.5, owner=worker(store))
    assert store.attempts.record_step(job_id, 1, Step.PULL, 0.5, owner=me)
    assert other.jobs.attempt(job_id, 1).step_seconds["pull"] == 0.5
    # On the embedded store (SQLite) a write alone is a transaction, committed as the block ends
    embedded = Store(f"sqlite:///{tmp_path / 'store.db'}")
    embedded.upgrade()
    embedded_job = embedded.jobs.create(new_job())
    with single_write(embedded.engine) as conn:
        conn.execute(sa.text("UPDATE jobs SET progress = 9 WHERE id = :id"), {"id": embedded_job})
    assert embedded.jobs.get(embedded_job).progress == 9


@pytest.mark.parametrize("where", ["postgres", "sqlite"])
def test_a_status_read_is_the_job_its_attempts_and_retries_on_one_connection_without_its_output(
        where, postgres, tmp_path):
    if where == "postgres":
        store = Store(postgres)
    else:
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
        store.upgrade()
    statements = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    me, label = worker(store), uuid.uuid4().hex
    job_id = store.jobs.create(new_job(retries=2, label=label))
    for number in (1, 2):
        assert claim(store, job_id, me, number=number) is Claim.CLAIMED
        assert store.jobs.next_attempt(job_id, number, AttemptStatus.FAILED, error="exit 1", user_retry=True, owner=me)
    assert claim(store, job_id, me, number=3) is Claim.CLAIMED
    store.jobs.begin_running(job_id, 3, owner=me)
    raw = b"x" * 1000 + b"\xff"
    assert store.jobs.finish(job_id, 3, ended(JobStatus.FAILED, 1, output=raw), owner=me)
    assert store.reads.job_detail("no-such-job") is None
    # A job nothing retried: two statements, the job as `get` reads it but for its output (left in the store)
    statements.clear()
    detail = store.reads.job_detail(job_id)
    assert len(statements) == 2
    stored = store.jobs.get(job_id)
    assert stored.output == raw and detail.job.output is None and stored.output_size == len(raw)
    assert detail.job == dataclasses.replace(stored, output=None)  # its size read all the same
    # The job alone, and a page of jobs, read without their outputs too (one statement each)
    statements.clear()
    assert store.reads.job(job_id) == detail.job and store.reads.job("no-such-job") is None
    assert store.reads.list_jobs(label=label, with_output=False) == [detail.job] and len(statements) == 3
    assert store.reads.list_jobs(label=label) == [stored]
    assert [(a.number, a.status) for a in detail.attempts] == [
        (1, AttemptStatus.FAILED), (2, AttemptStatus.FAILED), (3, AttemptStatus.FAILED)]
    assert detail.attempts == store.jobs.attempts(job_id) and detail.retried_as == []
    # Retried twice: the jobs that retry it, oldest first (one more statement, only for such a job)
    retries = [store.jobs.create(new_job(retry_of=job_id)) for _ in range(2)]
    statements.clear()
    detail = store.reads.job_detail(job_id)
    assert len(statements) == 3 and detail.retried_as == retries
    # A job not yet claimed has its one attempt
    assert [a.number for a in store.reads.job_detail(retries[0]).attempts] == [1]


def _listening(store) -> None:
    from longshore.store.projects import CALLERS_CHANNEL

    deadline = time.monotonic() + 10
    while store.jobs.finishes.epoch(CALLERS_CHANNEL) is None:
        assert time.monotonic() < deadline, "the store's listener never listened"
        time.sleep(0.02)


def _soon(predicate, seconds: float = 5.0) -> float:
    """How long until `predicate()` held (failing after `seconds`)."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < seconds
        time.sleep(0.005)
    return time.monotonic() - started


def test_a_cached_caller_goes_the_moment_its_token_or_quota_changes_in_any_process(postgres):
    from longshore.domain.quotas import Quotas

    # two processes' stores: an API's (whose statements are seen as written, prepared or not), the CLI's
    api, other = Store(postgres), Store(postgres)
    statements = []
    sa.event.listen(api.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    project, token = api.projects.create(f"cache-{uuid.uuid4().hex[:6]}", Quotas(requests_per_second=5))
    spare = other.projects.create_token(project.id, "spare")
    api.projects.authenticate(token)
    _listening(api)
    # Read once, then from the cache: no statement
    assert api.projects.authenticate(token).requests_per_second == 5
    statements.clear()
    assert api.projects.authenticate(token).requests_per_second == 5
    assert api.projects.authenticate(spare).project_id == project.id
    assert api.projects.authenticate(spare).project_id == project.id
    assert len([s for s in statements if "tokens" in s]) == 1  # the spare's first read only
    # A quota changed by another process: the next read after its notification sees it
    other.projects.set_quotas(project.id, {"requests_per_second": 7})
    _soon(lambda: api.projects.authenticate(token).requests_per_second == 7, 2.0)
    # A token revoked by another process: refused as soon as its notification came; the other token still works
    spare_id = next(t.id for t in other.projects.tokens(project.id) if t.name == "spare")
    other.projects.revoke_token(spare_id)
    _soon(lambda: api.projects.authenticate(spare) is None, 2.0)
    assert api.projects.authenticate(token).project_id == project.id
    # Revoked in this process: refused at once, before its own notification came back
    own = api.projects.create_token(project.id, "own")
    assert api.projects.authenticate(own) is not None
    api.projects.revoke_token(next(t.id for t in api.projects.tokens(project.id) if t.name == "own"))
    assert api.projects.authenticate(own) is None
    # An unknown token is never cached: one made later works at once
    assert api.projects.authenticate("not-a-token") is None


def test_a_cached_caller_is_trusted_neither_across_a_lost_listener_connection_nor_for_long(postgres, monkeypatch):
    from longshore.domain.quotas import Quotas
    from longshore.store import projects as project_store

    monkeypatch.setattr(project_store, "CALLER_MAX_AGE_SECONDS", 600)  # the lost connection alone, first
    api = Store(postgres)
    with api.engine.connect() as conn:
        since = conn.execute(sa.text("SELECT now()")).scalar()  # this store's listener connects after this
    project, token = api.projects.create(f"cache-{uuid.uuid4().hex[:6]}", Quotas())
    second = api.projects.create_token(project.id, "second")
    api.projects.authenticate(token)
    _listening(api)
    assert api.projects.authenticate(token) is not None and api.projects.authenticate(second) is not None  # cached
    # The listener's connection goes (a store restart); meanwhile the token is revoked with no notification
    # at all (by hand, or by a process of an older release)
    with api.engine.begin() as conn:
        killed = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' "
            "AND backend_start >= :since AND datname = current_database()"), {"since": since}).scalar()
        assert killed == 1
        conn.execute(sa.text("UPDATE tokens SET revoked_at = 1 WHERE project_id = :p AND name = 'first'"),
                     {"p": project.id})
    _soon(lambda: api.projects.authenticate(token) is None, 3.0)
    # A change with no notification while the listener listens: held within the cache's age at most
    _listening(api)
    assert api.projects.authenticate(second) is not None
    monkeypatch.setattr(project_store, "CALLER_MAX_AGE_SECONDS", 0.5)
    with api.engine.begin() as conn:
        conn.execute(sa.text("UPDATE tokens SET revoked_at = 1 WHERE project_id = :p"), {"p": project.id})
    assert _soon(lambda: api.projects.authenticate(second) is None, 3.0) < 1.5


def test_a_store_that_refuses_connections_counts_as_away_for_the_janitor():
    # Given a store whose server refuses connections (nothing listens on its port): no disconnect, but away
    store = Store("postgresql://longshore:longshore@127.0.0.1:1/longshore", connect_timeout_seconds=2)
    store.health.last_failure = 0.0
    # When a read fails, then the process saw the store away just now: no worker is judged lost for a while
    with pytest.raises(sa.exc.OperationalError):
        store.jobs.get("0" * 32)
    assert store.health.seconds_up() < 5
