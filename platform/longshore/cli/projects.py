"""Commands for projects and their API tokens (`longshore api` serves each project to its tokens)."""

from __future__ import annotations

import json

import click

from longshore.cli.codes import _run
from longshore.cli.jobs import _store, _time
from longshore.domain.projects import check_project_name
from longshore.domain.quotas import MAX_REQUESTS_PER_SECOND, check_quotas


@click.group()
def projects() -> None:
    """Projects: each API token sees and touches only its own project's jobs, codes and schedules."""


def quota_options(command):
    """--max-queued, --max-running and --rate: a project's own quotas (0: no limit; unset: the installation's)."""
    for option in reversed([
            click.option("--max-queued", "max_queued_jobs", type=click.IntRange(min=0),
                         help="Jobs that may wait to run at once (over it, submits are refused with 429)."),
            click.option("--max-running", "max_running_jobs", type=click.IntRange(min=0),
                         help="Jobs that may hold a worker's slot at once (the rest wait queued)."),
            click.option("--rate", "requests_per_second", type=click.FloatRange(0, MAX_REQUESTS_PER_SECOND),
                         help="API requests per second, per API process.")]):
        command = option(command)
    return command


@projects.command()
@click.argument("name")
@quota_options
@click.option("--json", "as_json", is_flag=True, help="Print {id, name, token} as JSON.")
def create(name: str, as_json: bool, **quotas: int | float | None) -> None:
    """Create project NAME and its first token; the token is printed once and never kept. Quotas not given
    are the installation's (LONGSHORE_PROJECT_*)."""
    project, token = _run(lambda: _store().projects.create(check_project_name(name), check_quotas(**quotas)))
    if as_json:
        click.echo(json.dumps({"id": project.id, "name": project.name, "token": token}))
    else:
        click.echo(f"project {project.name}: id {project.id}\ntoken (shown once): {token}")


@projects.command(name="set")
@click.argument("project_ref")
@quota_options
@click.option("--default", "to_default", multiple=True, type=click.Choice(["max-queued", "max-running", "rate"]),
              help="Give this quota back to the installation's setting (repeatable).")
def set_quotas(project_ref: str, to_default: tuple[str, ...], **quotas: int | float | None) -> None:
    """Change a project's quotas (by its id or name)."""
    names = {"max-queued": "max_queued_jobs", "max-running": "max_running_jobs", "rate": "requests_per_second"}
    store = _store()
    project = _run(lambda: store.projects.get(project_ref))
    given = vars(_run(lambda: check_quotas(**quotas)))
    changes = {name: value for name, value in given.items() if value is not None}
    changes.update({names[option]: None for option in to_default})
    updated = _run(lambda: store.projects.set_quotas(project.id, changes))
    click.echo(f"project {updated.name}: {_quotas(updated)}")


@projects.command(name="ls")
def list_projects() -> None:
    """List the projects and their quotas (`default`: the installation's setting; 0: no limit)."""
    for project in _store().projects.list():
        click.echo(f"{project.id:24}  {project.name:24}  {_time(project.created_at)}  {_quotas(project)}")


def _quotas(project) -> str:
    quotas = project.quotas
    shown = [(label, value) for label, value in (("max-queued", quotas.max_queued_jobs),
                                                 ("max-running", quotas.max_running_jobs),
                                                 ("rate", quotas.requests_per_second))]
    return "  ".join(f"{label}={'default' if value is None else f'{value:g}'}" for label, value in shown)


@click.group()
def tokens() -> None:
    """API tokens of a project (only their digests are kept)."""


@tokens.command(name="create")
@click.option("--project", "project_ref", required=True, help="The project's id or name.")
@click.option("--name", help="What the token is for.")
def create_token(project_ref: str, name: str | None) -> None:
    """Make a token for a project; printed once."""
    project = _run(lambda: _store().projects.get(project_ref))
    click.echo(_store().projects.create_token(project.id, name))


@tokens.command(name="ls")
@click.option("--project", "project_ref", required=True, help="The project's id or name.")
def list_tokens(project_ref: str) -> None:
    """List a project's tokens (ids, never the tokens)."""
    project = _run(lambda: _store().projects.get(project_ref))
    for token in _store().projects.tokens(project.id):
        state = f"revoked {_time(token.revoked_at)}" if token.revoked_at else "active"
        click.echo(f"{token.id:24}  {token.name or '-':16}  {_time(token.created_at)}  {state}")


@tokens.command()
@click.argument("token_id")
def revoke(token_id: str) -> None:
    """Revoke a token by its id: it is refused from now on."""
    _run(lambda: _store().projects.revoke_token(token_id))
    click.echo(f"{token_id} revoked")
