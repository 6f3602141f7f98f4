"""Where a job's CPU goes in the worker: py-spy samples the worker and its pool processes while N `true` jobs
run one after another, and the hottest frames are printed, inclusive (the frame and what it calls) and by
Longshore function. `--out FILE` keeps the collapsed stacks (for a flame graph).

    python3 bench/profile_jobs.py [--jobs 40] [--out /tmp/profile.txt]

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

from harness import installation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--out", help="keep the collapsed stacks here")
    parser.add_argument("--top", type=int, default=25)
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
        recorder = subprocess.Popen([spy, "record", "--pid", str(worker_pid), "--subprocesses", "--rate", "200",
                                     "--format", "raw", "--output", out, "--nonblocking"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(args.jobs):
                longshore.submit("busybox", ["true"]).wait(timeout=60)
        finally:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(30)
    inclusive, total = _inclusive(out)
    print(f"{total} samples over {args.jobs} jobs (200 Hz: {total * 5 / args.jobs:.0f} ms of samples per job, "
          "idle waits included)")
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


if __name__ == "__main__":
    sys.exit(main())
