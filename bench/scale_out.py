"""Scale out: a burst on one worker and its Docker engine, then the same burst on two workers on two engines
(the second a `dockerd` of its own on this machine, standing for a second host: scripts/services.sh docker2),
in one run, through the distributed path. Prints both wall times, the speed-up, how the jobs split between
the engines, and how busy the machine's cores were: on one machine both engines share its cores, so a burst
of short jobs is bounded by them, while a burst of 1-second jobs is bounded by slots.

    python3 bench/scale_out.py [--jobs 200] [--slots 4] [--seconds 0 1]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

from harness import installation, worker_process

SECOND_ENGINE = "unix:///var/run/longshore-docker2.sock"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--slots", type=int, default=4, help="each worker's")
    parser.add_argument("--seconds", type=float, nargs="+", default=[0, 1],
                        help="each job sleeps this long (0: `true`)")
    args = parser.parse_args()
    rows = []
    for seconds in args.seconds:
        command = ["sleep", f"{seconds:g}"] if seconds else ["true"]
        with installation(["busybox"], slots=args.slots):
            one = _burst(args.jobs, command)
            with worker_process(["busybox"], args.slots, env={"DOCKER_HOST": SECOND_ENGINE}):
                _wait_for_workers(2)
                two = _burst(args.jobs, command)
        rows.append((" ".join(command), one, two))
    cores = os.cpu_count()
    print(f"bursts of {args.jobs} jobs, {args.slots} slots per worker, this machine's {cores} cores shared by both "
          "engines")
    print(f"{'job':>8} {'1 worker s':>11} {'2 workers s':>12} {'speed-up':>9}  {'jobs per engine (2 workers)':>28}"
          f"  {'cores busy (1 / 2)':>18}")
    for command, one, two in rows:
        split = " / ".join(str(n) for n in sorted(two["engines"].values(), reverse=True))
        print(f"{command:>8} {one['wall']:>11.1f} {two['wall']:>12.1f} {one['wall'] / two['wall']:>8.2f}×  {split:>28}"
              f"  {one['busy']:>7.0%} / {two['busy']:<7.0%}")
    print(f"goal: two workers on two engines finish faster than one; the limit here is the {cores} cores both "
          "engines and the platform share (busy near 100% for short jobs)")
    return 0


def _wait_for_workers(count: int, timeout: float = 60) -> None:
    from longshore.service.runtime import get_runtime

    store = get_runtime().store
    deadline = time.monotonic() + timeout
    while len(store.workers.live(seen_within_seconds=30)) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"fewer than {count} workers came up within {timeout:.0f} s")
        time.sleep(0.5)


def _burst(jobs: int, command: list[str]) -> dict:
    import longshore
    from longshore.service.runtime import get_runtime

    for _ in range(6):  # warm: each worker's pool, the images, the connections
        longshore.submit("busybox", command).wait(timeout=60)
    busy_before, started = _cpu_jiffies(), time.perf_counter()
    handles = [longshore.submit("busybox", command) for _ in range(jobs)]
    ended = [handle.wait(timeout=900) for handle in handles]
    wall = time.perf_counter() - started
    busy, total = (after - before for after, before in zip(_cpu_jiffies(), busy_before))
    failed = [job.id for job in ended if job.status.value != "succeeded"]
    assert not failed, f"{len(failed)} jobs did not succeed"
    engines = collections.Counter(get_runtime().store.jobs.attempt(handle.id, 1).engine for handle in handles)
    return {"wall": wall, "busy": busy / total if total else 0.0, "engines": engines}


def _cpu_jiffies() -> tuple[int, int]:
    """The machine's (busy, total) CPU time so far, all cores, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


if __name__ == "__main__":
    sys.exit(main())
