"""Commands for codes (IronWorker's code packages): upload revisions, list them, pause, resume, delete."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click

from longshore.cli.backend import api_client
from longshore.cli.exit_codes import PLATFORM_FAILURE
from longshore.cli.jobs import _env, _payload, _store, _time
from longshore.errors import InvalidJob
from longshore.remote import Client


@click.group()
def codes() -> None:
    """Codes: named, revisioned job defaults that jobs are queued by (`run --code NAME`)."""


@codes.command()
@click.argument("name")
@click.option("--stack", required=True, help="The stack its jobs run on.")
@click.option("--image", help="An image instead of the stack's own (within the stack's `images`).")
@click.option("--env", "env_pairs", multiple=True, metavar="K=V", help="A default variable (repeatable).")
@click.option("--config", help="JSON given to each job as CONFIG_FILE, or @FILE.")
@click.option("--timeout", type=float, help="Default seconds before a job is killed.")
@click.option("--memory", help="Default memory limit, e.g. 128m.")
@click.option("--cpus", type=float, help="Default CPU share.")
@click.option("--disk", help="Default disk for TASK_DIR and /tmp.")
@click.option("--priority", type=int, help="Default priority, 0-2.")
@click.option("--retries", type=int, help="Default retries of a failing job.")
@click.option("--retry-delay", type=float, help="Default seconds between those retries.")
@click.option("--max-concurrency", type=int, help="At most this many of its jobs run at once, across workers.")
@click.option("--zip", "archive", metavar="PATH", help="An archive code: a .zip file, or a folder to zip.")
@click.option("--entry", metavar="FILE", help="The archive's file the stack runs (e.g. hello.py).")
@click.option("--webhook", metavar="URL", help="Its jobs' status changes are POSTed here, signed.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def upload(name, stack, image, env_pairs, config, timeout, memory, cpus, disk, priority, retries, retry_delay,
           max_concurrency, archive, entry, webhook, command) -> None:
    """Upload a new revision of code NAME (made if new): an image code, COMMAND after `--` its jobs'
    command; or an archive code (--zip and --entry). Prints the revision's number."""
    client = api_client()
    if client is None:
        from longshore.client import upload_code
    else:
        upload_code = client.upload_code
    try:
        revision = upload_code(name, stack, image=image, command=list(command) or None, env=_env(env_pairs),
                               config=_payload(config, option="--config"), timeout=timeout, memory=memory,
                               cpus=cpus, disk=disk, priority=priority, retries=retries, retry_delay=retry_delay,
                               max_concurrency=max_concurrency, archive=archive, entry=entry, webhook=webhook)
    except InvalidJob as exc:
        click.echo(f"longshore: {exc}", err=True)
        sys.exit(PLATFORM_FAILURE)
    click.echo(f"{name} revision {revision}")


@codes.command(name="ls")
def list_codes() -> None:
    """List the codes: latest revision, stack, gates."""
    def local(store):
        from longshore.service.views import code_view

        return [code_view(code) for code in store.codes.list()]

    found = through(lambda client: client.list_codes(), local)
    click.echo(f"{'NAME':24} {'REV':>4}  {'STACK':12} {'STATE':7} {'MAX':>5}  UPDATED")
    for code in found:
        state = "paused" if code["paused"] else "active"
        click.echo(f"{code['name']:24} {code['latest']:>4}  {code['stack']:12} {state:7} "
                   f"{code['max_concurrency'] or '-':>5}  {_time(code['updated_at'])}")


@codes.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the revisions as JSON.")
def revisions(name: str, as_json: bool) -> None:
    """List a code's revisions, oldest first."""
    def local(store):
        from longshore.service.views import code_revision_view

        return [code_revision_view(revision) for revision in store.codes.revisions(name)]

    found = through(lambda client: client.code_revisions(name), local)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for revision in found:
        defaults = revision["defaults"]
        click.echo(f"{revision['revision']:>4}  {_time(revision['created_at'])}  {defaults.get('image')}  "
                   f"{json.dumps(defaults.get('command'))}")


@codes.command()
@click.argument("name")
def delete(name: str) -> None:
    """Delete a code: no new jobs for it (its queued jobs still run)."""
    through(lambda client: client.delete_code(name), lambda store: store.codes.delete(name))
    click.echo(f"{name} deleted")


@click.command()
@click.argument("name")
def pause(name: str) -> None:
    """Pause code NAME: its queued jobs wait until `resume`; running ones go on."""
    through(lambda client: client.pause_code(name), lambda store: store.codes.set_paused(name, True))
    click.echo(f"{name} paused")


@click.command()
@click.argument("name")
def resume(name: str) -> None:
    """Resume code NAME: its waiting jobs are queued again."""
    through(lambda client: client.resume_code(name), lambda store: store.codes.set_paused(name, False))
    click.echo(f"{name} resumed")


def through(remote: Callable[[Client], Any], local: Callable[[Any], Any]) -> Any:
    """`remote(client)` when the commands go through the API (LONGSHORE_API_URL), else `local(store)`; a
    refusal (InvalidJob: no such code or schedule, a bad value) is a one-line error."""
    client = api_client()
    return _run(lambda: local(_store()) if client is None else remote(client))


def _run(action):
    try:
        return action()
    except InvalidJob as exc:
        raise click.ClickException(str(exc)) from None
