"""Bursts: N jobs at once through the distributed path (RabbitMQ + PostgreSQL + one worker of S slots) against
`seq N | xargs -P S docker run --rm …` of the same container, in one run on one engine; wall time, and CPU per
job of the platform's processes (the worker, RabbitMQ, PostgreSQL and the submitting client; also without the
client, as the issue counts it) and of the engine (dockerd and containerd with its shims and runc), from the
processes' own accounting.

    python3 bench/burst.py [--jobs 200] [--slots 4 8] [--seconds 0] [--repeat 1]

`--seconds 1` runs `sleep 1` jobs instead of `true` (slot scheduling matters more than CPU). The machine's
other load counts too: run it on a quiet machine, and compare ratios, not absolute times. `--repeat N` runs N
pairs per slot count, alternating which of the two goes first, and prints each pair's ratios with their medians:
on a shared machine one pair's ratio moves by ±0.1. Each burst also says how busy the machine's cores were
and the ratio of all the CPU each side used per job (the platform's with its client, or the docker CLI's, and
the engine's): when the cores are saturated the wall ratio follows that one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from harness import (CpuMeter, broker_messages, docker_run, engine_pids, installation, same_container,
                     store_and_broker_pids)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--slots", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--seconds", type=float, default=0, help="each job sleeps this long (0: `true`)")
    parser.add_argument("--repeat", type=int, default=1, help="pairs of bursts per slot count")
    args = parser.parse_args()
    command = ["sleep", f"{args.seconds:g}"] if args.seconds else ["true"]
    rows = []
    for slots in args.slots:
        for pair in range(args.repeat):
            ours_first = pair % 2 == 0
            theirs = None if ours_first else _docker_burst(args.jobs, slots, command)
            with installation(["busybox"], slots=slots) as worker_pid:
                differences = same_container()
                if differences:
                    print("the baseline's container differs from Longshore's:\n  " + "\n  ".join(differences),
                          file=sys.stderr)
                    return 1
                ours = _longshore_burst(worker_pid, args.jobs, command)
            theirs = theirs or _docker_burst(args.jobs, slots, command)
            rows.append((slots, ours, theirs))
            print(f"  {slots} slots, pair {pair + 1} ({'Longshore' if ours_first else 'docker run'} first, load "
                  f"{os.getloadavg()[0]:.1f}): ratio {ours['wall'] / theirs['wall']:.2f}", file=sys.stderr, flush=True)
    print(f"bursts of {args.jobs} `{' '.join(command)}` jobs, same engine, same container (HostConfig compared)")
    print(f"{'slots':>5} {'longshore s':>12} {'docker run s':>13} {'ratio':>6}  "
          f"{'platform ms/job':>15} {'engine ms/job (ours/docker run)':>32}")
    for slots, ours, theirs in rows:
        engine_ratio = ours["engine"] / theirs["engine"]
        print(f"{slots:>5} {ours['wall']:>12.1f} {theirs['wall']:>13.1f} {ours['wall'] / theirs['wall']:>6.2f}  "
              f"{ours['platform']:>15.1f} {ours['engine']:>14.1f} / {theirs['engine']:<6.1f} ({engine_ratio:.2f}×)")
        print(f"      CPU per job, all of it (platform or CLI, and engine): {ours['platform'] + ours['engine']:.1f} / "
              f"{theirs['platform'] + theirs['engine']:.1f} ({_cpu_ratio(ours, theirs):.2f}×); the cores busy "
              f"{ours['busy']:.0%} / {theirs['busy']:.0%}")
        print(f"      platform by process, ms/job (without the client: "
              f"{ours['platform'] - ours['parts']['client']:.1f}, the issue's worker + RabbitMQ + PostgreSQL): "
              + "  ".join(f"{k}={v:.1f}" for k, v in ours["parts"].items())
              + f"   docker CLI {theirs['platform']:.1f}"
              + ("" if ours["messages"] is None else f"   broker messages/job {ours['messages']:.1f}"))
    if args.repeat > 1:
        print(f"medians of {args.repeat} pairs (range):")
        for slots in args.slots:
            pairs = [(ours, theirs) for each, ours, theirs in rows if each == slots]
            _median_line(slots, "wall ratio", [ours["wall"] / theirs["wall"] for ours, theirs in pairs])
            _median_line(slots, "platform ms/job", [ours["platform"] for ours, _ in pairs])
            _median_line(slots, "  w/o client", [ours["platform"] - ours["parts"]["client"] for ours, _ in pairs])
            _median_line(slots, "engine ratio", [ours["engine"] / theirs["engine"] for ours, theirs in pairs])
            _median_line(slots, "all CPU ratio", [_cpu_ratio(ours, theirs) for ours, theirs in pairs])
    print("goals: wall ratio ≤ 1.0, platform ≤ 20 ms/job, engine ≤ 1.1× docker run's")
    return 0


def _median_line(slots: int, what: str, values: list[float]) -> None:
    print(f"{slots:>5} slots  {what:16} {statistics.median(values):6.2f}  ({min(values):.2f}–{max(values):.2f})")


def _cpu_ratio(ours: dict, theirs: dict) -> float:
    return (ours["platform"] + ours["engine"]) / (theirs["platform"] + theirs["engine"])


def _machine_busy() -> float:
    """Seconds of CPU the machine's cores have been busy since boot (all processes, the kernel's too)."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # not idle, not waiting for I/O


def _longshore_burst(worker_pid: int, jobs: int, command: list[str]) -> dict:
    import longshore

    for _ in range(3):  # warm: the worker's pool, the image, the connections
        longshore.submit("busybox", command).wait(timeout=60)
    meter = CpuMeter({"worker": [worker_pid], **store_and_broker_pids(), "engine": engine_pids()})
    client_before, messages_before = sum(os.times()[:2]), broker_messages()
    meter.start()
    busy_before, started = _machine_busy(), time.perf_counter()
    handles = [longshore.submit("busybox", command) for _ in range(jobs)]
    ended = [handle.wait(timeout=600) for handle in handles]
    wall = time.perf_counter() - started
    busy = (_machine_busy() - busy_before) / wall / os.cpu_count()
    used = meter.stop()
    used["client"] = sum(os.times()[:2]) - client_before
    messages_after = broker_messages()
    failed = [job.id for job in ended if job.status.value != "succeeded"]
    assert not failed, f"{len(failed)} jobs did not succeed"
    parts = {name: used[name] * 1000 / jobs for name in ("worker", "rabbitmq", "postgres", "client")}
    messages = None if None in (messages_before, messages_after) else (messages_after - messages_before) / jobs
    return {"wall": wall, "platform": sum(parts.values()), "engine": used["engine"] * 1000 / jobs, "parts": parts,
            "messages": messages, "busy": busy}


def _docker_burst(jobs: int, slots: int, command: list[str]) -> dict:
    meter = CpuMeter({"engine": engine_pids()})
    children_before = sum(os.times()[2:4])
    meter.start()
    busy_before, started = _machine_busy(), time.perf_counter()
    subprocess.run(["xargs", "-P", str(slots), "-I{}", *docker_run(*command)], input="\n".join(map(str, range(jobs))),
                   text=True, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    busy = (_machine_busy() - busy_before) / wall / os.cpu_count()
    used = meter.stop()
    cli = sum(os.times()[2:4]) - children_before
    return {"wall": wall, "platform": cli * 1000 / jobs, "engine": used["engine"] * 1000 / jobs, "busy": busy}


if __name__ == "__main__":
    sys.exit(main())
