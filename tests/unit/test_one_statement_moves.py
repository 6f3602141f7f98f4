"""The one-statement writes (`store.moves`) as SQLAlchemy sees them: each is compiled once and then found in its
cache (a statement SQLAlchemy cannot cache is compiled again at every execution: a worker's start and finish
cost a millisecond more each), and their counts are `count_move`'s."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.dialects import postgresql

from longshore.domain.status import JobStatus
from longshore.store.counts import _changes
from longshore.domain.records import NewJob
from longshore.store.moves import _insert_statement, _statement
from longshore.store.rows import new_job_row

MOVES = [(JobStatus.QUEUED, JobStatus.RUNNING, ("started_at",), ("status", "started_at", "progress_at"), (), False),
         (JobStatus.RUNNING, JobStatus.SUCCEEDED, ("exit_code", "finished_at", "secret_env"),
          ("status", "finished_at", "start_seconds"), ("released_at",), True)]


@pytest.mark.parametrize("old, target, job_columns, attempt_columns, kept, announce", MOVES)
@pytest.mark.parametrize("owned", [True, False])
def test_a_moves_statement_is_cached_by_sqlalchemy_and_counts_as_count_move_does(
        old, target, job_columns, attempt_columns, kept, announce, owned):
    statement = _statement(old.value, target.value, job_columns, attempt_columns, kept, owned, announce)
    assert statement._generate_cache_key() is not None
    text = str(statement.compile(dialect=postgresql.psycopg2.dialect()))
    counted = re.findall(r"SELECT '(\w+)' AS status, (-?\d+) AS current, (-?\d+) AS total", text)
    assert [(status, (int(current), int(total))) for status, current, total in counted] == _changes(
        old.value, target.value, False)
    assert ("pg_notify" in text) is announce and ("attempts.worker = %(w_owner)s" in text) is owned
    assert all(f"coalesce(attempts.{name}, %(a_{name})s)" in text for name in kept)



def test_the_submits_statement_is_cached_and_casts_text_to_no_length():
    new = NewJob(stack="busybox", image="i", command=["true"], env={}, payload="{}", timeout_seconds=1,
                 memory_bytes=1, cpus=1, disk_bytes=1)
    statement = _insert_statement(tuple(new_job_row(new, None, 0.0)))
    assert statement._generate_cache_key() is not None
    text = str(statement.compile(dialect=postgresql.psycopg2.dialect()))
    # a cast to VARCHAR(n) would cut a value to fit, where the column refuses it
    assert "CAST(%(id)s AS VARCHAR)" in text and not re.search(r"AS VARCHAR\(\d+\)", text)
    counted = re.findall(r"SELECT '(\w+)' AS status, (-?\d+) AS current, (-?\d+) AS total", text)
    assert [(status, (int(current), int(total))) for status, current, total in counted] == _changes(
        None, JobStatus.QUEUED.value, True)


def test_the_claims_call_is_cached_and_reads_every_column_of_the_job_by_name():
    from longshore.store.moves import _CLAIM_CALL
    from longshore.store.schema import jobs

    assert _CLAIM_CALL._generate_cache_key() is not None
    text = str(_CLAIM_CALL.compile(dialect=postgresql.psycopg2.dialect()))
    # by name from the function's row (the table's column order may differ from the code's after migrations)
    assert re.findall(r'\(claim\.job\)\."(\w+)"', text) == list(jobs.c.keys())
    assert [column.name for column in _CLAIM_CALL.selected_columns][4:] == list(jobs.c.keys())
