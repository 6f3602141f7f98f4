"""The embedded default, through the CLI as a first-time user runs it: no broker, no database."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from support.helpers import wait_until


def longshore(env, *args, timeout=60):
    return subprocess.run(["longshore", *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_run_prints_output_collects_result_and_exits_with_the_jobs_code(docker_engine, embedded_env):
    # Given the embedded default and a job that reads its payload and writes a result
    script = 'cat "$PAYLOAD_FILE"; echo; echo "id=$TASK_ID"; echo \'{"sum": 3}\' > "$RESULT_FILE"; exit 3'
    # When it runs
    done = longshore(embedded_env, "run", "--stack", "busybox", "--payload", '{"a": 1, "b": 2}', "--", "sh", "-c", script)
    # Then its output is printed and the CLI exits with the job's exit code
    assert done.returncode == 3, done.stderr
    assert '{"a": 1, "b": 2}' in done.stdout
    job_id = done.stdout.split("id=")[1].split()[0]
    status = json.loads(longshore(embedded_env, "status", job_id, "--json").stdout)
    assert status["status"] == "failed" and status["exit_code"] == 3
    assert json.loads(status["result"]) == {"sum": 3}
    assert status["attempts"][0]["worker"].startswith("embedded-")
    assert longshore(embedded_env, "logs", job_id).stdout == done.stdout


def test_a_succeeding_job_exits_zero(docker_engine, embedded_env):
    done = longshore(embedded_env, "run", "--", "echo", "hello from longshore")
    assert (done.returncode, done.stdout) == (0, "hello from longshore\n"), done.stderr


def test_unknown_stack_is_refused_with_the_known_stacks_named(embedded_env):
    done = longshore(embedded_env, "run", "--stack", "cobol", "--", "true")
    assert done.returncode == 125
    assert "unknown stack 'cobol'" in done.stderr and "busybox" in done.stderr
    assert "cobol" not in longshore(embedded_env, "ls").stdout


def test_a_bad_setting_stops_the_program_naming_the_variable(embedded_env):
    done = longshore({**embedded_env, "LONGSHORE_OUTPUT_LIMIT_BYTES": "lots"}, "stacks")
    assert done.returncode == 2
    assert "LONGSHORE_OUTPUT_LIMIT_BYTES" in done.stderr and "'lots' is not a number" in done.stderr


def test_a_job_past_its_timeout_is_killed_and_exits_124(docker_engine, embedded_env):
    started = time.monotonic()
    done = longshore(embedded_env, "run", "--timeout", "2", "--", "sleep", "60")
    assert done.returncode == 124, done.stderr
    # well before the 60 s the job would take (the CLI's start and the engine's share of the time grow with
    # the machine's load: a tighter bound failed a run at load 14)
    assert time.monotonic() - started < 40
    assert "timed_out" in done.stderr


def test_a_store_from_an_older_schema_is_refused_with_the_way_out_named(embedded_env, tmp_path):
    import sqlite3
    from pathlib import Path

    # Given an embedded store whose tables predate this version's columns
    home = Path(embedded_env["LONGSHORE_HOME"])
    home.mkdir(parents=True)
    old = sqlite3.connect(home / "longshore.db")
    for table in ("jobs (id text)", "attempts (job_id text)", "workers (name text)", "longshore_schema (version int)"):
        old.execute(f"create table {table}")
    old.execute("insert into longshore_schema values (1)")
    old.commit()
    # When a job is run, then it stops at once with what to do, and nothing runs
    done = longshore(embedded_env, "run", "--", "true")
    assert done.returncode == 2
    assert "lacks columns" in done.stderr and "delete $LONGSHORE_HOME/longshore.db" in done.stderr


def test_a_default_stack_not_in_the_manifest_stops_the_program_naming_it(embedded_env):
    done = longshore({**embedded_env, "LONGSHORE_DEFAULT_STACK": "nosuch"}, "stacks")
    assert done.returncode == 2
    assert "LONGSHORE_DEFAULT_STACK: 'nosuch' is not a stack of" in done.stderr and "busybox" in done.stderr


def _job_ids(env) -> list[str]:
    return [line.split()[0] for line in longshore(env, "ls", "--limit", "100").stdout.splitlines()[1:]]


def _run_until_running(env, *command: str) -> tuple[subprocess.Popen, list[str]]:
    """A foreground `longshore run` of `command`, once its job runs; with the job ids in the store."""
    run = subprocess.Popen(["longshore", "run", "--", *command], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (ids := _job_ids(env)) or json.loads(longshore(env, "status", ids[0], "--json").stdout)["status"] \
            != "running":
        if time.monotonic() > deadline:
            run.kill()
            raise AssertionError(f"the job never ran: {run.communicate()}")
        time.sleep(0.2)
    return run, ids


@pytest.mark.serial  # a latency promise: measured on a machine not running other sessions
def test_ctrl_c_on_a_foreground_run_cancels_its_job(docker_engine, embedded_env, wait_reaped):
    # Given a foreground run of a long job
    run, ids = _run_until_running(embedded_env, "sleep", "60")
    # When it gets Ctrl-C, then the run exits 130 within seconds, the job is cancelled and its container gone
    started = time.monotonic()
    run.send_signal(signal.SIGINT)
    assert run.wait(15) == 130, run.stderr.read()
    assert time.monotonic() - started < 5
    assert json.loads(longshore(embedded_env, "status", ids[0], "--json").stdout)["status"] == "cancelled"
    assert wait_reaped(ids, timeout=10) == []


@pytest.mark.serial  # a latency promise: measured on a machine not running other sessions
def test_an_embedded_job_is_cancelled_from_another_process_within_seconds(docker_engine, embedded_env, wait_reaped):
    # Given an embedded run of a long job in one process
    run, ids = _run_until_running(embedded_env, "sleep", "60")
    # When another process cancels it (its kill message cannot reach the first process's memory)
    started = time.monotonic()
    assert longshore(embedded_env, "cancel", ids[0]).returncode == 0
    # Then the first process's watcher stops the container within seconds, and the run exits 130
    assert run.wait(15) == 130, run.stderr.read()
    assert time.monotonic() - started < 4
    assert wait_reaped(ids, timeout=10) == []


def test_jobs_of_an_embedded_process_that_died_run_in_the_next_one(docker_engine, embedded_env, wait_reaped):
    # Given an embedded process with one slot that queued two jobs and died (SIGKILL) while the second
    # waited in its memory
    script = ("import longshore, os, time; "
              "a = longshore.submit('busybox', ['sh', '-c', 'sleep 2; echo first']); "
              "b = longshore.submit('busybox', ['echo', 'second']); "
              "print(a.id, b.id, flush=True); time.sleep(60)")
    died = subprocess.Popen([sys.executable, "-c", script], env={**embedded_env, "LONGSHORE_EMBEDDED_SLOTS": "1"},
                            stdout=subprocess.PIPE, text=True)
    first, second = died.stdout.readline().split()
    # (once the first job's container runs: killed before that, it is requeued, a second attempt)
    wait_until(lambda: docker_engine.api.containers(filters={"label": f"io.longshore.job={first}",
                                                            "status": "running"}), what="the first job's start")
    died.kill()
    died.wait(10)
    # When the next longshore command runs a worker
    assert longshore(embedded_env, "run", "--", "sleep", "5").returncode == 0
    # Then both jobs ended: the started one adopted (never run again), the queued one run once
    for job_id, words in ((first, "first"), (second, "second")):
        status = json.loads(longshore(embedded_env, "status", job_id, "--json").stdout)
        assert status["status"] == "succeeded", status
        assert longshore(embedded_env, "logs", job_id).stdout == f"{words}\n"
        assert len(status["attempts"]) == 1
    assert wait_reaped([first, second], timeout=15) == []
