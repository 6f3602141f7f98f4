"""Scale of the store: reads, submits and the exporter's scrape with a million jobs in PostgreSQL.

Two throwaway PostgreSQL databases and a RabbitMQ vhost (no worker: submitted jobs wait in their queue). One
store is filled by server-side SQL (bench/store_fill.py: a 30-day mix of statuses, projects, stacks, labels and
codes, with attempts and webhook deliveries); the other stays nearly empty, as the baseline. Measured against
the goals of issue 13, p50 and p99 over repeated runs, each of another job or page:

- a list page of 20 (`store.reads.list_jobs`, as /v1 and `longshore ls` call it), unfiltered and filtered: the
  first page, and a deep page reached by a cursor (a job of the older half of the list), < 50 ms;
- a status read, < 5 ms: `store.jobs.get` of one job; /v1's reads for one job in this process (its token, the
  job, its attempts, retries and webhook deliveries); the same as GET /v1/jobs/ID over HTTP (`longshore api`),
  beside GET /healthz, the HTTP floor of no read at all;
- the exporter's scrape, < 100 ms: GET /metrics of `longshore exporter` (it asks RabbitMQ too), and its store
  part (`store.reads.installation_counts`);
- the submit rate within 10 % of the empty store's, in rounds alternating between the two stores (ABBA, the
  empty one first): the path of `longshore.submit` (validated, stored, published to RabbitMQ), and the store's
  insert alone (`store.jobs.create`), where RabbitMQ's share does not dilute the store's;
- retention's batches (no goal: each one transaction, short whatever the store's size), measured last.

The status reads and the scrape are measured on the empty store too, to show what is the store's size and
what is not.

    python3 bench/store_scale.py [--jobs 1000000] [--reads 200] [--submits 100] [--rounds 11]

Needs the services of scripts/services.sh; about three minutes for a million jobs on two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, http_server, percentile, throwaway_database  # noqa: E402
from store_fill import OLD_LABEL, fill  # noqa: E402

LIST_GOAL_MS, READ_GOAL_MS, SCRAPE_GOAL_MS, SUBMIT_GOAL_RATIO = 50, 5, 100, 0.9
PAGE = 20


@dataclasses.dataclass
class Row:
    """One read's samples (ms) on the full store, and on the empty one if measured there."""

    name: str
    goal: float | None
    full: list[float]
    empty: list[float] | None = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs to fill the store with")
    parser.add_argument("--reads", type=int, default=200, help="samples of each read")
    parser.add_argument("--submits", type=int, default=100, help="jobs submitted per round")
    parser.add_argument("--rounds", type=int, default=11, help="rounds of submits into each store")
    args = parser.parse_args()
    with throwaway_installation() as empty_url:
        return run(args, empty_url)


@contextlib.contextmanager
def throwaway_installation() -> Iterator[str]:
    """Point this process at a fresh vhost and database (upgraded); yield the URL of a second, empty database
    (upgraded too); remove them all after."""
    run_id = uuid.uuid4().hex[:8]
    vhost = f"longshore-scale-{run_id}"
    home = tempfile.mkdtemp(prefix="longshore-scale-")
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True)
    try:
        with throwaway_database(f"longshore_scale_{run_id}") as full, \
                throwaway_database(f"longshore_empty_{run_id}") as empty:
            os.environ.update({
                "LONGSHORE_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
                "LONGSHORE_DATABASE_URL": full,
                "LONGSHORE_STACKS": str(REPO / "workers" / "stacks.toml"),
                "LONGSHORE_HOME": home,
            })
            for url in (full, empty):
                subprocess.run(["longshore", "db", "upgrade"], check=True, capture_output=True,
                               env={**os.environ, "LONGSHORE_DATABASE_URL": url})
            try:
                yield empty
            finally:
                from longshore.service.runtime import get_runtime

                get_runtime().store.engine.dispose()
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost])
        shutil.rmtree(home, ignore_errors=True)


def _as_postgres(sql: str) -> None:
    subprocess.run(["su", "postgres", "-c", f"psql -q -c '{sql}'"], check=True)


def run(args: argparse.Namespace, empty_url: str) -> int:
    from longshore.domain.projects import DEFAULT_PROJECT
    from longshore.domain.quotas import Quotas
    from longshore.service.runtime import get_runtime
    from longshore.store import Store

    full = get_runtime()
    empty = dataclasses.replace(full, store=Store(empty_url))
    # The projects the reads look at: one the fill fills, and the default one the submits go to in the empty
    # store; with no request rate, so that the HTTP reads measure reads
    project, token = full.store.projects.create("scale", Quotas(requests_per_second=0))
    empty.store.projects.set_quotas(DEFAULT_PROJECT, {"requests_per_second": 0})
    empty_token = empty.store.projects.create_token(DEFAULT_PROJECT)
    started = time.monotonic()
    took = fill(full.store.engine, args.jobs, main_project=project.id, now=time.time())
    _as_postgres("CHECKPOINT")  # the fill's writes are flushed now, not during the measurements
    phases = ", ".join(f"{phase} {seconds:.0f}" for phase, seconds in took.items())
    print(f"filled {args.jobs:,} jobs in {time.monotonic() - started:.0f} s ({phases}; {_size(full)})", flush=True)

    rates = submit_rates(full, empty, args.rounds, args.submits)
    rows = list_pages(full, project.id, args.reads)
    for (name, goal, samples), (_, _, baseline) in zip(
            status_reads(full, project.id, token, args.reads) + scrapes(full, args.reads),
            status_reads(empty, DEFAULT_PROJECT, empty_token, args.reads) + scrapes(empty, args.reads)):
        rows.append(Row(name, goal, samples, baseline))
    rows += retention_batches(full, args.reads)  # last: it deletes
    empty.store.engine.dispose()
    return report(args, rows, rates)


def report(args: argparse.Namespace, rows: list[Row], rates: dict[str, tuple[float, float, float]]) -> int:
    """Print each figure against its goal (p99 for reads); 1 if any missed."""
    print(f"\n{args.jobs:,} jobs in the store; {args.reads} samples per read, each of another job or page; "
          "a goal is met when p99 is under it")
    print(f"{'read':64} {'p50 ms':>7} {'p99 ms':>7} {'goal':>6}  empty store p50/p99")
    missed = 0
    for row in rows:
        p99 = percentile(row.full, 0.99)
        miss = row.goal is not None and p99 >= row.goal
        missed += miss
        goal = "-" if row.goal is None else f"< {row.goal:g}"
        baseline = "" if row.empty is None else f"{percentile(row.empty, 0.5):.1f} / {percentile(row.empty, 0.99):.1f}"
        print(f"{row.name:64} {percentile(row.full, 0.5):7.1f} {p99:7.1f} {goal:>6}  {baseline:19}"
              f"{'  MISSED' if miss else ''}")
    print(f"\nsubmit rate: {args.rounds} rounds of {args.submits} jobs into each store, alternating (medians)")
    print(f"{'path':44} {'empty /s':>9} {'full /s':>9} {'ratio':>6} {'goal':>6}")
    for name, (empty_rate, full_rate, ratio) in rates.items():
        miss = ratio < SUBMIT_GOAL_RATIO
        missed += miss
        print(f"{name:44} {empty_rate:9.0f} {full_rate:9.0f} {ratio:6.2f} {'>= ' + format(SUBMIT_GOAL_RATIO, 'g'):>6}"
              f"{'  MISSED' if miss else ''}")
    return 1 if missed else 0


def timed(samples: int, call: Callable[[int], object]) -> list[float]:
    """Milliseconds of `call(i)` for i in 0..samples-1, after a few calls to warm up."""
    for i in range(5):
        call(i)
    result = []
    for i in range(samples):
        started = time.perf_counter()
        call(i)
        result.append((time.perf_counter() - started) * 1000)
    return result


def list_pages(rt, project: str, samples: int) -> list[Row]:
    """First and deep pages of the lists /v1 and `longshore ls` show, unfiltered and filtered."""
    import sqlalchemy as sa

    from longshore.domain.status import JobStatus

    reads = rt.store.reads
    with rt.store.engine.connect() as conn:
        middle = conn.execute(sa.text("SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY created_at) FROM jobs "
                                      "WHERE project_id = :p"), {"p": project}).scalar()
        older = conn.execute(sa.text("SELECT created_at, id FROM jobs WHERE project_id = :p AND created_at < :m "
                                     "ORDER BY random() LIMIT :n"), {"p": project, "m": middle, "n": samples}).all()
    cursors = [tuple(row) for row in older]

    def page(i: int, **filters) -> list:
        return reads.list_jobs(limit=PAGE, **filters)

    def deep(i: int, **filters) -> list:
        return reads.list_jobs(limit=PAGE, before=cursors[i % len(cursors)], **filters)

    cases = [
        ("a project's (/v1), first", lambda i: page(i, project=project)),
        ("a project's (/v1), deep by cursor", lambda i: deep(i, project=project)),
        ("every project's (`longshore ls`), first", lambda i: page(i)),
        ("every project's (`longshore ls`), deep by cursor", lambda i: deep(i)),
        ("a project's failed jobs, deep by cursor", lambda i: deep(i, project=project, status=JobStatus.FAILED)),
        ("a project's queued jobs, deep by cursor", lambda i: deep(i, project=project, status=JobStatus.QUEUED)),
        ("a project's jobs of a label, first", lambda i: page(i, project=project, label=f"label-{i % 50}")),
        ("a project's jobs of a code, deep by cursor", lambda i: deep(i, project=project, code=f"code-{i % 20}")),
        ("jobs of a label last used 25 days ago, first",
         lambda i: page(i, project=project, label=OLD_LABEL)),
    ]
    return [Row(f"list page: {name}", LIST_GOAL_MS, timed(samples, call)) for name, call in cases]


def status_reads(rt, project: str, token: str, samples: int) -> list[tuple[str, float | None, list[float]]]:
    """One job by id: from the store; /v1's reads for it in this process; GET /v1/jobs/ID over HTTP."""
    import sqlalchemy as sa

    from longshore.service.views import job_detail

    with rt.store.engine.connect() as conn:
        ids = list(conn.execute(sa.text("SELECT id FROM jobs WHERE project_id = :p ORDER BY random() LIMIT :n"),
                                {"p": project, "n": samples}).scalars())
    job_id = lambda i: ids[i % len(ids)]  # noqa: E731
    rows = [("status read: store.jobs.get", READ_GOAL_MS, timed(samples, lambda i: rt.store.jobs.get(job_id(i)))),
            ("status read: /v1's reads for a job, in this process", READ_GOAL_MS,
             timed(samples, lambda i: (rt.store.projects.authenticate(token),
                                       job_detail(rt, rt.store.reads.job_detail(job_id(i))))))]
    with served(["api"], rt.store.url) as base:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"

        def get(path: str) -> Callable[[int], None]:
            return lambda i: session.get(base + path.format(id=job_id(i)), timeout=10).raise_for_status()

        rows += [("status read: GET /v1/jobs/ID (HTTP, `longshore api`)", READ_GOAL_MS,
                  timed(samples, get("/v1/jobs/{id}"))),
                 ("the HTTP floor: GET /healthz (no store)", None, timed(samples, get("/healthz"))),
                 ("list page: GET /v1/jobs?limit=20 (HTTP), first", LIST_GOAL_MS,
                  timed(samples, get(f"/v1/jobs?limit={PAGE}")))]
    return rows


def scrapes(rt, samples: int) -> list[tuple[str, float | None, list[float]]]:
    """The exporter's scrape over HTTP, and the store's part of it."""
    with served(["exporter"], rt.store.url) as base:
        session = requests.Session()
        scrape = timed(samples, lambda i: session.get(f"{base}/metrics", timeout=10).raise_for_status())
    counts = timed(samples, lambda i: rt.store.reads.installation_counts(overdue_margin_seconds=60))
    return [("exporter scrape: GET /metrics (the store and RabbitMQ)", SCRAPE_GOAL_MS, scrape),
            ("exporter scrape: its store part (installation_counts)", SCRAPE_GOAL_MS, counts)]


def retention_batches(rt, samples: int) -> list[Row]:
    """One transaction of the janitor's retention: the data of 500 jobs erased, 500 jobs deleted, and a look
    that finds nothing to do (no goal: each must stay short, whatever the store's size)."""
    from longshore.domain.retention import BATCH_JOBS, ended_before

    retention, now, batches = rt.store.retention, time.time(), max(1, samples // 10)
    return [Row(f"retention: erase the data of {BATCH_JOBS} jobs (one transaction)", None,
                timed(batches, lambda i: retention.erase_data(ended_before=ended_before(now, 20), limit=BATCH_JOBS))),
            Row(f"retention: delete {BATCH_JOBS} jobs (one transaction)", None,
                timed(batches, lambda i: retention.delete_jobs(ended_before=ended_before(now, 25), limit=BATCH_JOBS))),
            Row("retention: nothing to erase (a pass's first look)", None,
                timed(samples, lambda i: retention.erase_data(ended_before=ended_before(now, 60), limit=BATCH_JOBS)))]


@contextlib.contextmanager
def served(command: list[str], database_url: str) -> Iterator[str]:
    """`longshore COMMAND --port P` on a free port, on the store at `database_url`, until it answers; its URL."""
    argv = ["longshore", *command, "--port", "{port}"]
    with http_server(argv, {"LONGSHORE_DATABASE_URL": database_url}) as (base, _pid):
        yield base


def submit_rates(full, empty, rounds: int, jobs: int) -> dict[str, tuple[float, float, float]]:
    """Jobs per second into the empty store and into the full one, in rounds alternating between the two (the
    empty store first in every other pair, last in the others) so that the machine's other load and any
    order falls on both alike: `longshore.submit`'s path and the store's insert alone. For each, the median
    rate into each store and their ratio."""
    from longshore.service import submit as submitting

    fields = {"stack": "busybox", "command": ["true"], "payload": {"n": 1}, "label": "scale"}

    def submit(rt) -> None:
        submitting.submit(rt, submitting.build(rt, fields))

    def create(rt) -> None:
        rt.store.jobs.create(submitting.build(rt, fields),
                             default_max_queued=rt.settings.quotas.max_queued_jobs)

    for rt in (empty, full):
        for _ in range(20):  # connections opened, code paths warm
            submit(rt)
            create(rt)
    result = {}
    for name, call in (("longshore.submit's path (store + RabbitMQ)", submit),
                       ("store.jobs.create (the store alone)", create)):
        rates: dict[str, list[float]] = {"empty": [], "full": []}
        for round_ in range(rounds):
            pair = (("empty", empty), ("full", full))
            for which, rt in pair if round_ % 2 == 0 else pair[::-1]:
                started = time.perf_counter()
                for _ in range(jobs):
                    call(rt)
                rates[which].append(jobs / (time.perf_counter() - started))
        empty_rate, full_rate = statistics.median(rates["empty"]), statistics.median(rates["full"])
        result[name] = (empty_rate, full_rate, full_rate / empty_rate)
    return result


def _size(rt) -> str:
    import sqlalchemy as sa

    with rt.store.engine.connect() as conn:
        return conn.execute(sa.text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar()


if __name__ == "__main__":
    sys.exit(main())
