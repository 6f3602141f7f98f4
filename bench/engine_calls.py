"""What one engine call costs this process: CPU per call of docker-py's plain calls (inspect a container, read
its logs, list containers by label) through Longshore's client (`engine.connection`: its socket pool, answers
parsed by httptools) against docker-py's own client (requests, urllib3, http.client), alternating in one run.

    python3 bench/engine_calls.py [--calls 2000] [--rounds 4]

Needs the local Docker engine and the busybox image (scripts/services.sh, workers/build.sh busybox).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from longshore.engine.connection import connect  # noqa: E402

IMAGE = "longshore/busybox:1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    clients = {"docker-py": docker.APIClient(base_url="unix:///var/run/docker.sock", version="auto"),
               "longshore": connect(None, tls_certs=None, timeout=30)}
    clients["docker-py"].trust_env = False  # as Longshore's: no proxy or netrc settings read per call
    name = f"longshore-bench-calls-{uuid.uuid4().hex[:8]}"
    plain = clients["docker-py"]
    plain.create_container(IMAGE, ["sh", "-c", "seq 1 200"], name=name, labels={"io.longshore.bench": name})
    try:
        plain.start(name)
        plain.wait(name)
        calls = {"inspect": lambda api: api.inspect_container(name),
                 "logs": lambda api: api.logs(name, stdout=True, stderr=True),
                 "list by label": lambda api: api.containers(all=True, filters={"label": f"io.longshore.bench={name}"})}
        for call, run in calls.items():  # the same answers either way
            if run(clients["docker-py"]) != run(clients["longshore"]):
                print(f"{call}: the two clients' answers differ", file=sys.stderr)
                return 1
        spent = {(client, call): [] for client in clients for call in calls}
        for round_ in range(args.rounds):
            for client in (clients if round_ % 2 == 0 else list(reversed(clients))):
                for call, run in calls.items():
                    api, started = clients[client], time.process_time()
                    for _ in range(args.calls):
                        run(api)
                    spent[client, call].append((time.process_time() - started) / args.calls * 1e6)
    finally:
        plain.remove_container(name, force=True)
    print(f"CPU of this process per call, µs (mean of {args.rounds} rounds of {args.calls})")
    print(f"{'call':16} {'docker-py':>10} {'longshore':>10} {'ratio':>6}")
    for call in calls:
        theirs, ours = (sum(spent[client, call]) / args.rounds for client in clients)
        print(f"{call:16} {theirs:10.0f} {ours:10.0f} {ours / theirs:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
