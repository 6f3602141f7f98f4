"""The API process's cost of one status read: CPU (from the process's own accounting) and wall time per
GET /v1/jobs/ID and per GET /healthz (the HTTP floor), served by `longshore api`'s app under each of uvicorn's
HTTP parsers (h11, pure Python; httptools, C), in rounds alternating between the servers so that the
machine's other load falls on all alike. The first named is the baseline of the ratios. `--source NAME=DIR`
serves from other source roots too (another checkout's `platform/`), each under each parser: an A/B of two
versions of the code in one run (the first source named is then the baseline). `--loop asyncio uvloop` serves
each under each of uvicorn's event loops too.

    python3 bench/api_reads.py [--rounds 10] [--requests 100] [--http h11 httptools] [--loop asyncio uvloop]
                              [--source old=DIR new=DIR]

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
         "http=sys.argv[2], loop=sys.argv[3], access_log=False, log_level='warning')")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100, help="requests of each kind per round")
    parser.add_argument("--http", nargs="+", default=["h11", "httptools"])
    parser.add_argument("--loop", nargs="+", default=["auto"], help="uvicorn's event loops (asyncio, uvloop)")
    parser.add_argument("--source", nargs="+", default=[], metavar="NAME=DIR",
                        help="source roots to serve from (default: this process's)")
    args = parser.parse_args()
    sources = dict(item.split("=", 1) for item in args.source) or {"": ""}
    # each server: its label, its parser and loop, its environment (the source root first on its path)
    servers = [("+".join([http] + ([loop] if len(args.loop) > 1 else [])) + (f"@{name}" if name else ""), http, loop,
                {"PYTHONPATH": root} if root else {})
               for name, root in sources.items() for http in args.http for loop in args.loop]
    labels = [label for label, _, _, _ in servers]
    with installation(["busybox"]):
        import longshore
        from longshore.domain.projects import DEFAULT_PROJECT
        from longshore.service.runtime import get_runtime

        token = get_runtime().store.projects.create_token(DEFAULT_PROJECT)
        # no request rate for its project: the reads measure reads, not HTTP 429 (100 a second by default)
        get_runtime().store.projects.set_quotas(DEFAULT_PROJECT, {"requests_per_second": 0})
        job = longshore.submit("busybox", ["true"])
        job.wait(timeout=120)
        paths = {"GET /v1/jobs/ID": f"/v1/jobs/{job.id}", "GET /healthz": "/healthz"}
        cpu = {(label, name): [] for label in labels for name in paths}
        wall = {(label, name): [] for label in labels for name in paths}
        with contextlib.ExitStack() as stack:
            served = {label: stack.enter_context(http_server([sys.executable, "-c", SERVE, "{port}", http, loop], env))
                      for label, http, loop, env in servers}
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            for round_number in range(args.rounds):
                order = labels if round_number % 2 == 0 else list(reversed(labels))
                for label in order:
                    base, pid = served[label]
                    for name, path in paths.items():
                        session.get(base + path, timeout=10).raise_for_status()  # its connection made
                        before = process_cpu(pid, with_children=False)
                        for _ in range(args.requests):
                            started = time.perf_counter()
                            session.get(base + path, timeout=10).raise_for_status()
                            wall[label, name].append(time.perf_counter() - started)
                        cpu[label, name].append((process_cpu(pid, with_children=False) - before) / args.requests)
    baseline = labels[0]
    print(f"the API process per request, {args.rounds} alternating rounds of {args.requests} "
          f"(load {os.getloadavg()[0]:.1f}); ratios against {baseline}")
    print(f"{'request':18} {'server':14} {'CPU ms':>7} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for name in paths:
        base_cpu = statistics.median(cpu[baseline, name])
        for label in labels:
            each = statistics.median(cpu[label, name])
            print(f"{name:18} {label:14} {each * 1000:7.2f} {each / base_cpu:6.2f} "
                  f"{percentile(wall[label, name], 0.5) * 1000:7.2f} {percentile(wall[label, name], 0.99) * 1000:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
