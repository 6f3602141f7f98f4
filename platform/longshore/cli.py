"""The `longshore` command."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from longshore.errors import ConfigError, InvalidJob, JobNotFound
from longshore.status import CLI_EXIT_CODES, PLATFORM_FAILURE_EXIT_CODE, JobStatus


def main() -> None:
    """Entry point: settings errors stop the program with the variable named."""
    try:
        cli(standalone_mode=True)
    except ConfigError as exc:
        click.echo(f"longshore: configuration error: {exc}", err=True)
        sys.exit(2)


@click.group()
def cli() -> None:
    """Run jobs in their own Docker containers, routed by stack over Celery."""
    from longshore.settings import get_settings

    get_settings()  # parse once, now: a bad value stops here with the variable named


@cli.command(context_settings={"allow_interspersed_args": False})
@click.option("--stack", help="The stack (runtime) to run on; default LONGSHORE_DEFAULT_STACK.")
@click.option("--image", help="An image to use instead of the stack's own.")
@click.option("--env", "env_pairs", multiple=True, metavar="K=V", help="An environment variable (repeatable).")
@click.option("--payload", help="The payload: JSON text, or @FILE to read it from a file.")
@click.option("--timeout", type=float, help="Seconds before the job is killed.")
@click.option("--memory", help="Memory limit, e.g. 128m.")
@click.option("--cpus", type=float, help="CPU share, e.g. 0.5.")
@click.option("--retries", type=int, default=0, help="Attempts after the first when the command exits non-zero.")
@click.option("--retry-delay", type=float, default=0, help="Seconds between those attempts.")
@click.option("--detach", "-d", is_flag=True, help="Print the job id and return at once.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(stack, image, env_pairs, payload, timeout, memory, cpus, retries, retry_delay, detach, command) -> None:
    """Run COMMAND as a job and print its output; exit with the job's exit code."""
    from longshore.jobs import submit
    from longshore.runtime import get_runtime

    embedded = get_runtime().settings.embedded
    if detach and embedded:
        click.echo("longshore: --detach needs a broker and a running worker: set LONGSHORE_BROKER_URL=amqp://…", err=True)
        sys.exit(PLATFORM_FAILURE_EXIT_CODE)
    try:
        handle = submit(
            stack=stack, command=list(command) or None, payload=_payload(payload),
            env=_env(env_pairs), timeout=timeout, image=image, memory=memory, cpus=cpus,
            retries=retries, retry_delay=retry_delay,
        )
    except (InvalidJob, ConfigError) as exc:
        click.echo(f"longshore: {exc}", err=True)
        sys.exit(PLATFORM_FAILURE_EXIT_CODE)
    if detach:
        click.echo(handle.id)
        return
    job = handle.wait()
    click.echo(job.output or "", nl=False)
    if job.error:
        click.echo(f"longshore: job {job.id} {job.status.value}: {job.error}", err=True)
    if embedded:
        handle.wait_reaped()  # the in-process worker ends with us: let it remove the container
    sys.exit(_exit_code(job.status, job.exit_code))


def _exit_code(status: JobStatus, exit_code: int | None) -> int:
    if status in CLI_EXIT_CODES:
        return CLI_EXIT_CODES[status]
    if exit_code is None:
        return PLATFORM_FAILURE_EXIT_CODE
    return exit_code


def _payload(raw: str | None) -> Any:
    if raw is None:
        return None
    if raw.startswith("@"):
        try:
            raw = Path(raw[1:]).read_text()
        except OSError as exc:
            raise click.BadParameter(f"cannot read payload file: {exc}", param_hint="--payload") from None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--payload") from None


def _env(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not K=V", param_hint="--env")
        env[name] = value
    return env


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job and its attempts as JSON.")
def status(job_id: str, as_json: bool) -> None:
    """Show a job's status."""
    from longshore.runtime import get_runtime

    store = get_runtime().store
    job = _get(job_id)
    if as_json:
        data = job.to_dict()
        data.pop("output")
        data["attempts"] = [a.to_dict() for a in store.list_attempts(job_id)]
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"id:        {job.id}\nstack:     {job.stack}\nimage:     {job.image}\nstatus:    {job.status.value}")
    click.echo(f"exit code: {job.exit_code if job.exit_code is not None else '-'}")
    if job.error:
        click.echo(f"error:     {job.error}")
    click.echo(f"created:   {_time(job.created_at)}\nstarted:   {_time(job.started_at)}\nfinished:  {_time(job.finished_at)}")
    for attempt in store.list_attempts(job_id):
        steps = " ".join(f"{k}={v * 1000:.0f}ms" for k, v in attempt.step_seconds.items() if v is not None)
        click.echo(f"attempt {attempt.number}: {attempt.status} on {attempt.worker or '-'} {steps}")


@cli.command()
@click.argument("job_id")
def logs(job_id: str) -> None:
    """Print a job's captured output."""
    job = _get(job_id)
    click.echo(job.output or "", nl=False)
    if job.output_truncated:
        click.echo("longshore: output was truncated to its last bytes (LONGSHORE_OUTPUT_LIMIT_BYTES)", err=True)


@cli.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel a job: a queued job never starts; a running one is stopped and reaped."""
    from longshore.jobs import JobHandle

    _get(job_id)
    job = JobHandle(job_id).cancel()
    click.echo(f"{job.id} {job.status.value}")


@cli.command(name="ls")
@click.option("--status", "status_filter", type=click.Choice([s.value for s in JobStatus]))
@click.option("--limit", type=int, default=20, show_default=True)
def list_jobs(status_filter: str | None, limit: int) -> None:
    """List the newest jobs."""
    from longshore.runtime import get_runtime

    jobs = get_runtime().store.list_jobs(limit=limit, status=JobStatus(status_filter) if status_filter else None)
    click.echo(f"{'ID':32}  {'STACK':10} {'STATUS':10} {'EXIT':>4}  CREATED")
    for job in jobs:
        exit_code = "-" if job.exit_code is None else str(job.exit_code)
        click.echo(f"{job.id:32}  {job.stack:10} {job.status.value:10} {exit_code:>4}  {_time(job.created_at)}")


@cli.command()
def stacks() -> None:
    """List the stacks this installation knows."""
    from longshore.runtime import get_runtime

    for stack in get_runtime().manifest.stacks.values():
        click.echo(
            f"{stack.name:10} {stack.image:28} queue={stack.queue} memory={stack.memory_bytes >> 20}m "
            f"cpus={stack.cpus:g} timeout={f'{stack.timeout_seconds:g}s' if stack.timeout_seconds else 'default'} pull={stack.pull.value}"
        )


@cli.command()
@click.option("--stacks", "stack_list", required=True, help="Comma-separated stacks to serve, e.g. python,busybox.")
@click.option("--slots", type=click.IntRange(1, 512), default=4, show_default=True, help="Containers run at once.")
@click.option("--name", help="Celery node name (default: longshore-STACKS@HOST); unique per worker.")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--pool", type=click.Choice(["prefork", "threads"]), default="prefork", show_default=True,
              help="Celery pool: a process per slot (prefork) or a thread per slot.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=0,
              help="Serve Prometheus metrics on this port (0: off).")
@click.option("--beat", is_flag=True, help="Also run the periodic janitor schedule (one such worker per installation).")
def worker(stack_list: str, slots: int, name: str | None, loglevel: str, pool: str, metrics_port: int,
           beat: bool) -> None:
    """Run a worker serving the given stacks."""
    if metrics_port and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Before prometheus_client is imported: every pool process writes its numbers here.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="longshore-metrics-")
        _remove_at_exit(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    from longshore.runtime import get_runtime
    from longshore.worker import run_worker

    names = [s.strip() for s in stack_list.split(",") if s.strip()]
    if get_runtime().settings.embedded:
        raise click.UsageError("a separate worker needs a broker: set LONGSHORE_BROKER_URL=amqp://…")
    try:
        run_worker(names, slots=slots, nodename=name, loglevel=loglevel, beat=beat, pool=pool,
                   metrics_port=metrics_port)
    except InvalidJob as exc:
        raise click.BadParameter(str(exc), param_hint="--stacks") from None


@cli.command(name="janitor")
def janitor_command() -> None:
    """One janitor pass now: the store, and the Docker engine of DOCKER_HOST."""
    from longshore.janitor import run_janitor_pass
    from longshore.runtime import get_runtime

    click.echo(run_janitor_pass(get_runtime()).summary())


@cli.command()
@click.option("--port", type=click.IntRange(1, 65535), default=9808, show_default=True)
@click.option("--addr", default="127.0.0.1", show_default=True, help="Address to listen on.")
def exporter(port: int, addr: str) -> None:
    """Export queue depths, jobs and worker liveness for Prometheus (one per installation)."""
    import logging

    from longshore.exporter import serve
    from longshore.runtime import get_runtime

    logging.basicConfig(level=logging.INFO)
    serve(get_runtime(), port, addr)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--port", type=click.IntRange(1, 65535), default=5555, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
@click.pass_context
def flower(ctx: click.Context, port: int, address: str) -> None:
    """Start Flower against the configured broker (extra options go to Flower)."""
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "longshore", "flower",
                               f"--port={port}", f"--address={address}", *ctx.args])


def _remove_at_exit(path: str) -> None:
    """Remove `path` when this process exits (not when a forked pool process does)."""
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)


@cli.group()
def db() -> None:
    """Manage the job store."""


@db.command()
def upgrade() -> None:
    """Create or migrate the store's schema."""
    from longshore.settings import get_settings
    from longshore.store import Store

    settings = get_settings()
    if not settings.database_url.startswith("postgres"):
        settings.home.mkdir(parents=True, exist_ok=True)
    version = Store(settings.database_url).upgrade()
    click.echo(f"schema at version {version}")


def _get(job_id: str):
    from longshore.runtime import get_runtime

    try:
        return get_runtime().store.get_job(job_id)
    except JobNotFound as exc:
        raise click.ClickException(str(exc)) from None


def _time(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, tz=timezone.utc).isoformat(timespec="milliseconds")
