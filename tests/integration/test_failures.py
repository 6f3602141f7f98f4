"""Failures: what the platform retries, what it refuses, what it kills, and what it never loses."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from support.helpers import wait_until
from support.services import IMAGE, REPO


@pytest.fixture
def client(distributed):
    import longshore

    return longshore


def attempts_of(job):
    return job.attempts()


def test_a_malformed_image_is_refused_at_submit(client):
    from longshore.errors import InvalidJob

    with pytest.raises(InvalidJob, match="image: 'longshore/BusyBox:1' is not an image reference"):
        client.submit("busybox", ["true"], image="longshore/BusyBox:1")


@pytest.mark.parametrize("image,words", [
    ("127.0.0.1:5000/longshore/never-pushed:1", "pull failed (404)"),
    ("registry.invalid/team/tool:1", "registry registry.invalid is unknown"),
])
def test_bad_images_fail_within_seconds_without_retries(client, start_worker, registry, image, words):
    start_worker("busybox")
    started = time.monotonic()
    job = client.submit("busybox", ["true"], image=image)
    finished = job.wait(timeout=30)
    assert time.monotonic() - started < 10
    assert finished.status.value == "failed" and words in finished.error
    [attempt] = attempts_of(job)
    assert attempt.infra_retries == 0 and attempt.container_id is None


@pytest.mark.serial
def test_a_registry_briefly_down_is_retried_by_the_platform(client, start_worker, registry_only_image):
    # Given an image only in the registry, on an always-pull stack, and the registry down
    remote = registry_only_image
    start_worker("fresh")
    subprocess.run(["pkill", "-f", "docker-registry serve"], check=True)
    try:
        # When a job is submitted and the registry returns a few seconds later
        job = client.submit("fresh", ["echo", "pulled after retries"], image=remote)
        wait_until(lambda: attempts_of(job)[0].infra_retries >= 1, timeout=20, what="a pull retry")
    finally:
        subprocess.run([str(REPO / "scripts" / "services.sh"), "registry"], check=True, capture_output=True)
    # Then the job succeeds, its retries recorded, and the user sees one attempt
    finished = job.wait(timeout=90)
    assert finished.status.value == "succeeded", finished.error
    [attempt] = attempts_of(job)
    assert attempt.infra_retries >= 1


def test_a_memory_bomb_is_oom_killed_with_the_limit_named(docker_engine, embedded_env):
    bomb = "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"
    done = subprocess.run(["longshore", "run", "--memory", "32m", "--", "sh", "-c", bomb],
                          env=embedded_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 137, done.stderr
    assert "oom_killed" in done.stderr and "out of memory (limit 48 MiB: its memory 32 MiB and its disk 16 MiB" in done.stderr


def test_a_job_asking_for_two_retries_that_always_fails_runs_three_times(client, start_worker, wait_reaped):
    start_worker("busybox")
    job = client.submit("busybox", ["sh", "-c", "echo try; exit 3"], retries=2, retry_delay=0.2)
    finished = job.wait(timeout=60)
    assert (finished.status.value, finished.exit_code) == ("failed", 3)
    assert [(a.number, a.status, a.exit_code) for a in attempts_of(job)] == [
        (1, "failed", 3), (2, "failed", 3), (3, "failed", 3)]
    assert finished.attempt == 3
    assert wait_reaped([job.id]) == []


def test_cancel_a_queued_job_it_never_starts(client, start_worker):
    # Given a job for a stack no worker serves yet
    job = client.submit("beta", ["echo", "never"])
    # When it is cancelled, and then a worker for its stack starts
    assert job.cancel().status.value == "cancelled"
    start_worker("beta")
    time.sleep(1.5)
    # Then it never ran
    [attempt] = attempts_of(job)
    assert attempt.container_id is None and job.status.value == "cancelled"


def test_a_job_cancelled_between_its_create_and_its_start_has_its_container_removed_at_once(client, docker_engine):
    from longshore.domain.records import WorkerIdentity
    from longshore.domain.steps import Step, container_name
    from longshore.service import lifecycle
    from longshore.service.runtime import get_runtime

    # Given a job whose attempt a worker claimed and whose container it created (the steps run here, in
    # order, against the real store and engine; a delayed job, so no worker of the session takes it)
    rt = get_runtime()
    me = WorkerIdentity(name=f"test-steps-{os.getpid()}@{os.uname().nodename}", engine_id=rt.engine.engine_id(),
                        slots=1, host=os.uname().nodename)
    steps = lifecycle.StepContext(rt, me)
    job = client.submit("busybox", ["true"], delay=3600)
    assert lifecycle.pull(steps, job.id, 1).send is Step.CREATE
    assert lifecycle.create(steps, job.id, 1).send is Step.START
    name = container_name(job.id, 1)
    assert docker_engine.api.containers(all=True, filters={"name": name})
    # When it is cancelled before its start step runs
    job.cancel()
    # Then the start step starts nothing and sends the reap at once (the attempt holds no slot, so the
    # watcher does not look at it), which removes the container
    after = lifecycle.start(steps, job.id, 1)
    assert after.send is Step.REAP and after.conclude is None
    lifecycle.reap(steps, job.id, 1)
    assert docker_engine.api.containers(all=True, filters={"name": name}) == []
    assert job.status.value == "cancelled"


def test_a_job_cancelled_while_its_create_and_start_run_after_its_pull_has_its_container_removed_at_once(
        client, docker_engine):
    import dataclasses

    from longshore.domain.records import WorkerIdentity
    from longshore.domain.steps import Step, container_name
    from longshore.service import lifecycle
    from longshore.service.runtime import get_runtime

    # Given a job pulled by a worker whose task runs its create and start next, with the job the pull read
    # (no second read of the store; a delayed job, so no worker of the session takes it)
    rt = get_runtime()
    me = WorkerIdentity(name=f"test-chain-{os.getpid()}@{os.uname().nodename}", engine_id=rt.engine.engine_id(),
                        slots=1, host=os.uname().nodename)
    steps = lifecycle.StepContext(rt, me)
    job = client.submit("busybox", ["true"], delay=3600)
    pulled = lifecycle.pull(steps, job.id, 1)
    assert pulled.send is Step.CREATE and pulled.job.id == job.id
    # When it is cancelled after that read
    job.cancel()
    chained = dataclasses.replace(steps, job=pulled.job)
    created = lifecycle.create(chained, job.id, 1)
    name = container_name(job.id, 1)
    # Then its start, fenced in the store, starts nothing and sends the reap at once, which removes the container
    after = lifecycle.start(dataclasses.replace(steps, job=created.job), job.id, 1)
    assert after.send is Step.REAP and after.conclude is None
    assert docker_engine.api.inspect_container(name)["State"]["Status"] == "created"
    lifecycle.reap(steps, job.id, 1)
    assert docker_engine.api.containers(all=True, filters={"name": name}) == []
    assert job.status.value == "cancelled"


def test_a_pull_redelivered_after_the_start_its_task_ran_never_makes_a_second_container(client, docker_engine):
    from longshore.domain.records import WorkerIdentity
    from longshore.domain.steps import Step, container_name
    from longshore.service import lifecycle
    from longshore.service.runtime import get_runtime

    # Given an attempt pulled, created and started by the steps run here, in one go as one task of a worker
    # runs them (a delayed job, so no worker of the session takes it), whose container then went with its host
    rt = get_runtime()
    me = WorkerIdentity(name=f"test-chain-{os.getpid()}@{os.uname().nodename}", engine_id=rt.engine.engine_id(),
                        slots=1, host=os.uname().nodename)
    steps = lifecycle.StepContext(rt, me)
    job = client.submit("busybox", ["sleep", "30"], delay=3600)
    assert lifecycle.pull(steps, job.id, 1).send is Step.CREATE
    assert rt.store.attempts.record_step(job.id, 1, Step.PULL, 0.01, owner=me.name)  # as its task records it
    assert lifecycle.create(steps, job.id, 1).send is Step.START
    lifecycle.start(steps, job.id, 1)
    name = container_name(job.id, 1)
    docker_engine.api.remove_container(name, force=True)
    try:
        # When the pull's message comes back (its worker died before acknowledging it)
        again = lifecycle.StepContext(rt, me, redelivered=True)
        # Then it counts as a redelivery and goes on from the create, which makes no second container for an
        # attempt that started but sends its wait, which finds the container gone: the attempt is lost
        assert lifecycle.pull(again, job.id, 1).send is Step.CREATE
        assert attempts_of(job)[0].redeliveries == 1
        assert lifecycle.create(again, job.id, 1).send is Step.WAIT
        assert docker_engine.api.containers(all=True, filters={"name": name}) == []
        lost = lifecycle.wait(again, job.id, 1)
        assert lost.send is Step.REAP and "its container vanished" in lost.conclude.reason
        # And a pull sent twice (not redelivered) still does nothing
        assert lifecycle.pull(steps, job.id, 1).send is None
    finally:
        job.cancel()
        lifecycle.reap(steps, job.id, 1)  # its contract folder


def _claimed_created_and_marked_running(client, rt, command, worker: str):
    """A delayed job (no worker of the session takes it) whose steps run here against the real store and engine:
    pulled, created, and marked running by a start whose engine call then failed (the engine went down)."""
    from longshore.domain.records import WorkerIdentity
    from longshore.domain.steps import Step
    from longshore.service import lifecycle

    me = WorkerIdentity(name=f"{worker}-{os.getpid()}@{os.uname().nodename}", engine_id=rt.engine.engine_id(),
                        slots=1, host=os.uname().nodename)
    steps = lifecycle.StepContext(rt, me)
    job = client.submit("busybox", command, delay=3600, payload={"n": 7})
    assert lifecycle.pull(steps, job.id, 1).send is Step.CREATE
    created = lifecycle.create(steps, job.id, 1)
    assert created.send is Step.START  # and its record written, as `service.carry` writes it
    assert rt.store.attempts.record_step(job.id, 1, Step.CREATE, 0.01, owner=me.name, **created.record.fields)
    assert rt.store.jobs.begin_running(job.id, 1, owner=me.name)
    return steps, job


def test_a_start_refused_after_a_failed_start_makes_the_container_afresh_and_runs_it(client, docker_engine):
    import shutil

    from longshore.domain.status import JobStatus
    from longshore.domain.steps import container_name
    from longshore.service import lifecycle
    from longshore.service.runtime import get_runtime

    # Given an attempt whose start failed as its engine went down, leaving the engine refusing the container
    # (the fault run's restart left an endpoint under its name: 403; here its contract folder, the source of a
    # bind, is gone: 400, the real engine's refusal of a container that never ran either way)
    rt = get_runtime()
    steps, job = _claimed_created_and_marked_running(client, rt, ["sh", "-c", 'cat "$PAYLOAD_FILE"'], "test-afresh")
    name = container_name(job.id, 1)
    made = docker_engine.api.inspect_container(name)
    [folder] = [m["Source"] for m in made["Mounts"] if m["Type"] == "bind"]
    shutil.rmtree(folder)
    try:
        # When its start runs again, then the container is made afresh (a new one, its contract folder written
        # again, its id on the attempt) and runs; the job succeeds
        assert lifecycle.start(steps, job.id, 1).conclude is None
        afresh = docker_engine.api.inspect_container(name)
        assert afresh["Id"] != made["Id"] and afresh["State"]["Status"] != "created"
        assert rt.store.jobs.attempt(job.id, 1).container_id == afresh["Id"]
        assert docker_engine.api.wait(name, timeout=30)["StatusCode"] == 0
        waited = lifecycle.wait(steps, job.id, 1)
        assert waited.conclude.outcome.status is JobStatus.SUCCEEDED
        assert docker_engine.api.logs(name).strip() == b'{"n": 7}'
    finally:
        job.cancel()
        lifecycle.reap(steps, job.id, 1)


def test_a_start_refused_again_after_the_container_is_made_afresh_fails_the_job_in_words(client, docker_engine):
    import shutil

    from longshore.domain.steps import Step, container_name
    from longshore.service import lifecycle
    from longshore.service.runtime import get_runtime

    # Given an attempt marked running by a start that failed, whose container the engine refuses, and will
    # refuse as made afresh too (its contract folder goes each time the container is made)
    rt = get_runtime()
    steps, job = _claimed_created_and_marked_running(client, rt, ["true"], "test-refused")
    name = container_name(job.id, 1)
    first = docker_engine.api.inspect_container(name)["Id"]
    create_container = rt.engine._api.create_container

    def made_without_its_folder(*args, **kwargs):
        made = create_container(*args, **kwargs)
        for mount in docker_engine.api.inspect_container(made["Id"])["Mounts"]:
            shutil.rmtree(mount["Source"], ignore_errors=True)
        return made

    shutil.rmtree(docker_engine.api.inspect_container(name)["Mounts"][0]["Source"])
    rt.engine._api.create_container = made_without_its_folder
    try:
        # When its start runs again, then it is made afresh once, refused again, and the job fails with the
        # engine's refusal in words; the one container left is reaped
        after = lifecycle.start(steps, job.id, 1)
        assert after.send is Step.REAP and after.conclude.outcome.status.value == "failed"
        assert "start failed (400)" in after.conclude.outcome.error
        [left] = docker_engine.api.containers(all=True, filters={"name": name})
        assert left["Id"] != first
    finally:
        del rt.engine._api.create_container  # the client's own method again
        job.cancel()
        lifecycle.reap(steps, job.id, 1)
    assert docker_engine.api.containers(all=True, filters={"name": name}) == []


def test_a_remake_whose_start_stopped_after_the_removal_is_not_lost_and_is_finished_by_the_next_start(
        client, docker_engine, starts):
    import sqlalchemy as sa

    from longshore.domain.status import JobStatus
    from longshore.domain.steps import Step, container_name
    from longshore.service import lifecycle
    from longshore.service.runtime import get_runtime

    # Given an attempt whose container was being made afresh by a start that stopped (its worker killed) between
    # the refused container's removal and its new create: its lease held, the refused id recorded, no container
    rt = get_runtime()
    steps, job = _claimed_created_and_marked_running(client, rt, ["sh", "-c", 'cat "$PAYLOAD_FILE"'], "test-gap")
    name = container_name(job.id, 1)
    refused = docker_engine.api.inspect_container(name)["Id"]
    owner = steps.worker.name
    try:
        lease = rt.store.repairs.take(job.id, 1, owner=owner, stale_after=30)
        assert lease is not None and rt.store.repairs.keep(job.id, 1, owner=owner, lease=lease,
                                                                   remade_from=refused)
        assert rt.engine.remove_unstarted(refused)
        # When the watcher's wait looks in that gap, then the attempt is not lost: it sends the start again
        waited = lifecycle.wait(steps, job.id, 1)
        assert waited.conclude is None and waited.send is Step.START
        # And while the lease is fresh, that start leaves the container to its holder
        assert lifecycle.start(steps, job.id, 1).conclude is None
        assert docker_engine.api.containers(all=True, filters={"name": name}) == []
        # And once it is stale (its holder stopped), the next start takes it over, makes the container and runs
        # it; its id is the attempt's; the job succeeds once
        with rt.store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE attempts SET repair_at = repair_at - 3600 WHERE job_id = :id"),
                         {"id": job.id})
        assert lifecycle.start(steps, job.id, 1).conclude is None
        made = docker_engine.api.inspect_container(name)["Id"]
        attempt = rt.store.jobs.attempt(job.id, 1)
        assert (attempt.container_id, attempt.remade_from, attempt.repair_at) == (made, refused, None)
        assert docker_engine.api.wait(name, timeout=30)["StatusCode"] == 0
        assert lifecycle.wait(steps, job.id, 1).conclude.outcome.status is JobStatus.SUCCEEDED
        assert docker_engine.api.logs(name).strip() == b'{"n": 7}'
        assert starts(docker_engine, job.id) == 1  # the refused container never ran; the one made afresh once
    finally:
        job.cancel()
        lifecycle.reap(steps, job.id, 1)
    assert docker_engine.api.containers(all=True, filters={"name": name}) == []


def test_cancel_a_running_job_stops_and_reaps_its_container(client, start_worker, wait_reaped, distributed):
    start_worker("busybox")
    job = client.submit("busybox", ["sleep", "60"])
    wait_until(lambda: job.status.value == "running", what="the job to run")
    started = time.monotonic()
    cancelled = subprocess.run(["longshore", "cancel", job.id], capture_output=True, text=True, timeout=30,
                               env={**os.environ, **distributed})
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout, cancelled.stderr
    assert wait_reaped([job.id], timeout=10) == []
    assert time.monotonic() - started < 10
    assert job.status.value == "cancelled"


def test_sigkill_of_a_worker_mid_job_still_finishes_the_job_once(starts, client, start_worker, wait_reaped,
                                                                docker_engine):
    # Given a worker running a job
    name = f"test-crash-{os.getpid()}@{os.uname().nodename}"
    worker = start_worker("busybox", name=name)
    # (long enough for the restarted worker to take the redelivered pull before the job ends)
    job = client.submit("busybox", ["sh", "-c", "echo started; sleep 8; echo done"])
    wait_until(lambda: job.status.value == "running", what="the job to run")
    # When the worker is SIGKILLed mid-job and restarted (as a supervisor would)
    worker.stop(signal.SIGKILL)
    start_worker("busybox", name=name)
    restarted = time.monotonic()
    # Then the job succeeds, its container started once, and nothing is left
    finished = job.wait(timeout=60)
    assert finished.status.value == "succeeded", finished.error
    assert job.logs() == "started\ndone\n"
    assert starts(docker_engine, job.id) == 1
    # (and in time: a step the kill cut short is sent again by the restarted worker at once, not after a
    # stall's 30 s, as the claim-then-restart test below shows for a pull)
    assert time.monotonic() - restarted < 20
    assert wait_reaped([job.id]) == []


def _claimed_in_the_store(rt, job, worker: str) -> bool:
    """Claim the job's first attempt for `worker` as its admission does (a worker of that name not running)."""
    claim, _ = rt.store.attempts.claim(job.id, 1, worker=worker, engine=rt.engine.engine_id(),
                                       host=os.uname().nodename, slots=1)
    return claim.name == "CLAIMED"


def test_a_worker_restarted_after_dying_between_its_claim_and_its_pull_runs_the_job_at_once(client, start_worker,
                                                                                          wait_reaped):
    from longshore.service.runtime import get_runtime

    # Given a job its worker claimed (its admission does, before it acknowledges the message) and then died
    # before the pull it runs itself: no message of that pull exists anywhere
    rt = get_runtime()
    name = f"test-claimed-{os.getpid()}@{os.uname().nodename}"
    job = client.submit("busybox", ["echo", "ran"])
    assert _claimed_in_the_store(rt, job, name)
    # When the worker is started again under its name
    start_worker("busybox", name=name)
    restarted = time.monotonic()
    # Then it sends that pull again at once (not after a stall's 30 s) and the job runs, once
    finished = job.wait(timeout=60)
    assert finished.status.value == "succeeded" and job.logs() == "ran\n", finished.error
    assert time.monotonic() - restarted < 15
    [attempt] = attempts_of(job)
    assert attempt.worker == name and attempt.redrives == 1
    assert wait_reaped([job.id]) == []


def test_a_create_its_worker_died_in_too_often_is_requeued_not_run_again(client, start_worker, wait_reaped):
    from longshore.domain.steps import Step
    from longshore.service.runtime import get_runtime

    # Given an attempt pulled by a worker whose processes died in its create three times already (the cap)
    rt = get_runtime()
    name = f"test-poison-{os.getpid()}@{os.uname().nodename}"
    job = client.submit("busybox", ["echo", "ran"])
    assert _claimed_in_the_store(rt, job, name) and rt.store.attempts.record_step(job.id, 1, Step.PULL, 0.01,
                                                                                  owner=name)
    for _ in range(rt.settings.policies.max_redeliveries):
        rt.store.attempts.count_redelivery(job.id, 1)
    # When the worker is started again under its name and finds that create cut short once more
    start_worker("busybox", name=name)
    # Then it does not run it again: the attempt is requeued as lost, and the job runs as a new attempt
    finished = job.wait(timeout=60)
    assert finished.status.value == "succeeded" and job.logs() == "ran\n", finished.error
    first, second = attempts_of(job)
    assert first.status == "lost" and "was lost 4 times during its create step" in first.error
    assert first.container_id is None and second.status == "succeeded"
    assert wait_reaped([job.id]) == []


def test_a_worker_that_never_returns_has_its_job_adopted_by_another_on_the_same_engine(starts,
        client, start_worker, wait_reaped, docker_engine):
    # Given a job running on a worker that is then killed for good, and another worker on the same engine
    lost = start_worker("alpha")
    job = client.submit("alpha", ["sh", "-c", "sleep 4; echo ok"])
    wait_until(lambda: job.status.value == "running", what="the job to run")
    lost.stop(signal.SIGKILL)
    other = start_worker("alpha")
    # When the lost worker's heartbeat ages out, then the other worker adopts the attempt: the container
    # that was already running is watched to its end, not run a second time
    finished = job.wait(timeout=60)
    assert finished.status.value == "succeeded", finished.error
    assert job.logs() == "ok\n"
    [attempt] = attempts_of(job)
    assert attempt.worker == other.name and attempt.status == "succeeded"
    assert starts(docker_engine, job.id) == 1
    assert wait_reaped([job.id], timeout=20) == []


@pytest.mark.serial
def test_a_lost_workers_unstarted_attempt_goes_back_to_its_stack_queue(client, start_worker, registry_only_image,
                                                                        wait_reaped):
    from longshore.service.janitor import run_janitor_pass
    from longshore.service.runtime import get_runtime

    # Given a worker that claimed a job and is killed while it pulls (the registry is down)
    lost = start_worker("fresh")
    subprocess.run(["pkill", "-f", "docker-registry serve"], check=True)
    try:
        job = client.submit("fresh", ["echo", "pulled elsewhere"], image=registry_only_image)
        wait_until(lambda: attempts_of(job)[0].worker == lost.name, what="the claim")
        lost.stop(signal.SIGKILL)
    finally:
        subprocess.run([str(REPO / "scripts" / "services.sh"), "registry"], check=True, capture_output=True)
    # When its heartbeat ages out and the janitor runs
    time.sleep(3.5)
    report = run_janitor_pass(get_runtime())
    assert report.requeued["worker_lost"] == 1, report.summary()
    # Then the job runs as a new attempt on another worker, and the lost attempt says why
    other = start_worker("fresh")
    finished = job.wait(timeout=60)
    assert finished.status.value == "succeeded", finished.error
    first, second = attempts_of(job)
    assert first.status == "lost" and "was lost before it started" in first.error
    assert second.worker == other.name and second.status == "succeeded"
    assert finished.requeues == 0  # a requeue before the job started says nothing against the job
    assert wait_reaped([job.id]) == []


def test_the_janitor_removes_containers_of_unknown_jobs(client, distributed, docker_engine):
    from longshore.engine.container import LABEL_ATTEMPT, LABEL_INSTALLATION, LABEL_JOB
    from longshore.service.janitor import run_janitor_pass
    from longshore.service.runtime import get_runtime

    runtime = get_runtime()
    orphan = docker_engine.containers.create(IMAGE, ["sleep", "60"], labels={
        LABEL_JOB: "no-such-job", LABEL_ATTEMPT: "1", LABEL_INSTALLATION: runtime.settings.installation})
    orphan.start()
    time.sleep(1.2)
    report = run_janitor_pass(runtime)
    assert report.removed["unknown_job"] == 1
    assert not docker_engine.containers.list(all=True, filters={"id": orphan.id})


@pytest.fixture
def short_consumer_timeout(rabbitmq):
    """RabbitMQ's consumer_timeout lowered to 3 s, checked twice a second, for channels opened from now on."""
    def set_timeout(milliseconds: int, tick_milliseconds: int) -> None:
        # The broker checks the timeout on each channel tick (every 60 s by default): tick faster too.
        for key, value in (("consumer_timeout", milliseconds), ("channel_tick_interval", tick_milliseconds)):
            subprocess.run(["rabbitmqctl", "eval", f"application:set_env(rabbit, {key}, {value})."],
                           check=True, capture_output=True)

    set_timeout(3000, 500)
    yield
    set_timeout(1800000, 60000)


@pytest.mark.serial
def test_a_job_or_a_delay_longer_than_the_brokers_consumer_timeout_finishes(client, start_worker, short_consumer_timeout,
                                                                  wait_reaped):
    # Given a broker that closes channels holding a message unacknowledged for over 3 s
    start_worker("busybox")
    # When a job runs for much longer than that, and another is delayed for longer than that
    job = client.submit("busybox", ["sh", "-c", "sleep 12; echo survived"])
    delayed = client.submit("busybox", ["echo", "waited"], delay=8)
    finished = job.wait(timeout=90)
    # Then both finish normally, exactly once
    assert finished.status.value == "succeeded", finished.error
    assert job.logs() == "survived\n"
    [attempt] = attempts_of(job)
    assert attempt.redeliveries == 0
    waited = delayed.wait(timeout=60)
    assert waited.status.value == "succeeded" and delayed.logs() == "waited\n"
    assert waited.started_at - waited.created_at >= 8 and len(attempts_of(delayed)) == 1
    assert wait_reaped([job.id, delayed.id]) == []
