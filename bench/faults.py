"""Fault injection: a load of jobs through the real distributed setup while something breaks.

For each fault, submits a load of short jobs to two real workers (RabbitMQ +
PostgreSQL + Docker), injects the fault while they run, waits until every job is
final, and counts from the store and the Docker engine:

  lost       jobs submitted but missing from the store, or never ended
  twice      jobs whose command ran to completion (exit 0) in more than one container
  stuck      jobs still queued or running at the deadline
  leaked     containers of this run left on the engine after the janitor's grace
  failed     jobs that ended in anything but succeeded (all jobs here should succeed)

It also shows how many exits with code 0 it saw on the engine's event stream (one per job
when all is well: the evidence behind `twice`), the platform's retries, redeliveries of
steps whose worker died, and attempts added by requeueing.

Every count must be zero; the script prints a table and exits 1 otherwise.

    python3 bench/faults.py [--jobs 16] [--only rabbitmq,postgres]

Needs scripts/services.sh's services and the busybox stack image. Restarts those
services on this machine: run it on a machine of your own, not a shared server.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN_ID = uuid.uuid4().hex[:8]
VHOST = f"longshore-faults-{RUN_ID}"
DATABASE = f"longshore_faults_{RUN_ID}"
REGISTRY_IMAGE = f"127.0.0.1:5000/longshore/busybox-faults:{RUN_ID}"


def job_command(seconds: int) -> list[str]:
    """A job that prints, sleeps, and prints again: it ran to completion iff it exits 0."""
    return ["sh", "-c", f"echo start; sleep {seconds}; echo end"]
ENV = {
    "LONGSHORE_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
    "LONGSHORE_DATABASE_URL": f"postgresql://longshore:longshore@127.0.0.1:5432/{DATABASE}",
    "LONGSHORE_STACKS": str(REPO / "tests" / "support" / "stacks.toml"),
    "LONGSHORE_HOME": tempfile.mkdtemp(prefix="longshore-faults-"),
    "LONGSHORE_HEARTBEAT_SECONDS": "0.5",
    "LONGSHORE_WORKER_LOST_SECONDS": "20",
    "LONGSHORE_REAP_GRACE_SECONDS": "2",
    "LONGSHORE_WAIT_SLICE_SECONDS": "5",
}


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=check, capture_output=True, text=True, timeout=180)


def services(*names: str) -> None:
    sh(str(REPO / "scripts" / "services.sh"), *names)


class Worker:
    """A real `longshore worker` process with a fixed node name (so a restart takes back its queue)."""

    def __init__(self, index: int):
        self.name = f"faults-{RUN_ID}-{index}@{os.uname().nodename}"
        self.log = open(Path(ENV["LONGSHORE_HOME"]) / f"worker-{index}.log", "a")
        self.process: subprocess.Popen | None = None

    def start(self) -> "Worker":
        self.process = subprocess.Popen(
            ["longshore", "worker", "--stacks", "busybox,fresh", "--slots", "4", "--name", self.name],
            env={**os.environ, **ENV}, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


class EngineEvents(threading.Thread):
    """Counts, per job, containers that exited 0 — across engine restarts (reconnects with `since`)."""

    def __init__(self, installation: str):
        super().__init__(daemon=True)
        self.installation = installation
        self.completions: Counter = Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        import docker

        since = time.time()
        while not self.stopping.is_set():
            try:
                client = docker.APIClient(version="auto", timeout=5)
                stream = client.events(since=int(since) - 1, decode=True, filters={
                    "type": "container", "event": "die", "label": f"io.longshore.installation={self.installation}"})
                seen = set()
                for event in stream:
                    key = (event["id"], event.get("timeNano"))
                    if key in seen:
                        continue
                    seen.add(key)
                    since = max(since, event["time"])
                    attributes = event["Actor"]["Attributes"]
                    if attributes.get("exitCode") == "0":
                        self.completions[attributes["io.longshore.job"]] += 1
                    if self.stopping.is_set():
                        return
            except Exception:  # the engine is restarting: reconnect shortly
                time.sleep(0.5)


# -- the faults -------------------------------------------------------------

def no_fault(workers: list[Worker]) -> None:
    """Baseline."""


def sigkill_worker(workers: list[Worker]) -> None:
    """SIGKILL of a worker mid-job; a supervisor restarts it a moment later."""
    workers[0].kill(signal.SIGKILL)
    time.sleep(1)
    workers[0].start()


def restart_rabbitmq(workers: list[Worker]) -> None:
    """RabbitMQ stopped and started under load."""
    sh("rabbitmqctl", "stop_app")
    time.sleep(2)
    sh("rabbitmqctl", "start_app")


def restart_postgres(workers: list[Worker]) -> None:
    """PostgreSQL restarted under load."""
    version, cluster = sh("pg_lsclusters", "--no-header").stdout.split()[:2]
    sh("pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "restart", "-m", "fast")


def restart_docker(workers: list[Worker]) -> None:
    """The Docker engine restarted with jobs running (its containers die with it)."""
    sh("pkill", "-TERM", "-x", "dockerd", check=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sh("pgrep", "-x", "dockerd", check=False).returncode == 0:
        time.sleep(0.2)
    services("docker")


def registry_down(workers: list[Worker]) -> None:
    """The image registry down while jobs pull, back after a few seconds."""
    sh("pkill", "-f", "docker-registry serve", check=False)
    time.sleep(5)
    services("registry")


#: fault → (how to inject it, the stack its jobs use, how long each job sleeps). The engine
#: restart's jobs outlive the engine's shutdown grace, so their containers die with it.
FAULTS = {
    "none": (no_fault, "busybox", 2),
    "sigkill-worker": (sigkill_worker, "busybox", 2),
    "rabbitmq-restart": (restart_rabbitmq, "busybox", 2),
    "postgres-restart": (restart_postgres, "busybox", 2),
    "docker-restart": (restart_docker, "busybox", 30),
    "registry-down": (registry_down, "fresh", 2),
}


def run_fault(name: str, jobs: int, workers: list[Worker], events: EngineEvents) -> dict:
    import longshore
    from longshore.service.janitor import run_janitor_pass
    from longshore.service.runtime import get_runtime

    inject, stack, job_seconds = FAULTS[name]
    runtime = get_runtime()
    image = REGISTRY_IMAGE if stack == "fresh" else None
    started = time.monotonic()
    ids: list[str] = []

    def submit_all() -> None:
        for _ in range(jobs):
            ids.append(_submit_until_accepted(longshore, stack, image, job_command(job_seconds)))
            time.sleep(0.15)

    submitter = threading.Thread(target=submit_all)
    if name == "registry-down":
        injector = threading.Thread(target=inject, args=(workers,))
        injector.start()
        time.sleep(0.5)
        submitter.start()
    else:
        submitter.start()
        _wait_running(runtime, ids)
        injector = threading.Thread(target=inject, args=(workers,))
        injector.start()
    submitter.join()
    injector.join()

    deadline = time.monotonic() + 180
    statuses: Counter = Counter()
    while time.monotonic() < deadline:
        _safely(run_janitor_pass, runtime)
        statuses = Counter(_safely(lambda: [runtime.store.jobs.get(i).status.value for i in ids], default=[]) or [])
        if sum(statuses.values()) == len(ids) and not (statuses["queued"] or statuses["running"]):
            break
        time.sleep(1)
    leaked = _leaked_after_grace(runtime)
    for job_id in ids:
        job = _safely(runtime.store.jobs.get, job_id)
        if job is not None and job.status.value != "succeeded":
            steps = [(a.number, a.status, a.worker, a.step_seconds, a.error) for a in runtime.store.jobs.attempts(job_id)]
            print(f"  {name}: job {job_id} {job.status.value}: {job.error} attempts={steps}", flush=True)
    attempts = [a for i in ids for a in runtime.store.jobs.attempts(i)]
    return {
        "fault": name,
        "jobs": len(ids),
        "succeeded": statuses["succeeded"],
        "failed": sum(n for s, n in statuses.items() if s not in ("succeeded", "queued", "running")),
        "lost": len(ids) - sum(statuses.values()),
        "twice": sum(1 for i in ids if events.completions[i] > 1),
        "completions seen": sum(events.completions[i] for i in ids),
        "stuck": statuses["queued"] + statuses["running"],
        "leaked": leaked,
        "infra retries": sum(a.infra_retries for a in attempts),
        "redeliveries": sum(a.redeliveries for a in attempts),
        "extra attempts": len(attempts) - len(ids),
        "seconds": round(time.monotonic() - started),
    }


def _submit_until_accepted(longshore, stack: str, image: str | None, command: list[str]) -> str:
    """Submit as a careful client does: a store outage refuses the job (nothing is kept), so try again."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return longshore.submit(stack, command, image=image, timeout=120).id
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _wait_running(runtime, ids: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(runtime.store.jobs.get(i).status.value == "running" for i in list(ids)):
            return
        time.sleep(0.05)


def _safely(fn, *args, default=None):
    try:
        return fn(*args)
    except Exception:  # a service is restarting: try again on the next round
        return default


def _leaked_after_grace(runtime) -> int:
    from longshore.service.janitor import run_janitor_pass

    deadline = time.monotonic() + 20
    while True:
        _safely(run_janitor_pass, runtime)
        left = _safely(runtime.engine.managed_containers, runtime.settings.installation, default=None)
        if left == [] or time.monotonic() > deadline:
            return len(left or [])
        time.sleep(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--only", help=f"comma-separated faults among: {', '.join(FAULTS)}")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(FAULTS)
    unknown = set(chosen) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")

    os.environ.update(ENV)
    services("docker", "rabbitmq", "postgres", "registry")
    sh("rabbitmqctl", "add_vhost", VHOST)
    sh("rabbitmqctl", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    sh("su", "postgres", "-c", f"psql -q -c 'CREATE DATABASE {DATABASE} OWNER longshore'")
    sh("longshore", "db", "upgrade")
    if "registry-down" in chosen:
        sh("docker", "tag", "longshore/busybox:1", REGISTRY_IMAGE)
        sh("docker", "push", REGISTRY_IMAGE)
        sh("docker", "rmi", REGISTRY_IMAGE)
    from longshore.service.runtime import get_runtime

    events = EngineEvents(get_runtime().settings.installation)
    events.start()
    workers = [Worker(i).start() for i in range(2)]
    rows = []
    try:
        time.sleep(3)
        for name in chosen:
            rows.append(run_fault(name, args.jobs, workers, events))
            print(_format_row(rows[-1]), flush=True)
    finally:
        events.stopping.set()
        for worker in workers:
            worker.kill(signal.SIGTERM)
        sh("rabbitmqctl", "delete_vhost", VHOST, check=False)
        sh("su", "postgres", "-c", f"psql -q -c 'DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)'", check=False)
        sh("docker", "rmi", REGISTRY_IMAGE, check=False)
        if "registry-down" in chosen:
            _delete_from_registry(REGISTRY_IMAGE)
    print()
    print(_table(rows))
    bad = [r["fault"] for r in rows
           if r["lost"] or r["twice"] or r["stuck"] or r["leaked"] or r["failed"] or r["succeeded"] != r["jobs"]]
    if bad:
        print(f"FAILED: {', '.join(bad)}; worker logs in {ENV['LONGSHORE_HOME']}")
        return 1
    print("every job ended succeeded exactly once; nothing lost, stuck or leaked")
    shutil.rmtree(ENV["LONGSHORE_HOME"], ignore_errors=True)  # worker logs are kept only on failure
    return 0


def _delete_from_registry(reference: str) -> None:
    """Delete the pushed tag's manifest from the local registry, so a run leaves nothing there."""
    from urllib.request import Request, urlopen

    host, _, rest = reference.partition("/")
    repository, _, tag = rest.rpartition(":")
    accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    try:
        with urlopen(Request(f"http://{host}/v2/{repository}/manifests/{tag}", headers=accept, method="HEAD"),
                     timeout=5) as response:
            digest = response.headers["Docker-Content-Digest"]
        urlopen(Request(f"http://{host}/v2/{repository}/manifests/{digest}", method="DELETE"), timeout=5).close()
    except OSError as exc:
        print(f"could not delete {reference} from the registry: {exc}")


COLUMNS = ["fault", "jobs", "succeeded", "failed", "lost", "twice", "stuck", "leaked", "completions seen",
           "infra retries", "redeliveries", "extra attempts", "seconds"]


def _format_row(row: dict) -> str:
    return " ".join(f"{k}={row[k]}" for k in COLUMNS)


def _table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
