"""The fault-injection suite (bench/faults.py) at a size that fits CI.

It restarts RabbitMQ, PostgreSQL, the Docker engine and the registry on this
machine, SIGKILLs a worker and freezes another (on a second engine), each under a
load of jobs, then requires that no job was lost, failed, left stuck, ran in two
containers at once, or left a container behind. The outages of minutes run in the
long suite: `python3 bench/faults.py --only rabbitmq-down,postgres-down --engines 2`.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from support.services import REPO


@pytest.mark.serial
@pytest.mark.timeout(1200)
def test_every_fault_loses_nothing_runs_nothing_twice_and_leaks_nothing(docker_engine, second_engine, rabbitmq,
                                                                        postgres, registry):
    done = subprocess.run([sys.executable, str(REPO / "bench" / "faults.py"), "--jobs", "8", "--engines", "2"],
                          capture_output=True, text=True, timeout=1100)
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "every job ended succeeded; none ran in two containers at once" in done.stdout
