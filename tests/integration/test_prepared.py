"""Prepared statements against the real PostgreSQL: prepared once per connection, meaning what the text meant,
off behind a pooler that drops them, and prepared afresh after a migration changes a column's type under them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from longshore.domain.records import NewJob
from longshore.store import Claim, Store
from longshore.store.database import read


def prepared_on(conn) -> list[str]:
    """The statements prepared on this connection, read through the driver itself (never prepared)."""
    cursor = conn.connection.dbapi_connection.cursor()
    cursor.execute("SELECT statement FROM pg_prepared_statements")
    return [row[0] for row in cursor.fetchall()]


def alter(url: str, sql: str) -> None:
    """A migration's change, from a connection of its own (as `longshore db upgrade` makes it)."""
    migrator = Store(url, prepare=False)
    with migrator.engine.begin() as conn:
        conn.execute(sa.text(sql))
    migrator.close()


def test_a_column_whose_type_a_migration_changed_under_prepared_statements_is_read_afresh(migrated_database):
    # Given a connection that prepared a read of a table, alone (autocommit) and in a transaction
    alter(migrated_database, "CREATE TABLE marks (n int PRIMARY KEY, label varchar(8))")
    alter(migrated_database, "INSERT INTO marks VALUES (1, 'one')")
    store = Store(migrated_database, pool_size=1, max_overflow=0)
    store.health.last_failure = 0.0
    alone, together = (sa.text(f"SELECT n, label FROM marks WHERE n = :n AND {kind}") for kind in ("1 = 1", "2 = 2"))
    with read(store.engine) as conn:
        assert [conn.execute(alone, {"n": 1}).one() for _ in range(3)] == [(1, "one")] * 3
    for _ in range(3):
        with store.engine.begin() as conn:
            assert conn.execute(together, {"n": 1}).one() == (1, "one")
    with read(store.engine) as conn:
        assert len(prepared_on(conn)) == 2
    # When a migration widens the column (the prepared reads' result type changes: SQLSTATE 0A000)
    alter(migrated_database, "ALTER TABLE marks ALTER COLUMN label TYPE varchar(16)")
    # Then the read alone answers at once, and is prepared afresh on that connection as it runs again
    with read(store.engine) as conn:
        assert conn.execute(alone, {"n": 1}).one() == (1, "one")
        assert prepared_on(conn) == []
        assert [conn.execute(alone, {"n": 1}).one() for _ in range(2)] == [(1, "one")] * 2
        assert len(prepared_on(conn)) == 1
    # And a transaction (the read in it prepared afresh, then the column changed again) fails as an outage
    # does: its caller retries it, and the retry answers; the store does not count as away meanwhile
    for _ in range(2):
        with store.engine.begin() as conn:
            assert conn.execute(together, {"n": 1}).one() == (1, "one")
    alter(migrated_database, "ALTER TABLE marks ALTER COLUMN label TYPE text")
    with pytest.raises(sa.exc.OperationalError, match="no longer fits the store's schema"):
        with store.engine.begin() as conn:
            conn.execute(together, {"n": 1})
    for _ in range(3):
        with store.engine.begin() as conn:
            assert conn.execute(together, {"n": 1}).one() == (1, "one")
    with read(store.engine) as conn:  # dropped before the retry ran, and prepared afresh by it
        assert len(prepared_on(conn)) == 1
    assert store.health.seconds_up() > 1000
    # And in a savepoint: its rollback passes while the transaction has failed, and the transaction goes on
    alter(migrated_database, "ALTER TABLE marks ALTER COLUMN label TYPE varchar(32)")
    with store.engine.begin() as conn:
        with pytest.raises(sa.exc.OperationalError, match="no longer fits the store's schema"):
            with conn.begin_nested():
                conn.execute(together, {"n": 1})
        assert conn.execute(together, {"n": 1}).one() == (1, "one")
        assert prepared_on(conn) == []
    store.close()


def test_a_real_error_of_the_out_of_date_code_is_the_statements_own(migrated_database):
    # Given a function that refuses a value with SQLSTATE 0A000 ("feature not supported"), as a plan's error would
    alter(migrated_database, """CREATE FUNCTION refuse_negative(n int) RETURNS int LANGUAGE plpgsql AS $$
        BEGIN IF n < 0 THEN RAISE EXCEPTION 'no negatives' USING ERRCODE = 'feature_not_supported'; END IF;
        RETURN n; END $$""")
    store = Store(migrated_database, pool_size=1, max_overflow=0)
    refused = sa.text("SELECT refuse_negative(:n) + 0")
    # When its first runs fail, the prepared one at its first EXECUTE too: the error is the statement's own,
    # in a transaction as alone, and the statement is never prepared again
    for _ in range(3):
        with pytest.raises(sa.exc.NotSupportedError, match="no negatives"):
            with store.engine.begin() as conn:
                conn.execute(refused, {"n": -1})
    from longshore.store import prepared

    assert any("refuse_negative" in text and "+ 0" in text for text in prepared._UNPREPARABLE)
    with read(store.engine) as conn:
        assert [conn.execute(refused, {"n": n}).scalar() for n in (1, 2, 3)] == [1, 2, 3]
        # Alone, a statement that ran well before and now fails so is run once more as text: the error is its own
        other = sa.text("SELECT refuse_negative(:n) + 1")
        assert [conn.execute(other, {"n": n}).scalar() for n in (1, 2, 3)] == [2, 3, 4]
        with pytest.raises(sa.exc.NotSupportedError, match="no negatives"):
            conn.execute(other, {"n": -1})
    store.close()


def test_a_workers_claim_and_a_jobs_read_go_on_across_a_migration_that_widens_a_jobs_column(migrated_database):
    store = Store(migrated_database, pool_size=1, max_overflow=0)  # one connection: the prepared ones are its
    store.workers.register("w", host="h", engine_id="engine", instance="i", pid=1, stacks=["busybox"], slots=50)

    def new_job() -> str:
        return store.jobs.create(NewJob(stack="busybox", image="longshore/busybox:1", command=["true"], env={},
                                        payload="{}", disk_bytes=16 << 20, timeout_seconds=10,
                                        memory_bytes=64 << 20, cpus=0.5))

    def claimed_and_read(job_id: str) -> tuple[Claim, str]:
        claim = store.attempts.claim(job_id, 1, worker="w", engine="engine", host="h", slots=50)[0]
        return claim, store.jobs.get(job_id).stack

    # Given a worker whose claims (the claim's function returns the job's row) and job reads are prepared
    assert [claimed_and_read(new_job()) for _ in range(3)] == [(Claim.CLAIMED, "busybox")] * 3
    with read(store.engine) as conn:
        assert any("longshore_claim_v1(" in text for text in prepared_on(conn))
    # When a migration widens the jobs' stack while the worker runs
    alter(migrated_database, "ALTER TABLE jobs ALTER COLUMN stack TYPE varchar(128)")
    # Then its next claims and reads answer as before: no failure reaches the worker
    assert [claimed_and_read(new_job()) for _ in range(3)] == [(Claim.CLAIMED, "busybox")] * 3
    store.close()


def test_statements_a_connection_repeats_are_prepared_once_there_and_a_failed_prepare_aborts_nothing(
        postgres, monkeypatch):
    from longshore.store import prepared

    store = Store(postgres, pool_size=1, max_overflow=0)  # one connection: every block below shares it
    sum_of = sa.text("SELECT CAST(:a AS int) + CAST(:b AS int), '%' || :c, :c")  # a literal % and a repeated name
    untyped = sa.text("SELECT :a IS NULL")  # PostgreSQL cannot infer its parameter's type: never prepared

    with store.engine.begin() as conn:
        conn.execute(sa.text("CREATE TEMP TABLE marks (n int)"))
        # The first run is sent as it is; the second prepares it; each answers as an unprepared one would
        for n in range(3):
            assert conn.execute(sum_of, {"a": n, "b": 10, "c": "it's"}).one() == (n + 10, "%it's", "it's")
        [statement] = prepared_on(conn)
        assert "$1" in statement and "$3" in statement and "'%'" in statement and "%(" not in statement
        # A statement that cannot be prepared fails to under a savepoint: the transaction goes on, and commits
        conn.execute(sa.text("INSERT INTO marks VALUES (1)"))
        for _ in range(3):
            assert conn.execute(untyped, {"a": None}).scalar() is True
        conn.execute(sa.text("INSERT INTO marks VALUES (2)"))
        assert conn.execute(sa.text("SELECT sum(n) FROM marks")).scalar() == 3
        # Nor are a batch of rows (insertmanyvalues) and a read on a server-side cursor, however often they run
        marks, streamed = sa.table("marks", sa.column("n")), sa.text("SELECT n FROM marks WHERE n >= :n")
        for _ in range(3):
            conn.execute(marks.insert(), [{"n": 0}, {"n": 0}])
            assert conn.execute(streamed.execution_options(stream_results=True), {"n": 1}).scalars().all() == [1, 2]
        assert len(prepared_on(conn)) == 1
    assert store.engine.dialect.name == "postgresql"
    # What was prepared outlives a rolled-back transaction (PREPARE is not transactional)
    with pytest.raises(sa.exc.DataError):
        with store.engine.begin() as conn:
            conn.execute(sum_of, {"a": 1, "b": 1, "c": ""})
            conn.execute(sa.text("SELECT 1 / 0"))
    # A prepared statement's failure names its text (PostgreSQL's own message quotes the EXECUTE that ran it)
    with pytest.raises(sa.exc.DataError) as failed:
        with store.engine.connect() as conn:
            conn.execute(sum_of, {"a": "one", "b": 1, "c": ""})
    assert failed.value.statement.startswith("SELECT CAST(") and "[SQL: SELECT CAST(" in str(failed.value)
    with store.engine.connect() as conn:
        assert conn.execute(sum_of, {"a": 2, "b": 2, "c": "x"}).one() == (4, "%x", "x")
        # A connection keeps at most MAX_PREPARED: the least recently used goes (DEALLOCATE)
        monkeypatch.setattr(prepared, "MAX_PREPARED", 3)
        for n in range(4):
            for _ in range(2):
                assert conn.execute(sa.text(f"SELECT CAST(:a AS int) + {n}"), {"a": 1}).scalar() == n + 1
        assert len(prepared_on(conn)) == 3 and "+ 0" not in " ".join(prepared_on(conn))
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    # A connection that is replaced (the store restarted under it) starts with none, and prepares afresh
    killer = Store(postgres, pool_size=1, max_overflow=0, prepare=False)
    with killer.engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with pytest.raises(sa.exc.OperationalError):
        with store.engine.connect() as conn:
            conn.execute(sum_of, {"a": 1, "b": 1, "c": ""})
    with store.engine.connect() as conn:
        for n in range(3):
            assert conn.execute(sum_of, {"a": n, "b": 0, "c": ""}).one() == (n, "%", "")
        assert len(prepared_on(conn)) == 1
    # With LONGSHORE_DATABASE_PREPARE=off, nothing is
    with killer.engine.connect() as conn:
        for _ in range(3):
            conn.execute(sum_of, {"a": 1, "b": 1, "c": ""})
        assert prepared_on(conn) == []


def test_a_prepared_statement_keeps_what_the_unprepared_one_meant_and_a_pooler_that_drops_them_turns_them_off(
        postgres, monkeypatch):
    from longshore.store import prepared

    monkeypatch.setattr(prepared._switch, "on", True)  # put back as it was after the test
    store = Store(postgres, pool_size=1, max_overflow=0)
    with store.engine.begin() as conn:
        conn.execute(sa.text("CREATE TEMP TABLE numbers (n int PRIMARY KEY) ON COMMIT PRESERVE ROWS"))
        conn.execute(sa.text("INSERT INTO numbers VALUES (1), (2)"))
    counted = sa.text("SELECT count(*) FROM numbers WHERE n = :n")
    with store.engine.connect() as conn:
        assert [conn.execute(counted, {"n": n}).scalar() for n in (1, 2, 3)] == [1, 1, 0]  # prepared by now
        # A whole number past 32 bits matches nothing, as the unprepared statement said (not an error)
        assert conn.execute(counted, {"n": 99_999_999_999}).scalar() == 0
    # A savepoint's rollback (a nested transaction that failed) runs as often as it is needed, and works
    for _ in range(3):
        with store.engine.begin() as conn:
            with pytest.raises(sa.exc.IntegrityError):
                with conn.begin_nested():
                    conn.execute(sa.text("INSERT INTO numbers VALUES (1)"))
            conn.execute(sa.text("INSERT INTO numbers VALUES (3)"))
            conn.execute(sa.text("DELETE FROM numbers WHERE n = 3"))
    # A pooler that hands the session's statements to another server connection (here: they are dropped
    # behind the store's back): the statement that meets it fails once, then this process prepares nothing
    with store.engine.connect() as conn:
        conn.connection.dbapi_connection.cursor().execute("DEALLOCATE ALL")
        with pytest.raises(sa.exc.OperationalError):  # as an outage is: its caller retries it
            conn.execute(counted, {"n": 1})
    assert prepared._switch.on is False
    with store.engine.connect() as conn:
        assert [conn.execute(counted, {"n": 2}).scalar() for _ in range(3)] == [1, 1, 1]
