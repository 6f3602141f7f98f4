"""Schedules against the real store and broker: exactly one job per occurrence with two scheduler processes
(one killed between occurrences), the catch-up rule after downtime, and the CLI's list, pause and delete."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from support.helpers import longshore_cli as cli, wait_until


def jobs_of(schedule_id: str):
    from longshore.service.runtime import get_runtime

    return get_runtime().store.reads.list_jobs(schedule_id=schedule_id)


def active(process) -> bool:
    return "is the active scheduler" in process.log_path.read_text()


@pytest.mark.timeout(180)
def test_run_every_60_run_times_2_makes_exactly_two_jobs_with_two_schedulers_one_killed_between_runs(
        client, start_worker, background):
    # Given one scheduler active, a second one waiting, and a worker (which runs a third)
    first = background(["longshore", "scheduler"])
    wait_until(lambda: active(first), timeout=20, what="the first scheduler to take the lease")
    second = background(["longshore", "scheduler"])
    start_worker("busybox")
    # When a schedule runs every 60 s, twice, from now
    created = cli("schedules", "create", "--stack", "busybox", "--run-every", "60", "--run-times", "2",
                  "--payload", '{"from": "a schedule"}', "--", "sh", "-c", "cat $PAYLOAD_FILE")
    assert created.returncode == 0, created.stderr
    schedule_id = created.stdout.strip()
    wait_until(lambda: len(jobs_of(schedule_id)) == 1, timeout=15, what="the first occurrence's job")
    # And the active scheduler is killed between the occurrences
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    # Then another takes over, and the second occurrence makes one job 60 s after the first
    [one] = jobs_of(schedule_id)
    two = wait_until(lambda: len(jobs_of(schedule_id)) >= 2 and jobs_of(schedule_id), timeout=90,
                     what="the second occurrence's job")
    time.sleep(3)  # a third (or a duplicate) would come within a scheduler round or two
    made = sorted(jobs_of(schedule_id), key=lambda job: job.schedule_occurrence)
    assert [job.schedule_occurrence for job in made] == [0, 1]
    assert 59 <= made[1].created_at - made[0].created_at <= 63
    for job in made:
        assert client.JobHandle(job.id).wait(timeout=60).output == b'{"from": "a schedule"}'
    shown = json.loads(cli("schedules", "show", schedule_id).stdout)
    assert (shown["state"], shown["runs"], shown["skipped"], shown["next_at"]) == ("done", 2, 0, None)
    assert one.id == made[0].id and len(two) == 2 and second.poll() is None


def test_after_downtime_a_schedule_runs_once_not_once_per_missed_run(client, start_worker):
    start_worker("busybox")
    # Given a schedule that should have run 6 times already (every 60 s from 5.5 minutes ago)
    schedule_id = client.schedule(stack="busybox", command=["true"], run_every=60, start_at=time.time() - 330,
                                  label="catch-up")
    # When a scheduler looks at it, one job is made (the latest due run) and five runs are counted as skipped
    wait_until(lambda: jobs_of(schedule_id), timeout=15, what="the catch-up job")
    time.sleep(2.5)
    [job] = jobs_of(schedule_id)
    assert job.schedule_occurrence == 5 and job.label == "catch-up"
    [listed] = [s for s in client.list_schedules(label="catch-up") if s.id == schedule_id]
    assert (listed.runs, listed.skipped, listed.next_occurrence) == (1, 5, 6)
    assert 0 < listed.next_at - time.time() <= 60
    client.delete_schedule(schedule_id)


def test_schedules_are_listed_paused_resumed_and_deleted_from_the_cli(client):
    name = f"nightly-{time.time_ns()}"
    created = cli("schedules", "create", "--stack", "busybox", "--label", name, "--start-at", "+3600",
                  "--run-every", "86400", "--", "echo", "nightly")
    assert created.returncode == 0, created.stderr
    schedule_id = created.stdout.strip()
    assert schedule_id in cli("schedules", "ls", "--label", name).stdout
    assert cli("schedules", "pause", schedule_id).returncode == 0
    assert json.loads(cli("schedules", "show", schedule_id).stdout)["state"] == "paused"
    assert cli("schedules", "resume", schedule_id).returncode == 0
    assert cli("schedules", "delete", schedule_id).returncode == 0
    assert schedule_id not in cli("schedules", "ls").stdout
    gone = cli("schedules", "pause", schedule_id)
    assert gone.returncode == 1 and f"schedule_id: no schedule '{schedule_id}'" in gone.stderr
    for bad, words in ((["--run-every", "30"], "run_every: must be a number of seconds, at least 60"),
                       (["--start-at", "soon"], "start_at: 'soon' is not an ISO 8601 time"),
                       (["--code", "no-such-code"], "code: no code named 'no-such-code'")):
        refused = cli("schedules", "create", "--stack", "busybox", *bad, "--", "true")
        assert refused.returncode == 125 and words in refused.stderr and "Traceback" not in refused.stderr


def test_celery_native_schedules_are_made_and_a_bad_one_is_kept_saying_why(client, start_worker):
    from longshore.service.runtime import get_runtime

    start_worker("busybox")
    app = get_runtime().publisher.app
    good = app.send_task("longshore.schedule", kwargs={"stack": "busybox", "command": ["true"], "run_every": 3600,
                                                        "start_at": time.time() + 3600}, queue="longshore.control")
    bad = app.send_task("longshore.schedule", kwargs={"stack": "busybox", "command": ["true"], "run_every": 5},
                        queue="longshore.control")
    made = wait_until(lambda: _shown(good.id), timeout=30, what="the Celery-native schedule")
    assert (made["state"], made["run_every"]) == ("active", 3600)
    refused = wait_until(lambda: _shown(bad.id), timeout=30, what="the refused schedule")
    assert refused["state"] == "done" and "run_every: must be a number of seconds, at least 60" in refused["last_error"]
    # A message whose id cannot name a schedule is kept too, under rejected_id(its id)
    from longshore.service.submit import rejected_id

    odd_id = "x" * 80
    app.send_task("longshore.schedule", task_id=odd_id, kwargs={"stack": "busybox", "command": ["true"],
                                                                "run_every": 3600}, queue="longshore.control")
    kept = wait_until(lambda: _shown(rejected_id(odd_id)), timeout=30, what="the schedule with an odd id")
    assert kept["state"] == "done" and "schedule_id: must be 1 to 53" in kept["last_error"]
    client.delete_schedule(good.id)


def _shown(schedule_id: str) -> dict | None:
    shown = cli("schedules", "show", schedule_id)
    return json.loads(shown.stdout) if shown.returncode == 0 else None
