"""Filling a Longshore store with many jobs fast, by server-side SQL (bench/store_scale.py).

The mix stands for a store that has run for 30 days: mostly succeeded and failed jobs, a few queued and running
ones (created in the last hour), spread over projects, stacks, priorities, labels, codes and schedules, with
their attempts (one, or two for 5 %), some retried, some with webhooks and their delivered changes, outputs of
a few hundred bytes (1 % of some 20 KiB, stored out of line). Rows go in in the order of their keys, and the
secondary indexes are dropped for the insert and built again after it, as a bulk load does (so the indexes are
denser than years of inserts would leave them); the counts the exporter reads are rebuilt from the jobs."""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

import sqlalchemy as sa

#: The fill's tables; their secondary indexes are rebuilt after the insert.
TABLES = ("jobs", "attempts", "webhook_deliveries")
#: A label used only by jobs older than 25 days: a filtered list whose matches are all deep.
OLD_LABEL = "old-label"

STATUS_MIX = """CASE WHEN r < 0.78 THEN 'succeeded' WHEN r < 0.93 THEN 'failed' WHEN r < 0.95 THEN 'timed_out'
     WHEN r < 0.96 THEN 'oom_killed' WHEN r < 0.98 THEN 'cancelled' WHEN r < 0.982 THEN 'lost'
     WHEN r < 0.995 THEN 'rejected' WHEN r < 0.997 THEN 'running' ELSE 'queued' END"""

SEED = f"""
CREATE TEMP TABLE seed ON COMMIT DROP AS
SELECT i, md5(:prefix || i) AS id, status, r_stack, r_label,
       CASE WHEN status IN ('queued', 'running') THEN :now - 3600 * r_age
            ELSE :now - 3600 - 30 * 86400 * r_age END AS created,
       (:projects)[1 + CASE WHEN r_project < 0.5 THEN 0 ELSE 1 + i % (cardinality(:projects) - 1) END] AS project
FROM (SELECT i, {STATUS_MIX} AS status, r_stack, r_label, r_age, r_project
      FROM (SELECT i, random() AS r, random() AS r_stack, random() AS r_label, random() AS r_age,
                   random() AS r_project FROM generate_series(1, :jobs) i) r) s
"""

JOBS = f"""
INSERT INTO jobs (id, project_id, stack, image, command, env, payload, timeout_seconds, memory_bytes, cpus,
                  disk_bytes, secret_names, priority, label, retry_of, code, code_revision, schedule_id,
                  schedule_occurrence, webhook, status, attempt, retries, retries_used, retry_delay_seconds,
                  requeues, published_at, exit_code, error, output_bytes, output_truncated, created_at, started_at,
                  finished_at)
SELECT id, project, CASE WHEN r_stack < 0.7 THEN 'busybox' WHEN r_stack < 0.95 THEN 'python' ELSE 'busybox-gvisor' END,
       'longshore/busybox:1', '["sh", "-c", "echo hello"]', '{{"MODE": "bench"}}',
       '{{"n": ' || i || ', "data": "' || md5(id) || '"}}', 3600, 134217728, 0.5, 67108864, '[]', i % 3,
       CASE WHEN i % 10007 = 0 AND created < :now - 25 * 86400 THEN '{OLD_LABEL}'
            WHEN r_label < 0.5 THEN 'label-' || (i % 50) END,
       CASE WHEN i % 200 = 0 THEN md5(:prefix || (i - 1)) END,
       CASE WHEN r_label > 0.7 THEN 'code-' || (i % 20) END, CASE WHEN r_label > 0.7 THEN 1 END,
       CASE WHEN i % 100 = 1 THEN 'schedule-' || (i % 1000) END, CASE WHEN i % 100 = 1 THEN i END,
       CASE WHEN i % 50 = 0 THEN 'https://hooks.example.com/longshore' END,
       status, CASE WHEN i % 20 = 0 THEN 2 ELSE 1 END, 1, CASE WHEN i % 20 = 0 THEN 1 ELSE 0 END, 0, 0,
       CASE WHEN status <> 'rejected' THEN created END,
       CASE status WHEN 'succeeded' THEN 0 WHEN 'failed' THEN 1 + i % 3 WHEN 'oom_killed' THEN 137 END,
       CASE status WHEN 'failed' THEN 'exited with code ' || (1 + i % 3) WHEN 'timed_out' THEN 'timed out'
                   WHEN 'cancelled' THEN 'cancelled by a user' WHEN 'lost' THEN 'lost' WHEN 'rejected' THEN 'bad' END,
       CASE WHEN status NOT IN ('queued', 'running', 'rejected')
            THEN convert_to(repeat(md5(id) || ' line ' || i || E' of its output\\n',
                                   CASE WHEN i % 100 = 7 THEN 400 ELSE 1 + i % 10 END), 'UTF8') END,
       false, created, CASE WHEN status NOT IN ('queued', 'rejected') THEN created + 0.3 END,
       CASE WHEN status NOT IN ('queued', 'running') THEN created + 0.3 + 5 * r_stack END
FROM seed ORDER BY id
"""

ATTEMPTS = """
INSERT INTO attempts (job_id, number, status, worker, engine, host, container_id, container_name, exit_code,
                      error, created_at, claimed_at, progress_at, started_at, finished_at, released_at, reaped_at,
                      pull_seconds, create_seconds, start_seconds, wait_seconds, reap_seconds, infra_retries,
                      redeliveries, redrives)
SELECT j.id, n, CASE WHEN n < j.attempt OR j.status = 'lost' THEN 'failed' ELSE j.status END,
       CASE WHEN j.status <> 'queued' OR n < j.attempt THEN 'bench-worker-' || (n + ascii(j.id)) % 8 END,
       CASE WHEN j.status <> 'queued' OR n < j.attempt THEN 'bench-engine-' || (n + ascii(j.id)) % 8 END,
       'bench-host', md5(j.id || n), 'longshore-' || j.id || '-' || n,
       CASE WHEN n < j.attempt THEN 1 ELSE j.exit_code END,
       CASE WHEN n < j.attempt THEN 'exited with code 1' ELSE j.error END,
       j.created_at, j.started_at, j.finished_at, j.started_at, j.finished_at, j.finished_at, j.finished_at + 1,
       0.002, 0.047, 0.143, 0.022, 0.05, 0, 0, 0
FROM seed JOIN jobs j USING (id) CROSS JOIN LATERAL generate_series(1, j.attempt) n WHERE j.status <> 'rejected'
ORDER BY j.id, n
"""

DELIVERIES = """
INSERT INTO webhook_deliveries (job_id, url, body, tries, next_at, last_status, delivered_at, created_at)
SELECT j.id, j.webhook, '{"job_id":"' || j.id || '","status":"' || s || '"}', 1, j.created_at, 200,
       j.created_at + 1, j.created_at
FROM seed JOIN jobs j USING (id) CROSS JOIN unnest(ARRAY['queued', 'running', j.status]) s
WHERE j.webhook IS NOT NULL
"""

PROJECTS = """
INSERT INTO projects (id, name, created_at)
SELECT :prefix || 'p' || p, :prefix || '-project-' || p, :now FROM generate_series(1, 8) p
"""

#: The exporter's counts, as the status writes would have kept them: `current` jobs in each status now,
#: `total` that ever reached it (every accepted job was queued; the started ones ran).
COUNTS = """
INSERT INTO job_counts (stack, status, current, total)
SELECT stack, status, count(*), count(*) FILTER (WHERE status NOT IN ('queued', 'running')) FROM jobs GROUP BY 1, 2
UNION ALL SELECT stack, 'submitted', 0, count(*) FILTER (WHERE status <> 'rejected') FROM jobs GROUP BY 1
ON CONFLICT (stack, status) DO NOTHING;
UPDATE job_counts c SET total = a.accepted FROM (SELECT stack, count(*) AS accepted FROM jobs
    WHERE status <> 'rejected' GROUP BY 1) a WHERE c.stack = a.stack AND c.status = 'queued';
UPDATE job_counts c SET total = s.started FROM (SELECT stack, count(*) AS started FROM jobs
    WHERE started_at IS NOT NULL GROUP BY 1) s WHERE c.stack = s.stack AND c.status = 'running'
"""


def fill(engine: sa.Engine, jobs: int, *, main_project: str, now: float, prefix: str = "bench") -> dict[str, float]:
    """Add `jobs` jobs, half of them of `main_project` and the rest spread over eight more projects (made
    here), all with ids `md5(prefix || i)`; the seconds each phase took."""
    params = {"jobs": jobs, "now": now, "prefix": prefix}
    took: dict[str, float] = {}
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL maintenance_work_mem = '256MB'"))
        conn.execute(sa.text(PROJECTS), params)
        others = [f"{prefix}p{p}" for p in range(1, 9)]
        with _timer(took, "seed"):
            conn.execute(sa.text(SEED), {**params, "projects": [main_project, *others]})
        indexes = conn.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:tables) AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint)"), {"tables": list(TABLES)}).all()
        for name, _definition in indexes:
            conn.execute(sa.text(f'DROP INDEX "{name}"'))
        for phase, statement in (("jobs", JOBS), ("attempts", ATTEMPTS), ("deliveries", DELIVERIES)):
            with _timer(took, phase):
                conn.execute(sa.text(statement), params)
        with _timer(took, "indexes"):
            for _name, definition in indexes:
                conn.execute(sa.text(definition))
        conn.execute(sa.text("DELETE FROM job_counts"))
        for statement in COUNTS.split(";"):
            conn.execute(sa.text(statement))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn, _timer(took, "vacuum"):
        conn.execute(sa.text(f"VACUUM ANALYZE {', '.join(TABLES)}, job_counts, projects"))
    return took


@contextlib.contextmanager
def _timer(took: dict[str, float], phase: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    took[phase] = time.monotonic() - started
