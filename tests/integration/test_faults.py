"""The fault-injection suite (bench/faults.py) at a size that fits CI.

It restarts RabbitMQ, PostgreSQL, the Docker engine and the registry on this
machine, and SIGKILLs a worker, each under a load of jobs, then requires that no
job was lost, run to completion twice, left stuck, or left a container behind.
"""

from __future__ import annotations

import subprocess
import sys

from support.services import REPO


def test_every_fault_loses_nothing_runs_nothing_twice_and_leaks_nothing(docker_engine, rabbitmq, postgres, registry):
    done = subprocess.run([sys.executable, str(REPO / "bench" / "faults.py"), "--jobs", "8"],
                          capture_output=True, text=True, timeout=900)
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "every job ended succeeded exactly once" in done.stdout
