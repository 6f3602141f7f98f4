"""What the benchmarks share: a throwaway distributed installation (its own RabbitMQ vhost and PostgreSQL
database, one worker) and percentiles. Needs the services of scripts/services.sh."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
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
def installation(stacks: list[str], slots: int = 2) -> Iterator[None]:
    """Point this process at a fresh vhost and database, run one worker for `stacks`, and remove it all after."""
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
    subprocess.run(["su", "postgres", "-c", f"psql -q -c 'CREATE DATABASE {database} OWNER longshore'"], check=True)
    subprocess.run(["longshore", "db", "upgrade"], check=True, capture_output=True)
    # LONGSHORE_BENCH_WORKER_LOG=FILE keeps the worker's log (at INFO) to see where time went.
    log_path = os.environ.get("LONGSHORE_BENCH_WORKER_LOG")
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    worker = subprocess.Popen(["longshore", "worker", "--stacks", ",".join(stacks), "--slots", str(slots),
                               "--loglevel", "INFO" if log_path else "WARNING"],
                              start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        stopping = time.monotonic()
        os.kill(worker.pid, signal.SIGTERM)  # the main process only, as `docker stop` does
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
            print("the worker did not stop within 30 s of SIGTERM: killed", file=sys.stderr)
        if os.environ.get("LONGSHORE_BENCH_WORKER_LOG"):
            print(f"worker stopped in {time.monotonic() - stopping:.1f} s", file=sys.stderr)
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost])
        subprocess.run(["su", "postgres", "-c", f"psql -q -c 'DROP DATABASE {database} WITH (FORCE)'"])
        shutil.rmtree(home, ignore_errors=True)
