"""What an idle installation costs: CPU per second of one worker with nothing to do (after a few jobs), of
RabbitMQ, PostgreSQL and the engine meanwhile, the worker's by thread, and the time of one job submitted
after the idle spell (taking work must wake what idles).

    python3 bench/idle.py [--seconds 40] [--slots 4]

Threads are named from py-spy's dump when py-spy is installed (root, ptrace); their CPU is the kernel's
account (/proc/PID/task/TID/schedstat). Compare runs of two clones: the machine's other load moves the rest.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

from harness import CpuMeter, engine_pids, installation, store_and_broker_pids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--slots", type=int, default=4)
    args = parser.parse_args()
    with installation(["busybox"], slots=args.slots) as worker_pid:
        import longshore

        for _ in range(3):  # warm, then let the worker settle into idling
            longshore.submit("busybox", ["true"]).wait(timeout=60)
        time.sleep(3)
        names = _thread_names(worker_pid)
        meter = CpuMeter({"worker": [worker_pid], **store_and_broker_pids(), "engine": engine_pids()})
        threads_before = _thread_cpu(worker_pid)
        meter.start()
        time.sleep(args.seconds)
        used = meter.stop()
        threads_after = _thread_cpu(worker_pid)
        started = time.perf_counter()
        longshore.submit("busybox", ["true"]).wait(timeout=60)
        first_job_ms = (time.perf_counter() - started) * 1000
    print(f"idle for {args.seconds:g} s, CPU per second: "
          + "  ".join(f"{name}={seconds * 1000 / args.seconds:.2f} ms" for name, seconds in used.items()))
    by_thread = sorted(((after - threads_before.get(tid, 0)) / 1e6 / args.seconds, names.get(tid, str(tid)))
                       for tid, after in threads_after.items())
    print("the worker's main process by thread, ms per second: "
          + "  ".join(f"{name}={ms:.2f}" for ms, name in reversed(by_thread) if ms >= 0.05))
    print(f"one `true` job submitted after the idle spell: {first_job_ms:.0f} ms (submit to finished)")
    return 0


def _thread_cpu(pid: int) -> dict[int, int]:
    """Nanoseconds on a CPU so far, by thread of `pid`."""
    spent = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as schedstat:
                spent[int(tid)] = int(schedstat.read().split()[0])
        except OSError:  # the thread ended meanwhile
            continue
    return spent


def _thread_names(pid: int) -> dict[int, str]:
    """Python's names of the process's threads, from py-spy's dump (none without py-spy)."""
    if shutil.which("py-spy") is None:
        return {}
    dump = subprocess.run(["py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True).stdout
    return {int(tid): name for tid, name in re.findall(r'^Thread (\d+) \(\w+\): "(.*)"$', dump, re.M)}


if __name__ == "__main__":
    sys.exit(main())
