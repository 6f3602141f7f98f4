"""The `longshore` command: job commands (`jobs.py`) and operator commands (`operate.py`).

Settings errors stop the program with the variable named (exit 2).
"""

from __future__ import annotations

import sys

import click

from longshore.cli import codes, jobs, operate, projects, schedules
from longshore.cli.exit_codes import PLATFORM_FAILURE
from longshore.errors import ConfigError, LongshoreError


def main() -> None:
    """Entry point of the `longshore` script."""
    try:
        cli(standalone_mode=True)
    except ConfigError as exc:
        click.echo(f"longshore: configuration error: {exc}", err=True)
        sys.exit(2)
    except LongshoreError as exc:  # the API refused us or cannot be reached, a record is missing …: one line
        click.echo(f"longshore: {exc}", err=True)
        sys.exit(PLATFORM_FAILURE)


@click.group()
def cli() -> None:
    """Run jobs in their own Docker containers, routed by stack over Celery."""
    from longshore.settings import get_settings

    get_settings()  # parse once, now: a bad value stops here with the variable named


for command in (jobs.run, jobs.status, jobs.logs, jobs.cancel, jobs.retry, jobs.list_jobs, jobs.stacks,
                operate.worker, operate.janitor, operate.exporter, operate.flower, operate.db, operate.settings,
                operate.health, codes.codes, codes.pause, codes.resume, schedules.schedules,
                schedules.scheduler, projects.projects, projects.tokens, operate.api):
    cli.add_command(command)
