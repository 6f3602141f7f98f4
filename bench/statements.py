"""What one job costs the store: every SQL statement PostgreSQL receives while N `true` jobs run one after
another through the distributed path, counted per job and grouped by shape (literals hidden). Compare runs
before and after a change to the lifecycle or the store.

    python3 bench/statements.py [--jobs 10] [--top 25] [--at-once]

Needs root (it turns on log_statement for the throwaway database through `su postgres`) and PostgreSQL's
log at /var/log/postgresql (scripts/services.sh's PostgreSQL).
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import subprocess
import sys
import time

from harness import installation, true_jobs


def psql(sql: str) -> None:
    subprocess.run(["su", "postgres", "-c", f"psql -q -c \"{sql}\""], check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--at-once", action="store_true",
                        help="submit them all at once (a burst, four slots) rather than one after another")
    args = parser.parse_args()
    logs = sorted(glob.glob("/var/log/postgresql/postgresql-*-main.log"))
    if not logs:
        print("no PostgreSQL log under /var/log/postgresql", file=sys.stderr)
        return 1
    log = logs[-1]
    with installation(["busybox"], slots=4):
        import longshore

        database = os.environ["LONGSHORE_DATABASE_URL"].rsplit("/", 1)[1]
        psql(f"ALTER DATABASE {database} SET log_statement='all'")
        # Sessions read the setting when they start: end the pools' sessions, warm up new ones.
        psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname='{database}'")
        time.sleep(3)
        for _ in range(10):  # every pooled connection has run (and prepared) its statements
            longshore.submit("busybox", ["true"]).wait(timeout=60)
        start = os.path.getsize(log)
        true_jobs(args.jobs, at_once=args.at_once)
        time.sleep(0.5)
        with open(log) as lines:
            lines.seek(start)
            text = lines.read()
        psql(f"ALTER DATABASE {database} RESET log_statement")
    # A statement prepared on its connection (`store.prepared`) is logged as EXECUTE, with its text as DETAIL
    prepared = dict(re.findall(r"DETAIL:\s+prepare: PREPARE (ls_\w+) AS (.*?)(?=\n\S|\Z)", text, re.S))
    statements = [" ".join(re.sub(r"^EXECUTE (ls_\w+)\b.*", lambda name: "(prepared) " + prepared.get(name[1], name[1]),
                                  found, flags=re.S).split())
                  for found in re.findall(r"statement: (.*?)(?=\n\S|\Z)", text, re.S)]
    shapes = collections.Counter(re.sub(r"'[^']*'|\b\d+(\.\d+)?\b", "?", statement)[:120] for statement in statements)
    print(f"{len(statements) / args.jobs:.1f} statements per job ({args.jobs} jobs of `true`"
          f"{' at once' if args.at_once else ''}, the worker's background work over that time included)")
    for shape, count in shapes.most_common(args.top):
        print(f"{count / args.jobs:6.1f}  {shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
