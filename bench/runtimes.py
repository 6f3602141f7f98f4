"""What gVisor costs: a job's latency on the gVisor stack (runsc) against the same job on runc, through
Longshore in the same run (interleaved, same engine, same image, same sandbox otherwise).

    python3 bench/runtimes.py [--jobs 30]

Needs the services of scripts/services.sh, including `runsc`, and the busybox stack image.
"""

from __future__ import annotations

import argparse
import sys
import time

from harness import installation, percentile

COMMANDS = {"true": ["true"], "60 forks": ["sh", "-c", "for i in $(seq 60); do /bin/true; done"]}
STACKS = ("busybox", "busybox-gvisor")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    samples: dict[tuple[str, str], list[float]] = {(c, s): [] for c in COMMANDS for s in STACKS}
    with installation(list(STACKS)):
        import longshore

        for i in range(args.warmup + args.jobs):
            for (command, stack), times in samples.items():
                started = time.perf_counter()
                job = longshore.submit(stack, COMMANDS[command]).wait(timeout=60)
                elapsed = (time.perf_counter() - started) * 1000
                assert job.status.value == "succeeded", (stack, job.error)
                if i >= args.warmup:
                    times.append(elapsed)

    print(f"{args.jobs} jobs of each, interleaved, submit → finished through RabbitMQ + PostgreSQL, ms")
    print(f"{'command':10} {'runc p50':>9} {'runsc p50':>10} {'runc p99':>9} {'runsc p99':>10} {'p50 ratio':>10}")
    for command in COMMANDS:
        runc, runsc = samples[(command, "busybox")], samples[(command, "busybox-gvisor")]
        print(f"{command:10} {percentile(runc, .5):9.0f} {percentile(runsc, .5):10.0f} {percentile(runc, .99):9.0f} "
              f"{percentile(runsc, .99):10.0f} {percentile(runsc, .5) / percentile(runc, .5):10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
