"""The guarantees that must hold past a short fault window: slots cap containers, a job runs in at most one
container at a time (two engines standing for two hosts), poison jobs end, cancels take seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter

import pytest

from support.helpers import wait_until
from support.services import DOCKER2_HOST, LABEL_JOB, REPO

LABEL_WORKER = "io.longshore.worker"


@pytest.fixture
def client(distributed):
    import longshore

    return longshore


class Sampler(threading.Thread):
    """Samples the running job containers of one or more engines every 50 ms: the most that ran at once,
    per worker and per job (over all engines together)."""

    def __init__(self, *clients):
        super().__init__(daemon=True)
        self.clients = clients
        self.peak_by_worker: Counter = Counter()
        self.peak_by_job: Counter = Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            by_worker, by_job = Counter(), Counter()
            for client in self.clients:
                for container in client.api.containers(filters={"label": LABEL_JOB, "status": "running"}):
                    labels = container["Labels"]
                    by_worker[labels.get(LABEL_WORKER)] += 1
                    by_job[labels[LABEL_JOB]] += 1
            for key, n in by_worker.items():
                self.peak_by_worker[key] = max(self.peak_by_worker[key], n)
            for key, n in by_job.items():
                self.peak_by_job[key] = max(self.peak_by_job[key], n)
            time.sleep(0.05)

    def __enter__(self) -> "Sampler":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.join(5)


def test_slots_cap_the_containers_a_worker_runs(starts, client, start_worker, docker_engine, wait_reaped):
    # Given a worker with 2 slots and a backlog of 8 jobs longer than a step
    worker = start_worker("busybox", slots=2)
    with Sampler(docker_engine) as sampler:
        jobs = [client.submit("busybox", ["sh", "-c", "sleep 3; echo done"]) for _ in range(8)]
        # When they all run, then never more than 2 of its containers ran at once, and all succeeded
        for job in jobs:
            assert job.wait(timeout=120).status.value == "succeeded"
    assert sampler.peak_by_worker[worker.name] == 2, sampler.peak_by_worker
    assert all(starts(docker_engine, job.id) == 1 for job in jobs)
    assert wait_reaped([job.id for job in jobs], timeout=20) == []


@pytest.mark.serial  # a latency promise: measured on a machine not running other sessions
def test_a_short_jobs_end_is_seen_within_a_second_while_long_jobs_run(client, start_worker, docker_engine):
    # Given a worker whose other slots hold long jobs
    start_worker("busybox", slots=3)
    long_jobs = [client.submit("busybox", ["sleep", "30"]) for _ in range(2)]
    wait_until(lambda: all(j.status.value == "running" for j in long_jobs), what="the long jobs to run")
    # When a short job runs beside them
    short = client.submit("busybox", ["sh", "-c", "sleep 1; echo short"])
    finished = short.wait(timeout=30)
    # Then its end is recorded within a second of its container's exit
    [attempt] = short.attempts()
    state = docker_engine.api.inspect_container(attempt.container_id)["State"]
    from longshore.engine.client import timestamp

    assert finished.status.value == "succeeded"
    assert finished.finished_at - timestamp(state["FinishedAt"]) < 1.0
    for job in long_jobs:
        job.cancel()


def test_no_message_is_held_while_a_container_runs(client, start_worker, rabbitmq):
    import json
    from urllib.request import Request, urlopen
    import base64

    # Given a worker running a job much longer than any step
    worker = start_worker("busybox", slots=2)
    job = client.submit("busybox", ["sleep", "30"])
    wait_until(lambda: job.status.value == "running", what="the job to run")
    # Then, while its container runs, no message is unacknowledged on the worker's queues: nothing can trip
    # consumer_timeout. (The broker's queue statistics lag by up to 5 s, and the start step itself holds
    # its message until the engine answers: ask until they settle.)
    vhost = rabbitmq.rsplit("/", 1)[1]
    auth = base64.b64encode(b"guest:guest").decode()
    request = Request(f"http://127.0.0.1:15672/api/queues/{vhost}", headers={"Authorization": f"Basic {auth}"})

    def held():
        queues = json.loads(urlopen(request, timeout=5).read())
        return {q["name"]: q.get("messages_unacknowledged", 0) for q in queues if q.get("messages_unacknowledged")}

    wait_until(lambda: held() == {}, timeout=20, interval=1, what="no unacknowledged message")
    assert job.status.value == "running"
    job.cancel()
    assert job.wait(timeout=30).status.value == "cancelled"
    assert worker.name


def test_a_worker_frozen_past_the_lost_window_never_lets_its_job_run_twice(starts,
        client, start_worker, docker_engine, second_engine, wait_reaped):
    from longshore.service.janitor import run_janitor_pass
    from longshore.service.runtime import get_runtime

    # Given a worker on a second engine (a second host) running a job, and a worker on the first engine
    frozen = start_worker("alpha", env={"DOCKER_HOST": DOCKER2_HOST})
    start_worker("alpha")
    with Sampler(docker_engine, second_engine) as sampler:
        job = client.submit("alpha", ["sh", "-c", "sleep 8; echo once"])
        wait_until(lambda: job.status.value == "running", what="the job to run")
        # When the worker is frozen (SIGSTOP) well past the lost window while the janitor runs
        os.killpg(frozen.process.pid, signal.SIGSTOP)
        try:
            time.sleep(4)
            for _ in range(3):
                run_janitor_pass(get_runtime())
                time.sleep(0.5)
        finally:
            os.killpg(frozen.process.pid, signal.SIGCONT)
        # Then, once it resumes, the job finishes once, in the one container it ever had
        finished = job.wait(timeout=60)
    assert finished.status.value == "succeeded" and job.logs() == "once\n"
    assert sampler.peak_by_job[job.id] == 1
    assert starts(docker_engine, job.id) + starts(second_engine, job.id) == 1
    assert [a.worker for a in job.attempts()] == [frozen.name]
    assert wait_reaped([job.id], timeout=20) == []


@pytest.mark.serial
def test_a_duplicated_pull_for_a_claimed_attempt_runs_nothing(starts,
        client, start_worker, docker_engine, second_engine, registry_only_image, wait_reaped):
    from longshore.broker.routing import stack_queue
    from longshore.service.runtime import get_runtime

    # Given a worker on the second engine still pulling a job's image (the registry is down)
    first = start_worker("fresh", env={"DOCKER_HOST": DOCKER2_HOST})
    subprocess.run(["pkill", "-f", "docker-registry serve"], check=True)
    try:
        job = client.submit("fresh", ["echo", "pulled once"], image=registry_only_image)
        wait_until(lambda: job.attempts()[0].worker == first.name, what="the claim")
        # When the same pull reaches a worker on the first engine (as a redelivery would)
        start_worker("fresh")
        get_runtime().publisher.app.send_task("longshore.pull_image", (job.id, 1), queue=stack_queue("fresh"))
        time.sleep(2)
    finally:
        subprocess.run([str(REPO / "scripts" / "services.sh"), "registry"], check=True, capture_output=True)
    # Then the duplicate is refused, and the job runs once, on the worker that claimed it
    finished = job.wait(timeout=90)
    assert finished.status.value == "succeeded", finished.error
    assert starts(docker_engine, job.id) == 0 and starts(second_engine, job.id) == 1
    assert [a.worker for a in job.attempts()] == [first.name]
    assert wait_reaped([job.id], timeout=20) == []


def test_a_poison_job_that_takes_its_host_down_ends_lost(client, start_worker, docker_engine):
    # Given a job that takes its host down (worker and container) every time it starts
    name = f"test-poison-{os.getpid()}@{os.uname().nodename}"
    env = {"LONGSHORE_MAX_REQUEUES": "2"}
    holder = {"worker": start_worker("busybox", name=name, env=env)}
    job = client.submit("busybox", ["sleep", "60"])
    crashes = 0
    deadline = time.monotonic() + 120
    while not job.status.final and time.monotonic() < deadline:
        running = docker_engine.api.containers(filters={"label": f"{LABEL_JOB}={job.id}", "status": "running"})
        if running:
            holder["worker"].stop(signal.SIGKILL)
            docker_engine.api.remove_container(running[0]["Id"], force=True)
            crashes += 1
            holder["worker"] = start_worker("busybox", name=name, env=env)
        time.sleep(0.1)
    # Then after its requeue budget it ends lost, with the reason, instead of hopping forever
    finished = job.wait(timeout=10)
    assert finished.status.value == "lost", (finished.status, finished.error)
    assert "container vanished" in finished.error and "too often" in finished.error
    assert crashes == 3 and finished.requeues == 2 and len(job.attempts()) == 3


@pytest.mark.serial  # a latency promise: measured on a machine not running other sessions
def test_a_running_job_is_cancelled_within_seconds_with_every_slot_busy(client, start_worker, docker_engine,
                                                                       wait_reaped, distributed):
    # Given a worker whose every slot runs a long job, and more waiting
    start_worker("busybox", slots=2)
    jobs = [client.submit("busybox", ["sleep", "60"]) for _ in range(3)]
    wait_until(lambda: sum(j.status.value == "running" for j in jobs) == 2, what="both slots to run")
    victim = next(j for j in jobs if j.status.value == "running")
    # When one is cancelled from another process
    started = time.monotonic()
    done = subprocess.run(["longshore", "cancel", victim.id], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **distributed})
    assert done.returncode == 0, done.stderr
    # Then its container is gone within 3 seconds, and the waiting job takes its slot
    assert wait_reaped([victim.id], timeout=3) == []
    assert time.monotonic() - started < 3.5
    wait_until(lambda: sum(j.status.value == "running" for j in jobs) == 2, what="the waiting job to start")
    for job in jobs:
        job.cancel()
    assert wait_reaped([j.id for j in jobs], timeout=10) == []


def test_a_second_worker_with_the_same_name_stops_instead_of_sharing_it(start_worker, tmp_path):
    from support.workers import WorkerProcess

    # Given a running worker
    first = start_worker("busybox")
    # When another process starts with the same name
    second = WorkerProcess("busybox", 2, tmp_path, name=first.name)
    try:
        second.process.wait(60)
        log = second.log_path.read_text()
    finally:
        second.stop()
    # Then it stops, naming the problem, and the first keeps its name
    assert "already consuming" in log and "needs a name of its own" in log
    assert first.process.poll() is None
