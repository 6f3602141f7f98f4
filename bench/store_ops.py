"""A job's store work alone, without engine or broker: the statements a submit, a worker's steps and a status
read send for one `true` job, run through the store's own code for N jobs, with server-side prepared
statements (`store.prepared`) and without, alternating in one run. Prints PostgreSQL's CPU per job (its
backends for this database, from their own accounting), this process's, and the wall time, with ratios.

    python3 bench/store_ops.py [--jobs 300] [--rounds 4] [--threads 1]

`--threads 4` runs four jobs at once (as four slots do): their count rows and commits then wait on each other.
`--connection-event` adds a prepared store with a connection event on its engine as well (a no-op
`before_cursor_execute`, the shape the preparing had before it became a dialect event): what any connection
event costs this process, since SQLAlchemy then dispatches all of them at every step of every statement.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid

import sqlalchemy as sa

from harness import process_cpu, throwaway_database

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "platform"))

from longshore.domain.outcome import Outcome  # noqa: E402
from longshore.domain.records import NewJob  # noqa: E402
from longshore.domain.status import JobStatus  # noqa: E402
from longshore.domain.steps import Step  # noqa: E402
from longshore.store import Store  # noqa: E402

JOB = dict(stack="busybox", image="longshore/busybox:1", command=["true"], env={}, payload="{}", timeout_seconds=60,
           memory_bytes=64 << 20, cpus=0.5, disk_bytes=16 << 20)


def one_job(store: Store, me: str) -> None:
    """What one job asks of the store, in the order the platform asks it (`statements.py` lists it)."""
    job_id = store.jobs.create(NewJob(**JOB))
    store.jobs.mark_published(job_id, 1)
    _, job = store.attempts.claim(job_id, 1, worker=me, engine="engine", host="host", slots=1000)
    store.attempts.record_step(job_id, 1, Step.PULL, 0.001, owner=me)
    store.attempts.record_step(job_id, 1, Step.CREATE, 0.01, owner=me, job_current=True,
                               container_id=uuid.uuid4().hex, container_name=f"longshore-{job_id}-1")
    store.jobs.begin_running(job_id, 1, owner=me, known=job)
    store.attempts.release(job_id, 1)
    current = store.attempts.current(job_id, 1)
    # the start's seconds go with the finishing write (`service.held_seconds`)
    store.jobs.finish(job_id, 1, Outcome(status=JobStatus.SUCCEEDED, exit_code=0, output=b""), owner=me,
                      took=(Step.WAIT, 0.01), known=current.job, held={Step.START: 0.1})
    store.attempts.record_step(job_id, 1, Step.REAP, 0.01, owner=me, reaped_at=time.time())
    store.jobs.get(job_id)


def backends(database: str) -> list[int]:
    found = subprocess.run(["su", "postgres", "-c", "psql -XqtA -c \"SELECT pid FROM pg_stat_activity WHERE "
                            f"datname = '{database}' AND pid <> pg_backend_pid()\""],
                           capture_output=True, text=True, check=True).stdout.split()
    return [int(pid) for pid in found]


def at_once(store: Store, me: str, jobs: int, threads: int) -> None:
    """`jobs` jobs, `threads` at a time."""
    share = [jobs // threads + (n < jobs % threads) for n in range(threads)]
    runners = [threading.Thread(target=lambda n=n: [one_job(store, me) for _ in range(n)]) for n in share]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()


def measure(store: Store, database: str, me: str, jobs: int, threads: int) -> tuple[float, float, float]:
    """PostgreSQL's CPU, this process's CPU and the wall time, each in ms per job."""
    at_once(store, me, 20 * threads, threads)  # warm: the pool's connections open, their statements prepared
    pids = backends(database)
    server, client, wall = sum(process_cpu(pid) for pid in pids), time.process_time(), time.perf_counter()
    at_once(store, me, jobs, threads)
    wall, client = time.perf_counter() - wall, time.process_time() - client
    if set(backends(database)) != set(pids):
        print("  (the pool opened connections during the run: their CPU is not counted)", file=sys.stderr)
    server = sum(process_cpu(pid) for pid in pids) - server
    return server * 1000 / jobs, client * 1000 / jobs, wall * 1000 / jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--connection-event", action="store_true")
    args = parser.parse_args()
    with throwaway_database() as url:
        database = url.rsplit("/", 1)[1]
        Store(url).upgrade()
        pool = dict(pool_size=args.threads, max_overflow=0)
        stores = {"plain": Store(url, prepare=False, **pool), "prepared": Store(url, prepare=True, **pool)}
        if args.connection_event:
            stores["conn-event"] = Store(url, prepare=True, **pool)
            sa.event.listen(stores["conn-event"].engine, "before_cursor_execute",
                            lambda _conn, _cursor, statement, parameters, *_: (statement, parameters), retval=True)
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in stores}
        for name, store in stores.items():
            store.workers.register(f"bench-{name}", host="host", engine_id="engine", instance="i", pid=os.getpid(),
                                   stacks=["busybox"], slots=1000)
        for round_ in range(args.rounds):
            order = list(stores)[round_ % len(stores):] + list(stores)[:round_ % len(stores)]
            for name in order if round_ % 2 == 0 else order[::-1]:
                results[name].append(measure(stores[name], database, f"bench-{name}", args.jobs, args.threads))
                server, client, wall = results[name][-1]
                print(f"round {round_ + 1} {name:10} PostgreSQL {server:5.2f}  this process {client:5.2f}  "
                      f"wall {wall:5.2f} ms/job  (load {os.getloadavg()[0]:.1f})", flush=True)
        for store in stores.values():
            store.engine.dispose()
    mean = {name: [sum(column) / len(column) for column in zip(*rows)] for name, rows in results.items()}
    print(f"\n{args.jobs} jobs × {args.rounds} rounds, {args.threads} at once; ms per job, mean of rounds")
    print(f"{'':10} {'PostgreSQL':>10} {'this process':>13} {'wall':>7}")
    for name in stores:
        ratios = [p / q if q else float("nan") for p, q in zip(mean[name], mean["plain"])]
        print(f"{name:10} {mean[name][0]:10.2f} {mean[name][1]:13.2f} {mean[name][2]:7.2f}   against plain "
              f"{ratios[0]:.2f} {ratios[1]:.2f} {ratios[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
