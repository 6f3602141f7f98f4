"""Commands for projects and their API tokens (`longshore api` serves each project to its tokens)."""

from __future__ import annotations

import json

import click

from longshore.cli.codes import _run
from longshore.cli.jobs import _store, _time
from longshore.domain.projects import check_project_name


@click.group()
def projects() -> None:
    """Projects: each API token sees and touches only its own project's jobs, codes and schedules."""


@projects.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print {id, name, token} as JSON.")
def create(name: str, as_json: bool) -> None:
    """Create project NAME and its first token; the token is printed once and never kept."""
    project, token = _run(lambda: _store().projects.create(check_project_name(name)))
    if as_json:
        click.echo(json.dumps({"id": project.id, "name": project.name, "token": token}))
    else:
        click.echo(f"project {project.name}: id {project.id}\ntoken (shown once): {token}")


@projects.command(name="ls")
def list_projects() -> None:
    """List the projects."""
    for project in _store().projects.list():
        click.echo(f"{project.id:24}  {project.name:24}  {_time(project.created_at)}")


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
