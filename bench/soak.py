"""Steady state: a worker's memory, open files and store connections over many jobs. Runs N `true` jobs
through one worker of S slots (at most 2 × S waiting at a time) and samples, every tenth of the run, the
resident memory of the worker and its pool processes, their open file descriptors, and the store
connections of the run's database. The first tenth warms up; growth is measured from there to the end.

    python3 bench/soak.py [--jobs 10000] [--slots 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import installation


def tree(root: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(root)], capture_output=True, text=True).stdout.split()
    return [root, *(pid for child in children for pid in tree(int(child)))]


def resident_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def open_files(pids: list[int]) -> int:
    return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in pids if os.path.isdir(f"/proc/{pid}/fd"))


def store_connections(database: str) -> int:
    out = subprocess.run(["su", "postgres", "-c", f"psql -tA -c \"SELECT count(*) FROM pg_stat_activity "
                                                  f"WHERE datname = '{database}'\""], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--slots", type=int, default=4)
    args = parser.parse_args()
    samples = []
    with installation(["busybox"], slots=args.slots) as worker_pid:
        import longshore

        database = os.environ["LONGSHORE_DATABASE_URL"].rsplit("/", 1)[1]
        waiting: list = []
        started, done = time.monotonic(), 0
        step = max(1, args.jobs // 10)
        for number in range(args.jobs):
            waiting.append(longshore.submit("busybox", ["true"]))
            if len(waiting) >= 2 * args.slots:
                finished = waiting.pop(0).wait(timeout=120)
                assert finished.status.value == "succeeded", finished.error
                done += 1
            if (number + 1) % step == 0:
                pids = tree(worker_pid)
                samples.append((number + 1, resident_mib(pids), open_files(pids), store_connections(database)))
        for handle in waiting:
            handle.wait(timeout=120)
    elapsed = time.monotonic() - started
    print(f"{args.jobs} jobs at {args.slots} slots in {elapsed:.0f} s ({args.jobs / elapsed:.1f} jobs/s)")
    print(f"{'jobs':>7} {'worker RSS MiB':>15} {'open fds':>9} {'store conns':>12}")
    for jobs, rss, fds, conns in samples:
        print(f"{jobs:>7} {rss:>15.1f} {fds:>9} {conns:>12}")
    first, last = samples[0], samples[-1]
    growth = (last[1] - first[1]) / first[1]
    print(f"memory from the first tenth to the end: {growth:+.1%} (goal within ±10 %); open fds "
          f"{first[2]} → {last[2]}; store connections {first[3]} → {last[3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
