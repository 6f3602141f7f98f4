"""What an engine killed in the middle of starts leaves behind, and whether Longshore's remake clears it.

On the second engine (scripts/services.sh docker2; it is SIGKILLed and started again, so run nothing else on it):
create N containers as Longshore makes them (no network), start them all at once, SIGKILL that dockerd while the
starts are under way, start it again, then start each container that is still `created` twice and count the
engine's refusals by status code. Each one refused twice is then removed by its id, unforced, its endpoint
cleared, made again and started through Longshore's own engine calls (`engine.client`: `remove_unstarted`,
`clear_endpoint`, the same calls `service.remake` makes under its lease); the run prints how many ran.

    python3 bench/refused_starts.py [--containers 36] [--kill-after 0.3]
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import docker

from harness import REPO

SOCKET = "unix:///var/run/longshore-docker2.sock"
PIDFILE = "/var/run/longshore-docker2.pid"
IMAGE = "longshore/busybox:1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=36)
    parser.add_argument("--kill-after", type=float, default=0.3, help="seconds after the starts begin")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "platform"))
    api = docker.APIClient(base_url=SOCKET, timeout=60)
    run = uuid.uuid4().hex[:6]
    try:
        return _run(api, run, args)
    finally:  # whatever happened, nothing of the run is left on the engine
        api = docker.APIClient(base_url=SOCKET, timeout=60)
        for container in api.containers(all=True, filters={"label": f"refused-starts={run}"}):
            api.remove_container(container["Id"], force=True)


def _run(api: docker.APIClient, run: str, args: argparse.Namespace) -> int:
    from longshore.engine.client import DockerEngine
    from longshore.errors import DockerFailure

    names = [f"refused-{run}-{i}" for i in range(args.containers)]
    for name in names:
        api.create_container(IMAGE, ["true"], name=name, labels={"refused-starts": run},
                             host_config=api.create_host_config(network_mode="none"))
    threads = [threading.Thread(target=_start_quietly, args=(api, name), daemon=True) for name in names]
    for thread in threads:
        thread.start()
    time.sleep(args.kill_after)
    os.kill(int(open(PIDFILE).read()), signal.SIGKILL)
    print(f"SIGKILLed the engine {args.kill_after}s into {len(names)} starts")
    for _ in range(5):  # as a supervisor would; its first try may meet the killed engine's pid file
        time.sleep(1)
        if subprocess.run([str(REPO / "scripts" / "services.sh"), "docker2"], capture_output=True).returncode == 0:
            break
    api = docker.APIClient(base_url=SOCKET, timeout=60)
    engine = DockerEngine(SOCKET, timeout_seconds=60)
    created = [name for name in names if api.inspect_container(name)["State"]["Status"] == "created"]
    refusals: collections.Counter[str] = collections.Counter()
    refused_twice, ran = [], 0
    for name in created:
        answers = []
        for _ in range(2):
            try:
                engine.start(name)
                answers.append("started")
                break
            except DockerFailure as failure:
                answers.append(str(failure.status))
        refusals[" then ".join(answers)] += 1
        if answers[-1] != "started":
            refused_twice.append(name)
    for name in refused_twice:
        found = api.inspect_container(name)
        assert engine.remove_unstarted(found["Id"]), f"{name}: not removed"
        engine.clear_endpoint(name)
        made = api.create_container(IMAGE, ["true"], name=name, labels={"refused-starts": run},
                                    host_config=api.create_host_config(network_mode="none"))
        try:
            ran += engine.start(made["Id"]) and api.wait(made["Id"], timeout=30)["StatusCode"] == 0
        except DockerFailure as failure:
            print(f"{name}: refused again as made afresh: {failure}")
    print(f"still created after the restart: {len(created)} of {len(names)}")
    print("their starts tried again:", dict(refusals) or "none")
    print(f"made afresh after two refusals: {len(refused_twice)}; ran to exit 0: {ran}")
    return 0 if ran == len(refused_twice) else 1


def _start_quietly(api: docker.APIClient, name: str) -> None:
    try:
        api.start(name)
    except Exception:  # the engine is killed under it: what it left is what the run looks at
        pass


if __name__ == "__main__":
    sys.exit(main())
