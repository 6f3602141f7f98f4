"""The API process's cost of one status read: CPU (from the process's own accounting) and wall time per
GET /v1/jobs/ID and per GET /healthz (the HTTP floor), served by `longshore api`'s app under each of uvicorn's
HTTP parsers (h11, pure Python; httptools, C), in rounds alternating between the two servers so that the
machine's other load falls on both alike. The first named is the baseline of the ratios.

    python3 bench/api_reads.py [--rounds 10] [--requests 100] [--http h11 httptools]

Needs the services of scripts/services.sh (a worker runs the one job read).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import http_server, installation, percentile, process_cpu  # noqa: E402

SERVE = ("import sys, uvicorn; from longshore.api.app import create_app; from longshore.service.runtime import "
         "get_runtime; uvicorn.run(create_app(get_runtime()), host='127.0.0.1', port=int(sys.argv[1]), "
         "http=sys.argv[2], access_log=False, log_level='warning')")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100, help="requests of each kind per round")
    parser.add_argument("--http", nargs="+", default=["h11", "httptools"])
    args = parser.parse_args()
    with installation(["busybox"]):
        import longshore
        from longshore.domain.projects import DEFAULT_PROJECT
        from longshore.service.runtime import get_runtime

        token = get_runtime().store.projects.create_token(DEFAULT_PROJECT)
        job = longshore.submit("busybox", ["true"])
        job.wait(timeout=120)
        paths = {"GET /v1/jobs/ID": f"/v1/jobs/{job.id}", "GET /healthz": "/healthz"}
        cpu = {(http, name): [] for http in args.http for name in paths}
        wall = {(http, name): [] for http in args.http for name in paths}
        with contextlib.ExitStack() as servers:
            served = {http: servers.enter_context(http_server([sys.executable, "-c", SERVE, "{port}", http]))
                      for http in args.http}
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            for round_number in range(args.rounds):
                order = args.http if round_number % 2 == 0 else list(reversed(args.http))
                for http in order:
                    base, pid = served[http]
                    for name, path in paths.items():
                        session.get(base + path, timeout=10).raise_for_status()  # its connection made
                        before = process_cpu(pid, with_children=False)
                        for _ in range(args.requests):
                            started = time.perf_counter()
                            session.get(base + path, timeout=10).raise_for_status()
                            wall[http, name].append(time.perf_counter() - started)
                        cpu[http, name].append((process_cpu(pid, with_children=False) - before) / args.requests)
    baseline = args.http[0]
    print(f"the API process per request, {args.rounds} alternating rounds of {args.requests} "
          f"(load {os.getloadavg()[0]:.1f}); ratios against {baseline}")
    print(f"{'request':18} {'parser':10} {'CPU ms':>7} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for name in paths:
        base_cpu = statistics.median(cpu[baseline, name])
        for http in args.http:
            each = statistics.median(cpu[http, name])
            print(f"{name:18} {http:10} {each * 1000:7.2f} {each / base_cpu:6.2f} "
                  f"{percentile(wall[http, name], 0.5) * 1000:7.2f} {percentile(wall[http, name], 0.99) * 1000:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
