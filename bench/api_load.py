"""Load on `longshore api`: how many tasks a second it takes over HTTP (IronWorker's API v2, one task per
request, as IronWorker's clients send them) and the latency of each request, against submitting the same
jobs from Python in this process (the same validation and store writes, without HTTP) in the same run.

Bounded in count and time: `python3 bench/api_load.py [--tasks 400] [--concurrency 8] [--seconds 120]`.
Needs the services of scripts/services.sh. The jobs are `true` on the busybox stack, run by one worker.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import installation, percentile  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120, help="stop sending after this long")
    parser.add_argument("--port", type=int, default=18080)
    args = parser.parse_args()
    with installation(["busybox"], slots=4):
        project = json.loads(subprocess.run(["longshore", "projects", "create", "bench", "--json",
                                             "--rate", "0", "--max-queued", "0"], check=True,
                                            capture_output=True, text=True).stdout)
        api = subprocess.Popen(["longshore", "api", "--port", str(args.port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            return _run(args, project, f"http://127.0.0.1:{args.port}/2/projects/{project['id']}")
        finally:
            api.terminate()
            api.wait(20)


def _run(args, project: dict, base: str) -> int:
    import longshore

    headers = {"Authorization": f"OAuth {project['token']}", "Content-Type": "application/json"}
    _wait_for(base + "/codes", headers)
    subprocess.run(["longshore", "codes", "upload", "noop", "--stack", "busybox", "--", "true"], check=True,
                   capture_output=True)
    # The same code, in the bench project, through the API (a code's name is unique per project)
    requests.post(base + "/codes", files={"data": (None, json.dumps(
        {"name": "noop", "image": "longshore/busybox:1", "stack": "busybox", "command": "true"}))},
        headers={"Authorization": headers["Authorization"]}, timeout=30).raise_for_status()
    body = json.dumps({"tasks": [{"code_name": "noop", "payload": "{}"}]})
    session = requests.Session()
    latencies: list[float] = []
    deadline = time.monotonic() + args.seconds

    def one(_):
        if time.monotonic() > deadline:
            return None
        started = time.perf_counter()
        answer = session.post(base + "/tasks", data=body, headers=headers, timeout=60)
        answer.raise_for_status()
        latencies.append(time.perf_counter() - started)
        return answer.json()["tasks"][0]["id"]

    started = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        ids = [task for task in pool.map(one, range(args.tasks)) if task]
    http_seconds = time.perf_counter() - started
    started = time.perf_counter()
    direct = [longshore.submit(code="noop", payload={}).id for _ in range(len(ids))]
    direct_seconds = time.perf_counter() - started
    http_rate, direct_rate = len(ids) / http_seconds, len(direct) / direct_seconds
    print(f"HTTP: {len(ids)} tasks in {http_seconds:.1f} s at concurrency {args.concurrency}: {http_rate:.0f}/s; "
          f"latency p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f} ms")
    print(f"Python submit in this process (baseline): {len(direct)} in {direct_seconds:.1f} s: {direct_rate:.0f}/s")
    print(f"ratio HTTP/direct submit rate: {http_rate / direct_rate:.2f}")
    for job_id in ids + direct:  # every job ends before the installation goes
        longshore.JobHandle(job_id).wait(timeout=600)
    return 0


def _wait_for(url: str, headers: dict) -> None:
    for _ in range(300):
        try:
            if requests.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the API did not answer at {url}")


if __name__ == "__main__":
    sys.exit(main())
