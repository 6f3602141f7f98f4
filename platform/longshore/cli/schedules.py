"""Commands for schedules (IronWorker's scheduled tasks), and the scheduler itself."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time

import click

from longshore.cli.backend import api_client
from longshore.cli.codes import through
from longshore.cli.exit_codes import PLATFORM_FAILURE
from longshore.cli.jobs import _env, _payload, _time
from longshore.errors import InvalidJob


@click.group()
def schedules() -> None:
    """Schedules: a job made at start_at, then every run_every seconds (see `schedules create --help`)."""


@schedules.command()
@click.option("--code", help="Jobs of this code (NAME or NAME@REVISION).")
@click.option("--stack", help="Jobs on this stack (with COMMAND after `--`), when no code is given.")
@click.option("--payload", help="Each job's payload: JSON text, or @FILE.")
@click.option("--env", "env_pairs", multiple=True, metavar="K=V", help="A variable (repeatable).")
@click.option("--priority", type=int, help="0, 1 or 2.")
@click.option("--timeout", type=float, help="Seconds before each job is killed.")
@click.option("--label", help="Free text, on the schedule and its jobs.")
@click.option("--webhook", metavar="URL", help="Each job's status changes are POSTed here, signed.")
@click.option("--start-at", metavar="WHEN", help="First run: an ISO 8601 time with its zone, or +SECONDS from now "
              "(default now).")
@click.option("--run-every", type=float, help="Seconds between runs (at least 60); none: it runs once.")
@click.option("--run-times", type=int, help="Runs at most this many jobs.")
@click.option("--end-at", metavar="WHEN", help="No run after this time (ISO 8601, or +SECONDS).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def create(code, stack, payload, env_pairs, priority, timeout, label, webhook, start_at, run_every, run_times, end_at,
           command) -> None:
    """Create a schedule; prints its id. Missed runs (downtime, a pause) are not made up: of the runs
    due at once only the latest is made, the others counted as skipped."""
    client = api_client()
    if client is None:
        from longshore.client import schedule
    else:
        schedule = client.schedule
    try:
        schedule_id = schedule(code=code, stack=stack, command=list(command) or None, payload=_payload(payload),
                               env=_env(env_pairs) or None, priority=priority, timeout=timeout, label=label,
                               webhook=webhook, start_at=_when(start_at), run_every=run_every, run_times=run_times,
                               end_at=_when(end_at))
    except InvalidJob as exc:
        click.echo(f"longshore: {exc}", err=True)
        sys.exit(PLATFORM_FAILURE)
    click.echo(schedule_id)


@schedules.command(name="ls")
@click.option("--label", help="Only schedules with this label.")
@click.option("--json", "as_json", is_flag=True)
def list_schedules(label: str | None, as_json: bool) -> None:
    """List the schedules: state, runs, next run."""
    found = through(lambda client: client.list_schedules(label=label),
                    lambda store: _views(store.schedules.list(label=label)))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(f"{'ID':32}  {'STATE':7} {'RUNS':>5} {'SKIP':>5}  {'NEXT':29}  WHAT")
    for item in found:
        request = item["request"]
        what = request.get("code") or " ".join(request.get("command") or []) or request.get("stack")
        click.echo(f"{item['id']:32}  {item['state']:7} {item['runs']:>5} {item['skipped']:>5}  "
                   f"{_time(item['next_at']):29}  {str(what)[:40]}")


@schedules.command()
@click.argument("schedule_id")
def show(schedule_id: str) -> None:
    """Show a schedule as JSON (its jobs: `ls --label`, or the `last_job_id`)."""
    shown = through(lambda client: client.get_schedule(schedule_id),
                    lambda store: _views([store.schedules.get(schedule_id)])[0])
    click.echo(json.dumps(shown, indent=2))


@schedules.command()
@click.argument("schedule_id")
def pause(schedule_id: str) -> None:
    """Pause a schedule: no runs until `resume` (then the runs missed meanwhile collapse into one, run at once)."""
    through(lambda client: client.pause_schedule(schedule_id),
            lambda store: store.schedules.set_paused(schedule_id, True))
    click.echo(f"{schedule_id} paused")


@schedules.command()
@click.argument("schedule_id")
def resume(schedule_id: str) -> None:
    """Resume a paused schedule."""
    through(lambda client: client.resume_schedule(schedule_id),
            lambda store: store.schedules.set_paused(schedule_id, False))
    click.echo(f"{schedule_id} resumed")


@schedules.command()
@click.argument("schedule_id")
def delete(schedule_id: str) -> None:
    """Delete a schedule: no more runs (the jobs it made stay)."""
    through(lambda client: client.delete_schedule(schedule_id), lambda store: store.schedules.delete(schedule_id))
    click.echo(f"{schedule_id} deleted")


@click.command()
def scheduler() -> None:
    """Run a scheduler in the foreground (workers run one each too): the one holding the installation's
    lease makes schedules' jobs and delivers webhooks; stop it with SIGTERM or Ctrl-C."""
    from longshore.service.runtime import get_runtime
    from longshore.worker.scheduler import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = Scheduler(get_runtime(), name=f"longshore scheduler (pid {os.getpid()})")
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    click.echo("scheduler ready.", err=True)
    try:
        runner.run()
    except KeyboardInterrupt:
        runner.stop()


def _views(found: list) -> list[dict]:
    """Schedules read from the store as the API shows them."""
    from longshore.service.views import schedule_view

    return [schedule_view(item) for item in found]


def _when(raw: str | None) -> float | str | None:
    """+SECONDS from now, or the text for the validator (ISO 8601)."""
    if raw is None:
        return None
    if raw.startswith("+"):
        try:
            return time.time() + float(raw[1:])
        except ValueError:
            raise click.BadParameter(f"{raw!r} is not +SECONDS or an ISO 8601 time") from None
    return raw
