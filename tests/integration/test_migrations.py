"""Real migrations: a store made by the first release (be077c2) upgraded with its data, and a schema range."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from support.services import ADMIN_DATABASE_URL, REPO

FIRST_RELEASE = REPO / "tests" / "support" / "first_release"
#: Rows as the first release wrote them: a job that succeeded, and one still queued (its pull on the
#: first release's queue, `stack.busybox`).
OLD_JOBS = """
INSERT INTO jobs (id, stack, image, command, env, payload, timeout_seconds, memory_bytes, cpus, status, attempt,
  retries, retries_used, retry_delay_seconds, published_at, exit_code, error, result, output, output_truncated,
  created_at, started_at, finished_at)
VALUES ('old-done', 'busybox', 'longshore/busybox:1', '["echo", "hi"]', '{}', '{}', 60, 67108864, 0.5, 'succeeded',
  1, 0, 0, 0, 1.0, 0, NULL, '{"sum": 3}', 'hi from the first release', false, 1.0, 2.0, 3.0),
       ('old-queued', 'busybox', 'longshore/busybox:1', '["sh", "-c", "echo migrated"]', '{}', '{}', 60, 67108864,
  0.5, 'queued', 1, 0, 0, 0, 1.0, NULL, NULL, NULL, NULL, false, 1.0, NULL, NULL);
INSERT INTO attempts (job_id, number, status, worker, created_at, infra_retries, redeliveries, exit_code, finished_at)
VALUES ('old-done', 1, 'succeeded', 'longshore-busybox@old', 1.0, 0, 0, 0, 3.0),
       ('old-queued', 1, 'queued', NULL, 1.0, 0, 0, NULL, NULL);
"""


def psql(database: str, sql: str) -> None:
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", f"postgresql://longshore:longshore@127.0.0.1:5432/{database}"],
                   input=sql, text=True, check=True, capture_output=True)


@pytest.fixture
def first_release_database(postgres):
    """A PostgreSQL database as the first release left it, with jobs in it; dropped afterwards."""
    name = f"longshore_first_{uuid.uuid4().hex[:8]}"
    psql("longshore", f'CREATE DATABASE "{name}"')
    psql(name, (FIRST_RELEASE / "postgres.sql").read_text() + OLD_JOBS)
    yield f"postgresql://longshore:longshore@127.0.0.1:5432/{name}"
    import psycopg2

    admin = psycopg2.connect(ADMIN_DATABASE_URL, connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def longshore(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["longshore", *args], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120)


def test_a_first_release_store_is_upgraded_with_its_jobs_intact_and_runnable(
        distributed, first_release_database, start_worker, rabbitmq, wait_reaped):
    from kombu import Connection, Queue

    from longshore.domain.status import JobStatus
    from longshore.store import Store
    from longshore.store.schema import SCHEMA_VERSION

    env = {"LONGSHORE_DATABASE_URL": first_release_database}
    # Given a store of the first release, whose workers refuse it until it is upgraded
    refused = longshore(env, "status", "old-done")
    assert refused.returncode == 2 and "run `longshore db upgrade`" in refused.stderr
    # When it is upgraded (twice: an upgrade is idempotent)
    for _ in range(2):
        upgraded = longshore(env, "db", "upgrade")
        assert upgraded.returncode == 0 and f"schema at version {SCHEMA_VERSION}" in upgraded.stdout, upgraded.stderr
    # Then the old jobs read as they were, their text output now bytes
    store = Store(first_release_database)
    done = store.jobs.get("old-done")
    assert (done.status, done.exit_code, done.output, done.result) == (
        JobStatus.SUCCEEDED, 0, b"hi from the first release", b'{"sum": 3}')
    status = json.loads(longshore(env, "status", "old-done", "--json").stdout)
    assert status["status"] == "succeeded" and status["attempts"][0]["worker"] == "longshore-busybox@old"
    # And the queued job, whose pull waits on the first release's queue, runs on a new worker
    with Connection(rabbitmq) as connection:
        legacy = Queue("stack.busybox", routing_key="stack.busybox", durable=True)
        store_runtime_publish(connection, legacy, "old-queued")
    start_worker("busybox", env=env)
    finished = store.jobs.wait_finished("old-queued", timeout=60)
    assert finished.status is JobStatus.SUCCEEDED and finished.output == b"migrated\n"
    assert wait_reaped(["old-queued"], timeout=20) == []


def store_runtime_publish(connection, queue, job_id: str) -> None:
    """Publish a pull for attempt 1 of `job_id` as the first release did (Celery protocol 2, by task name)."""
    from celery import Celery

    app = Celery(broker=connection.as_uri(include_password=True))
    app.send_task("longshore.pull_image", (job_id, 1), queue=queue)


def test_a_first_release_embedded_store_is_upgraded_and_its_queued_jobs_run(docker_engine, embedded_env):
    # Given an embedded store of the first release with a job its process queued and never ran
    home = Path(embedded_env["LONGSHORE_HOME"])
    home.mkdir(parents=True)
    old = sqlite3.connect(home / "longshore.db")
    old.executescript((FIRST_RELEASE / "sqlite.sql").read_text() + OLD_JOBS.replace("false", "0"))
    old.close()
    # When the next longshore command runs a worker
    done = subprocess.run(["longshore", "run", "--", "sleep", "4"], env=embedded_env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    # Then the store was migrated, and the old queued job ran
    status = json.loads(subprocess.run(["longshore", "status", "old-queued", "--json"], env=embedded_env,
                                       capture_output=True, text=True).stdout)
    assert status["status"] == "succeeded"
    logs = subprocess.run(["longshore", "logs", "old-queued"], env=embedded_env, capture_output=True, text=True)
    assert logs.stdout == "migrated\n"


def test_a_schema_newer_but_compatible_is_accepted_and_an_incompatible_one_is_refused(tmp_path):
    import sqlalchemy as sa

    from longshore.errors import ConfigError
    from longshore.store import Store
    from longshore.store.schema import SCHEMA_VERSION

    # Given a store at this code's version
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    this, later = SCHEMA_VERSION, SCHEMA_VERSION + 1
    assert store.upgrade() == this
    # When a later release migrated it to its version, declaring that this version may still run on it
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE longshore_schema SET version = {later}, compatible_from = {this}"))
    # Then this code runs on it (a rolling upgrade), but will not migrate it
    store.check_schema()
    with pytest.raises(ConfigError, match="newer than this Longshore"):
        store.upgrade()
    # And when the later release declares this version can no longer run on it, this code refuses, naming the fix
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE longshore_schema SET compatible_from = {later}"))
    with pytest.raises(ConfigError, match=rf"cannot use \(it needs version {later} or newer\): upgrade Longshore"):
        store.check_schema()


def test_the_tables_this_code_uses_are_the_tables_the_migrations_make(tmp_path):
    import sqlalchemy as sa

    from longshore.store import Store, schema

    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade()
    inspector = sa.inspect(store.engine)
    for table in schema.metadata.sorted_tables:
        migrated = {column["name"] for column in inspector.get_columns(table.name)}
        assert migrated == set(table.c.keys()), table.name
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        assert {index.name for index in table.indexes} <= indexes, table.name


def test_concurrent_first_starts_migrate_an_embedded_store_once(embedded_env):
    # Given a fresh embedded home, when several commands start at once, then all of them work
    runs = [subprocess.Popen(["longshore", "ls"], env=embedded_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(6)]
    results = [(run.wait(60), run.stderr.read()) for run in runs]
    assert all(code == 0 for code, _ in results), results


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_a_migrated_store_has_the_indexes_the_schema_declares(kind, postgres, tmp_path):
    import sqlalchemy as sa

    from longshore.store import Store, schema

    # Given a store migrated from nothing by the numbered migrations
    store = Store(postgres if kind == "postgresql" else f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade()
    # Then each table's indexes are the ones schema.py declares, by name and columns
    inspector = sa.inspect(store.engine)
    for table in (schema.jobs, schema.attempts, schema.webhook_deliveries):
        found = {index["name"]: index["column_names"] for index in inspector.get_indexes(table.name)}
        assert found == {index.name: [column.name for column in index.columns] for index in table.indexes}


def test_two_migrators_build_the_list_indexes_while_writes_go_on_and_finish_a_half_done_build(first_release_database):
    import threading

    import psycopg2
    import sqlalchemy as sa

    from longshore.store import Store, schema

    # Given a store at schema 7 whose upgrade to 8 stopped half-way: its column added, a list index's build
    # failed (an INVALID index of that name is left, as a failed CREATE INDEX CONCURRENTLY leaves it)
    engine = Store(first_release_database).engine
    schema.upgrade(engine, revision="0007")
    writer, blocker = (psycopg2.connect(first_release_database) for _ in range(2))
    writer.autocommit = True
    with writer.cursor() as cursor:
        cursor.execute("ALTER TABLE jobs ADD COLUMN erased_at double precision")
        with pytest.raises(psycopg2.errors.UniqueViolation):  # both jobs are busybox's
            cursor.execute("CREATE UNIQUE INDEX CONCURRENTLY ix_jobs_status_created ON jobs (stack)")
    # And a transaction that wrote to jobs and stays open while the upgrade runs
    with blocker.cursor() as cursor:
        cursor.execute("UPDATE jobs SET priority = priority WHERE id = 'old-done'")
    upgraded = []

    def run_upgrade():
        try:
            upgraded.append(schema.upgrade(engine))
        except Exception as exc:  # shown by the assertion below
            upgraded.append(exc)

    # (two migrators, as when several processes start together: the second waits for the first's lock)
    upgrades = [threading.Thread(target=run_upgrade) for _ in range(2)]
    for upgrade in upgrades:
        upgrade.start()
    # When the upgrade waits for that transaction in its index build
    with writer.cursor() as cursor:
        for _ in range(300):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE '%INDEX CONCURRENTLY%' "
                           "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
            if cursor.fetchone()[0]:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the upgrade never waited in a concurrent index build")
        # Then other writes to jobs still go through (a plain CREATE INDEX would queue them behind it)
        cursor.execute("SET lock_timeout = '3s'")
        cursor.execute("UPDATE jobs SET priority = priority WHERE id = 'old-queued'")
    blocker.commit()
    for upgrade in upgrades:
        upgrade.join(120)
    # And once that transaction ends the upgrade finishes (the second migrator then finds nothing to do):
    # every index valid, the ones the schema declares
    assert upgraded == [schema.SCHEMA_VERSION] * 2
    with writer.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
        assert cursor.fetchone()[0] == 0
    found = {index["name"]: index["column_names"] for index in sa.inspect(engine).get_indexes("jobs")}
    assert found == {index.name: [column.name for column in index.columns] for index in schema.jobs.indexes}
    for connection in (writer, blocker):
        connection.close()
    engine.dispose()
