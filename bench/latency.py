"""Latency of a trivial job through the distributed path, against `docker run --rm` of the same container.

Runs `true` N times through RabbitMQ + PostgreSQL + one worker (submit → wait
returns), or with `--embedded` on the embedded default (in-process worker, SQLite),
and, interleaved in the same run on the same engine, `docker run --rm` of the same
container (its HostConfig compared with a Longshore job's first). Prints p50 and
p99 of both and their ratio. Needs the services of scripts/services.sh and the
busybox stack image.

    python3 bench/latency.py [--jobs 50] [--embedded]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from harness import docker_run, embedded, installation, percentile, same_container

DOCKER_RUN = docker_run("true")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--embedded", action="store_true", help="the embedded default instead of RabbitMQ+PostgreSQL")
    args = parser.parse_args()

    with embedded() if args.embedded else installation(["busybox"]):
        import longshore

        differences = same_container()
        if differences:
            print("the baseline's container differs from Longshore's:\n  " + "\n  ".join(differences), file=sys.stderr)
            return 1

        platform_ms, docker_ms = [], []
        for i in range(args.warmup + args.jobs):
            started = time.perf_counter()
            job = longshore.submit("busybox", ["true"]).wait(timeout=60)
            elapsed = (time.perf_counter() - started) * 1000
            assert job.status.value == "succeeded", job.error
            started = time.perf_counter()
            subprocess.run(DOCKER_RUN, check=True)
            baseline = (time.perf_counter() - started) * 1000
            if i >= args.warmup:
                platform_ms.append(elapsed)
                docker_ms.append(baseline)
        steps = _step_medians(longshore)

    print(f"{args.jobs} jobs of `true`, interleaved, same engine, same image and limits")
    print(f"{'path':34} {'p50 ms':>8} {'p99 ms':>8}")
    path = "longshore (embedded: SQLite)" if args.embedded else "longshore (RabbitMQ+PostgreSQL)"
    print(f"{path:34} {percentile(platform_ms, .5):8.0f} {percentile(platform_ms, .99):8.0f}")
    print(f"{'docker run --rm':34} {percentile(docker_ms, .5):8.0f} {percentile(docker_ms, .99):8.0f}")
    print(f"ratio p50 {percentile(platform_ms, .5) / percentile(docker_ms, .5):.2f}  "
          f"p99 {percentile(platform_ms, .99) / percentile(docker_ms, .99):.2f}  (target ≤ 1.0)")
    print("median step times, ms: " + "  ".join(f"{k}={v:.0f}" for k, v in steps.items()))
    return 0


def _step_medians(longshore) -> dict[str, float]:
    from longshore.service.runtime import get_runtime

    store = get_runtime().store
    attempts = [a for job in store.reads.list_jobs(limit=1000) if job.command == ["true"]
                for a in store.jobs.attempts(job.id)]
    return {step: statistics.median(a.step_seconds[step] * 1000 for a in attempts if a.step_seconds[step] is not None)
            for step in ("pull", "create", "start", "wait", "reap")}


if __name__ == "__main__":
    sys.exit(main())
