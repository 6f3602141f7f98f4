"""Real `longshore worker` processes for tests, and the fixture that starts and stops them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from support.services import DISTRIBUTED_ENV


class WorkerProcess:
    """A real `longshore worker` in its own process, logging to a file."""

    def __init__(self, stacks: str, slots: int, log_dir: Path, name: str | None = None,
                 env: dict[str, str] | None = None, args: list[str] | None = None, prefix: list[str] | None = None):
        self.name = name or f"test-{stacks.replace(',', '-')}-{uuid.uuid4().hex[:6]}@{os.uname().nodename}"
        self.log_path = log_dir / f"{self.name}-{uuid.uuid4().hex[:4]}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [*(prefix or []), "longshore", "worker", "--stacks", stacks, "--slots", str(slots), "--name", self.name, *(args or [])],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **DISTRIBUTED_ENV, **(env or {})},
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30) -> "WorkerProcess":
        """Block until the worker logs that it is ready; fail with its log if it died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.log_path.read_text():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"worker {self.name} did not start:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        """Send `sig` to the worker and wait for it (SIGKILL to its process group after `timeout`)."""
        if self.process.poll() is None:
            # SIGTERM goes to the main process only, as `docker stop` and Kubernetes send it: Celery's warm
            # shutdown stops its own pool (a pool process that gets SIGTERM too can leave the main process
            # waiting for it). Other signals (SIGKILL, SIGSTOP) stand for the whole host or container.
            if sig == signal.SIGTERM:
                os.kill(self.process.pid, sig)
            else:
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()


@pytest.fixture
def start_worker(distributed, tmp_path):
    """Start workers by stack; all are stopped when the test ends."""
    started: list[WorkerProcess] = []

    def start(stacks: str, slots: int = 4, name: str | None = None, env: dict[str, str] | None = None,
              args: list[str] | None = None, prefix: list[str] | None = None) -> WorkerProcess:
        """`prefix`: a command the worker runs under (say, `unshare`)."""
        worker = WorkerProcess(stacks, slots, tmp_path, name, env, args, prefix).wait_ready()
        started.append(worker)
        return worker

    yield start
    _let_live_workers_reap(started)
    for worker in started:
        worker.stop()


def _let_live_workers_reap(workers: list[WorkerProcess], timeout: float = 15) -> None:
    """Removing a container is off a job's critical path: a test may end (its job ended) before its worker
    reaped the container. Give the workers still running a moment to, rather than stopping them first."""
    import docker

    names = [worker.name for worker in workers if worker.process.poll() is None]
    if not names:
        return
    client = docker.from_env()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
                client.containers.list(all=True, filters={"label": f"io.longshore.worker={name}", "status": "exited"})
                for name in names):
            time.sleep(0.2)
    finally:
        client.close()


@pytest.fixture
def background(distributed, tmp_path):
    """Start long-running helper processes (exporter, Flower, Prometheus, schedulers); all stopped at the end.
    Each logs to a file beside the test's: `process.log_path`."""
    started = []

    def start(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log_path = tmp_path / f"{Path(command[0]).name}-{len(started)}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                       env={**os.environ, **DISTRIBUTED_ENV, **(env or {})})
        process.log_path = log_path
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
