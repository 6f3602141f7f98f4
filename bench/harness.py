"""What the benchmarks share: a throwaway distributed installation (its own RabbitMQ vhost and PostgreSQL
database, one worker) and percentiles. Needs the services of scripts/services.sh."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@contextlib.contextmanager
def installation(stacks: list[str], slots: int = 2) -> Iterator[int]:
    """Point this process at a fresh vhost and database, run one worker for `stacks` (its pid is yielded), and
    remove it all after."""
    _forget_runtime()
    run_id = uuid.uuid4().hex[:8]
    vhost, database = f"longshore-bench-{run_id}", f"longshore_bench_{run_id}"
    home = tempfile.mkdtemp(prefix="longshore-bench-")
    os.environ.update({
        "LONGSHORE_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        "LONGSHORE_DATABASE_URL": f"postgresql://longshore:longshore@127.0.0.1:5432/{database}",
        "LONGSHORE_STACKS": str(REPO / "workers" / "stacks.toml"),
        "LONGSHORE_HOME": home,
    })
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True)
    try:
        with throwaway_database(database):
            subprocess.run(["longshore", "db", "upgrade"], check=True, capture_output=True)
            try:
                with worker_process(stacks, slots) as pid:
                    yield pid
            finally:
                _close_runtime()  # before its database goes (its listener would connect to it twice a second)
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost])
        shutil.rmtree(home, ignore_errors=True)


def true_jobs(count: int, *, at_once: bool) -> None:
    """Run `count` busybox `true` jobs through the current installation: all submitted first, then waited on (a
    burst), or each waited on before the next."""
    import longshore

    if at_once:
        for handle in [longshore.submit("busybox", ["true"]) for _ in range(count)]:
            handle.wait(timeout=600)
    else:
        for _ in range(count):
            longshore.submit("busybox", ["true"]).wait(timeout=60)


@contextlib.contextmanager
def throwaway_database(name: str | None = None) -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL is yielded), dropped after."""
    name = name or f"longshore_bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["su", "postgres", "-c", f"psql -q -c 'CREATE DATABASE {name} OWNER longshore'"], check=True)
    try:
        yield f"postgresql://longshore:longshore@127.0.0.1:5432/{name}"
    finally:
        subprocess.run(["su", "postgres", "-c", f"psql -q -c 'DROP DATABASE {name} WITH (FORCE)'"])


@contextlib.contextmanager
def worker_process(stacks: list[str], slots: int, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run a worker of the current installation (its pid is yielded) and stop it after; `env`: more of its
    environment (say, a DOCKER_HOST of its own)."""
    # LONGSHORE_BENCH_WORKER_LOG=FILE keeps the worker's log (at INFO) to see where time went.
    log_path = os.environ.get("LONGSHORE_BENCH_WORKER_LOG")
    log = open(log_path, "a") if log_path else subprocess.DEVNULL
    # LONGSHORE_BENCH_WORKER_ARGS="--pool threads" (say) runs the worker with those options too.
    extra = os.environ.get("LONGSHORE_BENCH_WORKER_ARGS", "").split()
    worker = subprocess.Popen(["longshore", "worker", "--stacks", ",".join(stacks), "--slots", str(slots),
                               "--loglevel", "INFO" if log_path else "WARNING", *extra],
                              start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, **(env or {})})
    try:
        yield worker.pid
    finally:
        stopping = time.monotonic()
        os.kill(worker.pid, signal.SIGTERM)  # the main process only, as `docker stop` does
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
            print("the worker did not stop within 30 s of SIGTERM: killed", file=sys.stderr)
        if log_path:
            print(f"worker stopped in {time.monotonic() - stopping:.1f} s", file=sys.stderr)


def _close_runtime() -> None:
    """This process's Longshore lets go of the installation's store, if it used one."""
    get_runtime = getattr(sys.modules.get("longshore.service.runtime"), "get_runtime", None)
    if get_runtime is not None and get_runtime.cache_info().currsize:
        get_runtime().store.close()


def _forget_runtime() -> None:
    """A second installation in one process: this process's Longshore must read its settings again."""
    for module, name in (("longshore.service.runtime", "get_runtime"), ("longshore.settings", "get_settings")):
        cached = getattr(sys.modules.get(module), name, None)
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()


@contextlib.contextmanager
def embedded() -> Iterator[None]:
    """Point this process at a fresh embedded default (SQLite in a temporary home, an in-process worker)."""
    home = tempfile.mkdtemp(prefix="longshore-bench-")
    for name in ("LONGSHORE_BROKER_URL", "LONGSHORE_DATABASE_URL"):
        os.environ.pop(name, None)
    os.environ.update({"LONGSHORE_HOME": home, "LONGSHORE_STACKS": str(REPO / "workers" / "stacks.toml")})
    try:
        yield
    finally:
        shutil.rmtree(home, ignore_errors=True)


# -- the baseline: `docker run` of the container Longshore makes for a busybox job -------------------------

IMAGE = "longshore/busybox:1"
SCRATCH = "rw,exec,nosuid,nodev,size=67108864,nr_inodes=16384,mode=1777"
#: `docker run` flags for the busybox stack's defaults, as engine/container.py sets them: `same_container()`
#: compares the two HostConfigs so a change on either side cannot go unnoticed.
DOCKER_RUN_FLAGS = [
    "--network", "none", "--memory", "128m", "--memory-swap", "128m", "--cpus", "0.5", "--pids-limit", "256",
    "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", "65534:65534", "--read-only",
    "--tmpfs", f"/longshore/task:{SCRATCH}", "--tmpfs", f"/tmp:{SCRATCH}", "--shm-size", "64m",
    "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", "--ulimit", "core=0:0",
    "--ulimit", "fsize=68157440:68157440", "--init", "--oom-score-adj", "500", "--ipc", "private",
    "--log-driver", "local", "--log-opt", "max-size=8388608", "--log-opt", "max-file=2", "--log-opt", "compress=false",
    "--mount", "type=volume,target=/longshore", "--workdir", "/longshore/task",
]
COMPARED = ("NetworkMode", "Memory", "MemorySwap", "NanoCpus", "PidsLimit", "CapDrop", "SecurityOpt", "ReadonlyRootfs",
            "Tmpfs", "ShmSize", "Ulimits", "Init", "OomScoreAdj", "IpcMode", "LogConfig", "Runtime")


def docker_run(*command: str, remove: bool = True) -> list[str]:
    """The baseline's command line: the same container as a busybox-stack job running `command`."""
    return ["docker", "run", *(["--rm"] if remove else ["-d"]), *DOCKER_RUN_FLAGS, IMAGE, *command]


def same_container() -> list[str]:
    """Differences between the HostConfig of a Longshore busybox job and of `docker_run()` (empty: none).
    Call it inside `installation()`."""
    import json

    import longshore

    job = longshore.submit("busybox", ["sleep", "30"])
    deadline = time.monotonic() + 30
    ours = ""
    while not ours and time.monotonic() < deadline:
        ours = subprocess.run(["docker", "ps", "-q", "--filter", f"label=io.longshore.job={job.id}"],
                              capture_output=True, text=True).stdout.strip()
        time.sleep(0.1)
    theirs = subprocess.run(docker_run("sleep", "30", remove=False), capture_output=True, text=True,
                            check=True).stdout.strip()
    try:
        ours_config, theirs_config = (json.loads(subprocess.run(["docker", "inspect", cid], capture_output=True,
                                                                text=True, check=True).stdout)[0]["HostConfig"]
                                      for cid in (ours, theirs))
    finally:
        job.cancel()
        subprocess.run(["docker", "rm", "-f", "-v", theirs], capture_output=True)
    ours_config["Ulimits"], theirs_config["Ulimits"] = (sorted(config.get("Ulimits") or [], key=lambda u: u["Name"])
                                                        for config in (ours_config, theirs_config))
    return [f"{key}: longshore {ours_config.get(key)!r}, docker run {theirs_config.get(key)!r}"
            for key in COMPARED if ours_config.get(key) != theirs_config.get(key)]


@contextlib.contextmanager
def http_server(argv: list[str], env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """Run `argv` ("{port}" in it replaced by a free port) until it answers HTTP, then stop it: (URL, pid)."""
    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([arg.replace("{port}", str(port)) for arg in argv], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True, env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(base + "/", timeout=2)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(argv[:2])} … did not start") from None
                time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(20)


# -- CPU accounting -----------------------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int, *, with_children: bool = True) -> float:
    """Seconds of CPU a process used, and (with_children) that of the children it has reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    used = fields[11:15] if with_children else fields[11:13]  # utime stime [cutime cstime]
    return sum(int(value) for value in used) / TICKS


def pids_named(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def tree_cpu(root: int) -> float:
    """A process's CPU with its reaped children's, and its live children's own."""
    children = subprocess.run(["pgrep", "-P", str(root)], capture_output=True, text=True).stdout.split()
    return process_cpu(root) + sum(tree_cpu(int(child)) for child in children)


class CpuMeter:
    """CPU seconds of named groups of processes, between `start()` and `stop()`. The engine's group
    (dockerd, containerd) includes the shims and runc: containerd reaps them (it is their subreaper)."""

    def __init__(self, groups: dict[str, list[int]]):
        self.groups, self.before, self.used = groups, {}, {}

    def _now(self) -> dict[str, float]:
        return {name: sum(tree_cpu(pid) for pid in pids) for name, pids in self.groups.items()}

    def start(self) -> None:
        self.before = self._now()

    def stop(self) -> dict[str, float]:
        after = self._now()
        self.used = {name: after[name] - self.before[name] for name in self.groups}
        return self.used


def engine_pids() -> list[int]:
    """The first engine's dockerd and containerd (not the second engine's)."""
    return [pid for pid in pids_named("^dockerd --host unix:///var/run/docker.sock") +
            pids_named("^containerd --config /var/run/docker/containerd")]


def broker_messages() -> float | None:
    """Messages RabbitMQ has received from publishers so far (all vhosts), from its Prometheus endpoint;
    None when that is not reachable."""
    from urllib.request import urlopen

    try:
        text = urlopen("http://127.0.0.1:15692/metrics", timeout=5).read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("rabbitmq_global_messages_received_total"):
            return float(line.rsplit(" ", 1)[1])
    return None


def store_and_broker_pids() -> dict[str, list[int]]:
    return {"rabbitmq": pids_named("beam.smp"), "postgres": pids_named("^/usr/lib/postgresql/.*/bin/postgres")}
