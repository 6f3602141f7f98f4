"""Commands for an operator: worker, janitor, exporter, flower, db, settings."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile

import click

from longshore.errors import InvalidJob


@click.command()
@click.option("--stacks", "stack_list", required=True, help="Comma-separated stacks to serve, e.g. python,busybox.")
@click.option("--slots", type=click.IntRange(1, 512), default=4, show_default=True, help="Containers run at once.")
@click.option("--name", help="Celery node name (default: longshore-STACKS@HOST); unique per worker.")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--pool", type=click.Choice(["prefork", "threads"]), default="prefork", show_default=True,
              help="Celery pool: a process per slot (prefork) or a thread per slot.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=0,
              help="Serve Prometheus metrics on this port (0: off).")
@click.option("--beat", is_flag=True, help="Also run the periodic janitor schedule (one such worker per installation).")
@click.option("--task-events", is_flag=True,
              help="Send Celery's task events from the start (otherwise only once a monitor such as Flower asks).")
def worker(stack_list: str, slots: int, name: str | None, loglevel: str, pool: str, metrics_port: int,
           beat: bool, task_events: bool) -> None:
    """Run a worker serving the given stacks."""
    if metrics_port and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Before prometheus_client is imported: every pool process writes its numbers here.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="longshore-metrics-")
        _remove_at_exit(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    from longshore.service.runtime import get_runtime

    if get_runtime().settings.embedded:
        raise click.UsageError("a separate worker needs a broker: set LONGSHORE_BROKER_URL=amqp://…")
    from longshore.worker.process import run_worker

    names = [s.strip() for s in stack_list.split(",") if s.strip()]
    try:
        run_worker(names, slots=slots, nodename=name, loglevel=loglevel, beat=beat, pool=pool,
                   metrics_port=metrics_port, task_events=task_events)
    except InvalidJob as exc:
        raise click.BadParameter(str(exc), param_hint="--stacks") from None


def _remove_at_exit(path: str) -> None:
    """Remove `path` when this process exits (not when a forked pool process does)."""
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)


@click.command()
@click.option("--engine-gone", "engines_gone", multiple=True, metavar="ENGINE_ID",
              help="An engine known gone for good (its host died): requeue the jobs that were running there.")
def janitor(engines_gone: tuple[str, ...]) -> None:
    """One janitor pass now: the store, and the Docker engine of DOCKER_HOST."""
    from longshore.service.janitor import run_janitor_pass
    from longshore.service.runtime import get_runtime

    runtime = get_runtime()
    if runtime.settings.embedded:
        # The embedded store's queue lives in processes' memory: run what ended processes left, here.
        from longshore.worker.embedded import ensure_embedded_worker

        ensure_embedded_worker()
    click.echo(run_janitor_pass(runtime, engines_gone=frozenset(engines_gone)).summary())


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=9808, show_default=True)
@click.option("--addr", default="127.0.0.1", show_default=True, help="Address to listen on.")
def exporter(port: int, addr: str) -> None:
    """Export queue depths, jobs and worker liveness for Prometheus (one per installation)."""
    from longshore.observability.exporter import serve
    from longshore.service.runtime import get_runtime

    logging.basicConfig(level=logging.INFO)
    serve(get_runtime(), port, addr)


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--port", type=click.IntRange(1, 65535), default=5555, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
@click.pass_context
def flower(ctx: click.Context, port: int, address: str) -> None:
    """Start Flower against the configured broker (extra options go to Flower)."""
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "longshore", "flower",
                               f"--port={port}", f"--address={address}", *ctx.args])


@click.group()
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
    version = Store(settings.database_url, pool_size=1, max_overflow=1, prepare=settings.database_prepare,
                    connect_timeout_seconds=settings.database_connect_timeout_seconds).upgrade()
    click.echo(f"schema at version {version}")


@click.command()
@click.option("--timeout", "timeout_seconds", type=click.FloatRange(0.5, 60), default=3, show_default=True)
def health(timeout_seconds: float) -> None:
    """Check that this process's store and broker answer (a container healthcheck); exit 1 if not."""
    import sqlalchemy as sa
    from kombu import Connection

    from longshore.settings import get_settings
    from longshore.store import Store

    settings = get_settings()
    problems = []
    if not settings.database_url.startswith("postgres"):
        settings.home.mkdir(parents=True, exist_ok=True)
    try:
        with Store(settings.database_url, pool_size=1, max_overflow=0,
                   connect_timeout_seconds=timeout_seconds).engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure to reach the store is the answer
        problems.append(f"store: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    if not settings.embedded:
        try:
            with Connection(settings.broker_url, connect_timeout=timeout_seconds) as connection:
                connection.ensure_connection(max_retries=1, timeout=timeout_seconds)
        except Exception as exc:  # any failure to reach the broker is the answer
            problems.append(f"broker: {exc.__class__.__name__}: {exc}")
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(1)
    click.echo("ok")


@click.command()
def settings() -> None:
    """Print every setting (environment variable) with its default and meaning, as a Markdown table."""
    from longshore.settings import settings_table

    click.echo(settings_table())


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
def api(host: str, port: int) -> None:
    """Serve the HTTP API: IronWorker's API v2 at /2/projects/{id}/… for each project's tokens."""
    import uvicorn

    from longshore.api.app import create_app
    from longshore.service.runtime import get_runtime

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # No access log: a token given as ?oauth= would land in it.
    uvicorn.run(create_app(get_runtime()), host=host, port=port, access_log=False, log_level="info")
