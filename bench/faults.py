"""Fault injection: a load of jobs through the real distributed setup while something breaks.

For each fault, submits a load of jobs to two real workers (RabbitMQ + PostgreSQL +
Docker; with --engines 2 the second worker drives a second Docker engine, standing
for a second host), injects the fault while some run and others wait, waits until
every job is final, and counts from the store and the engines' event streams:

  lost       jobs submitted but missing from the store, or never ended
  stuck      jobs still queued or running at the deadline
  failed     jobs that ended in anything but succeeded (all jobs here should succeed)
  leaked     containers of this run left on an engine after the janitor's grace
  at once    jobs that ran in two containers at the same time (over all engines)
  restarted  jobs whose container started more than once (a fault that is not the
             engine's own restart must not restart any)

It also shows the container starts and clean exits it saw, the platform's retries,
redeliveries of steps whose worker died, steps the watcher sent again, and attempts
added by requeueing. Every count above must be zero; the script prints a table and
exits 1 otherwise.

    python3 bench/faults.py [--jobs 8] [--only rabbitmq-down,postgres-down] [--outage-seconds 150] [--engines 2]

The long outages (rabbitmq-down, postgres-down: minutes, longer than every retry
budget) are not in the default set; name them with --only. Needs the services of
scripts/services.sh and the busybox stack image. Restarts those services on this
machine: run it on a machine of your own, not a shared server.
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
    "LONGSHORE_WORKER_LOST_SECONDS": "5",
    "LONGSHORE_REAP_GRACE_SECONDS": "2",
    "LONGSHORE_REDRIVE_AFTER_SECONDS": "10",
}
DOCKER2_HOST = "unix:///var/run/longshore-docker2.sock"
#: How long the long outages last (--outage-seconds).
OUTAGE = {"seconds": 150.0}


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=check, capture_output=True, text=True, timeout=600)


def services(*names: str) -> None:
    sh(str(REPO / "scripts" / "services.sh"), *names)


class Worker:
    """A real `longshore worker` process with a fixed node name (so a restart takes back its queue)."""

    def __init__(self, index: int, docker_host: str | None = None):
        self.name = f"faults-{RUN_ID}-{index}"
        self.docker_host = docker_host
        self.log = open(Path(ENV["LONGSHORE_HOME"]) / f"worker-{index}.log", "a")
        self.process: subprocess.Popen | None = None

    def start(self) -> "Worker":
        env = {**os.environ, **ENV, **({"DOCKER_HOST": self.docker_host} if self.docker_host else {})}
        self.process = subprocess.Popen(
            ["longshore", "worker", "--stacks", "busybox,fresh", "--slots", "2", "--name", self.name],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            # SIGTERM to the main process only (as `docker stop`): Celery stops its own pool
            if sig == signal.SIGTERM:
                os.kill(self.process.pid, sig)
            else:
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


class Tally:
    """Per job, over every engine: containers started, the most running at once, clean exits."""

    def __init__(self) -> None:
        self.starts: Counter = Counter()
        self.running: Counter = Counter()
        self.peak: Counter = Counter()
        self.completions: Counter = Counter()
        self.lock = threading.Lock()

    def count(self, event: dict) -> None:
        attributes = event["Actor"]["Attributes"]
        job = attributes.get("io.longshore.job")
        with self.lock:
            if event.get("status") == "start":
                self.starts[job] += 1
                self.running[job] += 1
                self.peak[job] = max(self.peak[job], self.running[job])
            else:
                self.running[job] = max(self.running[job] - 1, 0)
                if attributes.get("exitCode") == "0":
                    self.completions[job] += 1


class EngineEvents(threading.Thread):
    """Follows one engine's container events for this run into a shared tally, across engine restarts."""

    def __init__(self, installation: str, tally: Tally, docker_host: str | None = None):
        super().__init__(daemon=True)
        self.installation, self.tally, self.docker_host = installation, tally, docker_host
        self.stopping = threading.Event()

    def run(self) -> None:
        import docker

        since = time.time()
        seen: set = set()
        while not self.stopping.is_set():
            try:
                client = docker.APIClient(base_url=self.docker_host or "unix:///var/run/docker.sock",
                                          version="auto", timeout=5)
                stream = client.events(since=int(since) - 1, decode=True, filters={
                    "type": "container", "event": ["start", "die"],
                    "label": f"io.longshore.installation={self.installation}"})
                for event in stream:
                    key = (event["id"], event.get("status"), event.get("timeNano"))
                    if key not in seen:
                        seen.add(key)
                        since = max(since, event["time"])
                        self.tally.count(event)
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


def freeze_worker(workers: list[Worker]) -> None:
    """A worker frozen (SIGSTOP) well past the lost window while its jobs run, then resumed."""
    os.killpg(workers[-1].process.pid, signal.SIGSTOP)
    time.sleep(3 * float(ENV["LONGSHORE_WORKER_LOST_SECONDS"]))
    os.killpg(workers[-1].process.pid, signal.SIGCONT)


def restart_rabbitmq(workers: list[Worker]) -> None:
    """RabbitMQ stopped and started under load."""
    sh("rabbitmqctl", "stop_app")
    time.sleep(2)
    sh("rabbitmqctl", "start_app")


def rabbitmq_down(workers: list[Worker]) -> None:
    """RabbitMQ down for minutes (--outage-seconds), longer than every publish and retry budget."""
    sh("rabbitmqctl", "stop_app")
    time.sleep(OUTAGE["seconds"])
    sh("rabbitmqctl", "start_app")


def _postgres(action: str) -> None:
    version, cluster = sh("pg_lsclusters", "--no-header").stdout.split()[:2]
    sh("pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, action, *(["-m", "fast"] if action != "start"
                                                                                  else []))


def restart_postgres(workers: list[Worker]) -> None:
    """PostgreSQL restarted under load."""
    _postgres("restart")


def postgres_down(workers: list[Worker]) -> None:
    """PostgreSQL down for minutes (--outage-seconds), longer than the lost window and every retry budget."""
    _postgres("stop")
    time.sleep(OUTAGE["seconds"])
    _postgres("start")


def restart_docker(workers: list[Worker]) -> None:
    """The Docker engine restarted with jobs running (its containers die with it)."""
    pid = Path("/var/run/docker.pid").read_text().strip()  # the first engine only, not a second one
    sh("kill", "-TERM", pid, check=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.2)
    services("docker")


def registry_down(workers: list[Worker]) -> None:
    """The image registry down while jobs pull, back after a few seconds."""
    sh("pkill", "-f", "docker-registry serve", check=False)
    time.sleep(5)
    services("registry")


#: fault → (how to inject it, the stack its jobs use, how long each job sleeps). The engine
#: restart's jobs outlive the engine's shutdown grace, so their containers die with it; the
#: outages' jobs are long enough that some run through the outage while others wait.
FAULTS = {
    "none": (no_fault, "busybox", 2),
    "sigkill-worker": (sigkill_worker, "busybox", 2),
    "worker-frozen": (freeze_worker, "busybox", 8),
    "rabbitmq-restart": (restart_rabbitmq, "busybox", 2),
    "postgres-restart": (restart_postgres, "busybox", 2),
    "docker-restart": (restart_docker, "busybox", 30),
    "registry-down": (registry_down, "fresh", 2),
    "rabbitmq-down": (rabbitmq_down, "busybox", 20),
    "postgres-down": (postgres_down, "busybox", 20),
}
#: The long outages: run only when named with --only.
LONG_FAULTS = {"rabbitmq-down", "postgres-down"}
#: Faults after which a job may legitimately have started twice (its first container died with the engine).
RESTARTING_FAULTS = {"docker-restart"}


def run_fault(name: str, jobs: int, workers: list[Worker], tally: Tally, engines: list) -> dict:
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
        # Every job is in before the fault: some run through it, the others wait through it.
        submitter.start()
        submitter.join()
        _wait_running(runtime, ids)
        injector = threading.Thread(target=inject, args=(workers,))
        injector.start()
    submitter.join()
    injector.join()

    deadline = time.monotonic() + 300
    statuses: Counter = Counter()
    while time.monotonic() < deadline:
        _safely(run_janitor_pass, runtime)
        statuses = Counter(_safely(lambda: [runtime.store.jobs.get(i).status.value for i in ids], default=[]) or [])
        if sum(statuses.values()) == len(ids) and not (statuses["queued"] or statuses["running"]):
            break
        time.sleep(1)
    leaked = _leaked_after_grace(runtime, engines)
    for job_id in ids:
        job = _safely(runtime.store.jobs.get, job_id)
        if job is not None and (job.status.value != "succeeded" or tally.starts[job_id] != 1):
            steps = [(a.number, a.status.value, a.worker, a.error) for a in runtime.store.jobs.attempts(job_id)]
            print(f"  {name}: job {job_id} {job.status.value} starts={tally.starts[job_id]}: {job.error} "
                  f"attempts={steps}", flush=True)
    attempts = [a for i in ids for a in runtime.store.jobs.attempts(i)]
    return {
        "fault": name,
        "jobs": len(ids),
        "succeeded": statuses["succeeded"],
        "failed": sum(n for s, n in statuses.items() if s not in ("succeeded", "queued", "running")),
        "lost": len(ids) - sum(statuses.values()),
        "stuck": statuses["queued"] + statuses["running"],
        "leaked": leaked,
        "at once": sum(1 for i in ids if tally.peak[i] > 1),
        "restarted": sum(1 for i in ids if tally.starts[i] > 1),
        "starts": sum(tally.starts[i] for i in ids),
        "clean exits": sum(tally.completions[i] for i in ids),
        "infra retries": sum(a.infra_retries for a in attempts),
        "redeliveries": sum(a.redeliveries for a in attempts),
        "redrives": sum(a.redrives for a in attempts),
        "extra attempts": len(attempts) - len(ids),
        "seconds": round(time.monotonic() - started),
    }


def _submit_until_accepted(longshore, stack: str, image: str | None, command: list[str]) -> str:
    """Submit as a careful client does: a store outage refuses the job (nothing is kept), so try again."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return longshore.submit(stack, command, image=image, timeout=600).id
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


def _leaked_after_grace(runtime, engines: list) -> int:
    from longshore.service.janitor import run_janitor_pass

    deadline = time.monotonic() + 30
    while True:
        _safely(run_janitor_pass, runtime)
        left = [_safely(engine.managed_containers, runtime.settings.installation, default=None) for engine in engines]
        if all(found == [] for found in left) or time.monotonic() > deadline:
            return sum(len(found or []) for found in left)
        time.sleep(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--only", help=f"comma-separated faults among: {', '.join(FAULTS)}")
    parser.add_argument("--outage-seconds", type=float, default=150.0)
    parser.add_argument("--engines", type=int, choices=(1, 2), default=1,
                        help="2: the second worker drives a second Docker engine (scripts/services.sh docker2)")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else [f for f in FAULTS if f not in LONG_FAULTS]
    unknown = set(chosen) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
    OUTAGE["seconds"] = args.outage_seconds

    os.environ.update(ENV)
    services("docker", "rabbitmq", "postgres", "registry", *(["docker2"] if args.engines == 2 else []))
    sh("rabbitmqctl", "add_vhost", VHOST)
    sh("rabbitmqctl", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    sh("su", "postgres", "-c", f"psql -q -c 'CREATE DATABASE {DATABASE} OWNER longshore'")
    sh("longshore", "db", "upgrade")
    if "registry-down" in chosen:
        sh("docker", "tag", "longshore/busybox:1", REGISTRY_IMAGE)
        sh("docker", "push", REGISTRY_IMAGE)
        sh("docker", "rmi", REGISTRY_IMAGE)
    from longshore.engine import DockerEngine
    from longshore.service.runtime import get_runtime

    installation = get_runtime().settings.installation
    tally = Tally()
    hosts = [None] + ([DOCKER2_HOST] if args.engines == 2 else [])
    followers = [EngineEvents(installation, tally, host) for host in hosts]
    for follower in followers:
        follower.start()
    engines = [get_runtime().engine] + [DockerEngine(host, timeout_seconds=30) for host in hosts[1:]]
    workers = [Worker(0).start(), Worker(1, hosts[-1]).start()]
    rows = []
    try:
        time.sleep(3)
        for name in chosen:
            rows.append(run_fault(name, args.jobs, workers, tally, engines))
            print(_format_row(rows[-1]), flush=True)
    finally:
        for follower in followers:
            follower.stopping.set()
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
           if r["lost"] or r["stuck"] or r["leaked"] or r["failed"] or r["at once"] or r["succeeded"] != r["jobs"]
           or (r["restarted"] and r["fault"] not in RESTARTING_FAULTS)]
    if bad:
        print(f"FAILED: {', '.join(bad)}; worker logs in {ENV['LONGSHORE_HOME']}")
        return 1
    print("every job ended succeeded; none ran in two containers at once; nothing lost, stuck or leaked")
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


COLUMNS = ["fault", "jobs", "succeeded", "failed", "lost", "stuck", "leaked", "at once", "restarted", "starts",
           "clean exits", "infra retries", "redeliveries", "redrives", "extra attempts", "seconds"]


def _format_row(row: dict) -> str:
    return " ".join(f"{k}={row[k]}" for k in COLUMNS)


def _table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
