"""Where a job's CPU goes in the worker: py-spy samples the worker and its pool processes while N `true` jobs
run one after another, and the hottest frames are printed, inclusive (the frame and what it calls) and by
Longshore function. `--out FILE` keeps the collapsed stacks (for a flame graph).

    python3 bench/profile_jobs.py [--jobs 40] [--out /tmp/profile.txt] [--burst]

`--burst` submits the jobs at once and samples only the thread holding the GIL (the worker's CPU, not its
waits), and prints the samples by what they were in: the store (SQLAlchemy and psycopg2), the engine's HTTP
(docker-py, requests, the socket's HTTP), the broker (Celery, kombu, amqp), and Longshore's own code.

Needs py-spy (`pip install py-spy`) and root (ptrace), and the services of scripts/services.sh.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from harness import installation, true_jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--out", help="keep the collapsed stacks here")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--burst", action="store_true", help="all at once; GIL-held samples; shares by library")
    args = parser.parse_args()
    spy = shutil.which("py-spy")
    if spy is None:
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 1
    out = args.out or tempfile.mktemp(suffix=".txt")
    with installation(["busybox"], slots=args.slots) as worker_pid:
        import longshore

        for _ in range(3):
            longshore.submit("busybox", ["true"]).wait(timeout=60)
        gil = ["--gil"] if args.burst else []
        recorder = subprocess.Popen([spy, "record", "--pid", str(worker_pid), "--subprocesses", "--rate", "200",
                                     "--format", "raw", "--output", out, "--nonblocking", *gil],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            true_jobs(args.jobs, at_once=args.burst)
        finally:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(30)
    inclusive, total = _inclusive(out)
    print(f"{total} samples over {args.jobs} jobs (200 Hz: {total * 5 / args.jobs:.0f} ms of samples per job, "
          + ("the GIL's holder only)" if args.burst else "idle waits included)"))
    if args.burst:
        for name, count in _by_library(out).most_common():
            print(f"{count / total:6.1%}  {name}")
    print(f"{'share':>6}  frame (inclusive)")
    for frame, count in inclusive.most_common(args.top):
        print(f"{count / total:6.1%}  {frame}")
    if not args.out:
        os.unlink(out)
    return 0


def _inclusive(path: str) -> tuple[collections.Counter, int]:
    """Samples per frame, counting a frame once per stack it is in."""
    counts: collections.Counter = collections.Counter()
    total = 0
    with open(path) as stacks:
        for line in stacks:
            stack, _, number = line.rstrip("\n").rpartition(" ")
            if not number.isdigit():
                continue
            frames = {frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                      for frame in stack.split(";") if "longshore" in frame or "celery" in frame or "kombu" in frame
                      or "docker" in frame or "sqlalchemy" in frame or "psycopg2" in frame}
            counts.update({frame: int(number) for frame in frames})
            total += int(number)
    return counts, total


#: What a sample was in, by the first of these its stack reaches from the thread's start.
LIBRARIES = (("the store (SQLAlchemy, psycopg2)", ("sqlalchemy", "psycopg2")),
             ("the engine's HTTP (docker-py, requests, the socket's)",
              ("docker/", "requests/", "urllib3", "socket_http")),
             ("the broker (Celery, kombu, amqp)", ("celery/", "kombu/", "amqp/")))


def _by_library(path: str) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    with open(path) as stacks:
        for line in stacks:
            stack, _, number = line.rstrip("\n").rpartition(" ")
            if not number.isdigit():
                continue
            frames = [frame for frame in stack.split(";") if "threading.py" not in frame]
            found = next((name for frame in frames for name, keys in LIBRARIES if any(key in frame for key in keys)),
                         "Longshore's own code and the standard library")
            counts[found] += int(number)
    return counts


if __name__ == "__main__":
    sys.exit(main())
