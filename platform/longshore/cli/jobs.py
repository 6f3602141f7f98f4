"""Commands for a job's user: run, status, logs, cancel, ls, stacks."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from longshore.cli.backend import api_client
from longshore.cli.exit_codes import PLATFORM_FAILURE, exit_code_of
from longshore.domain.records import Job
from longshore.domain.spec import is_job_id
from longshore.domain.status import JobStatus
from longshore.errors import ConfigError, InvalidJob, JobNotFound
from longshore.remote import RemoteJob, job_from_view


@click.command(context_settings={"allow_interspersed_args": False})
@click.option("--stack", help="The stack (runtime) to run on; default LONGSHORE_DEFAULT_STACK.")
@click.option("--code", help="Run a job of this code (NAME or NAME@REVISION), its defaults under these options.")
@click.option("--image", help="An image to use instead of the stack's own.")
@click.option("--env", "env_pairs", multiple=True, metavar="K=V", help="An environment variable (repeatable).")
@click.option("--secret-env", "secret_pairs", multiple=True, metavar="K[=V]",
              help="A secret variable: sealed at rest, never shown (repeatable). K alone takes its value from "
                   "this shell's environment, keeping it out of the process list.")
@click.option("--payload", help="The payload: JSON text, or @FILE to read it from a file.")
@click.option("--timeout", type=float, help="Seconds before the job is killed.")
@click.option("--memory", help="Memory limit, e.g. 128m.")
@click.option("--cpus", type=float, help="CPU share, e.g. 0.5.")
@click.option("--disk", help="Disk for TASK_DIR and /tmp, e.g. 256m (kept in memory, see docs/security.md).")
@click.option("--retries", type=int, help="Attempts after the first when the command exits non-zero (default 0).")
@click.option("--retry-delay", type=float, help="Seconds between those attempts.")
@click.option("--priority", type=int, help="0, 1 or 2: of a stack's queued jobs, higher start first (default 0).")
@click.option("--delay", type=float, default=0, help="Seconds to wait before queueing it (at most 7 days).")
@click.option("--label", help="Free text to find the job by (`ls --label`).")
@click.option("--webhook", metavar="URL",
              help="POST each of its status changes here, signed (LONGSHORE_WEBHOOK_SECRET).")
@click.option("--detach", "-d", is_flag=True, help="Print the job id and return at once.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(stack, code, image, env_pairs, secret_pairs, payload, timeout, memory, cpus, disk, retries, retry_delay,
        priority, delay, label, webhook, detach, command) -> None:
    """Run COMMAND as a job and print its output; exit with the job's exit code."""
    client = api_client()
    if client is None:
        from longshore.client import submit
        from longshore.service.runtime import get_runtime

        embedded = get_runtime().settings.embedded
    else:
        submit, embedded = client.submit, False
    if detach and embedded:
        click.echo("longshore: --detach needs a broker and a running worker: set LONGSHORE_BROKER_URL=amqp://…",
                   err=True)
        sys.exit(PLATFORM_FAILURE)
    try:
        handle = submit(
            stack=stack, command=list(command) or None, payload=_payload(payload),
            env=_env(env_pairs), secret_env=_secret_env(secret_pairs), timeout=timeout, image=image, memory=memory,
            cpus=cpus, disk=disk, retries=retries, retry_delay=retry_delay, priority=priority, delay=delay,
            label=label, code=code, webhook=webhook,
        )
    except (InvalidJob, ConfigError) as exc:
        click.echo(f"longshore: {exc}", err=True)
        sys.exit(PLATFORM_FAILURE)
    if detach:
        click.echo(handle.id)
        return
    with _cancel_on_interrupt(handle):
        job = handle.wait()
    sys.stdout.buffer.write(job.output or b"")
    sys.stdout.flush()
    if job.error:
        click.echo(f"longshore: job {job.id} {job.status.value}: {job.error}", err=True)
    if embedded:
        handle.wait_reaped()  # the in-process worker ends with us: let it remove the container
    sys.exit(exit_code_of(job.status, job.exit_code))


@contextlib.contextmanager
def _cancel_on_interrupt(handle):
    """Ctrl-C (or SIGTERM) on a foreground run cancels its job, as `docker run` forwards the signal."""
    def cancel(signum, _frame):
        signal.signal(signum, signal.SIG_DFL)  # a second Ctrl-C leaves at once
        click.echo(f"longshore: cancelling job {handle.id}", err=True)
        handle.cancel()

    previous = {sig: signal.signal(sig, cancel) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _payload(raw: str | None, option: str = "--payload") -> Any:
    """JSON text, or @FILE to read it from a file."""
    if raw is None:
        return None
    if raw.startswith("@"):
        try:
            raw = Path(raw[1:]).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"cannot read {option[2:]} file: {exc}", param_hint=option) from None
    try:
        return json.loads(raw)
    except RecursionError:
        raise click.BadParameter("nested too deeply to be read as JSON", param_hint=option) from None
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None


def _env(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not K=V", param_hint="--env")
        env[name] = value
    return env


def _secret_env(pairs: tuple[str, ...]) -> dict[str, str]:
    secrets = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not name:
            raise click.BadParameter("a secret variable is K=V, or K to take it from this shell's environment",
                                     param_hint="--secret-env")
        if not sep:
            if name not in os.environ:
                raise click.BadParameter(f"{name[:64]!r} is not set in this shell's environment",
                                         param_hint="--secret-env")
            value = os.environ[name]
        secrets[name] = value
    return secrets


@click.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job and its attempts as JSON.")
def status(job_id: str, as_json: bool) -> None:
    """Show a job's status."""
    job, detail = _detail(job_id)
    if as_json:
        click.echo(json.dumps(detail, indent=2))
        return
    click.echo(f"id:        {job.id}\nstack:     {job.stack}\nimage:     {job.image}\nstatus:    {job.status.value}")
    click.echo(f"exit code: {job.exit_code if job.exit_code is not None else '-'}")
    if job.error:
        click.echo(f"error:     {job.error}")
    click.echo(f"priority:  {job.priority}" + (f"\nlabel:     {job.label}" if job.label else "")
               + (f"\ncode:      {job.code}@{job.code_revision}" if job.code else ""))
    if job.status is JobStatus.QUEUED and job.published_at is None and job.not_before:
        click.echo(f"delayed:   until {_time(job.not_before)}")
    if job.progress is not None:
        click.echo(f"progress:  {job.progress}%" + (f" {job.progress_message}" if job.progress_message else "")
                   + f" (at {_time(job.progress_at)})")
    if job.retry_of:
        click.echo(f"retry of:  {job.retry_of}")
    if detail["retried_as"]:
        click.echo(f"retried as: {', '.join(detail['retried_as'])}")
    click.echo(f"created:   {_time(job.created_at)}\nstarted:   {_time(job.started_at)}\n"
               f"finished:  {_time(job.finished_at)}")
    for delivery in detail["webhook_deliveries"]:
        change = json.loads(delivery["body"])
        click.echo(f"webhook {delivery['id']}: {change['status']} {delivery['state']} after {delivery['tries']} tries"
                   + (f" ({delivery['last_error']})" if delivery["last_error"] else ""))
    for attempt in detail["attempts"]:
        steps = " ".join(f"{k}={v * 1000:.0f}ms" for k, v in attempt["step_seconds"].items() if v is not None)
        click.echo(f"attempt {attempt['number']}: {attempt['status']} on {attempt['worker'] or '-'} {steps}")


@click.command()
@click.argument("job_id")
def logs(job_id: str) -> None:
    """Print a job's captured output."""
    client = api_client()
    if client is None:
        job = _get(job_id)
        output = job.output or b""
    else:
        job, _detail_view = _detail(job_id)
        output = RemoteJob(client, job.id).output()
    sys.stdout.buffer.write(output)  # the bytes as the job wrote them
    sys.stdout.flush()
    if job.output_truncated:
        click.echo("longshore: output was truncated to its last bytes (LONGSHORE_OUTPUT_LIMIT_BYTES)", err=True)


@click.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel a job: a queued job never starts; a running one is stopped and reaped."""
    from longshore.client import JobHandle

    client = api_client()
    job = _get(job_id) if client is None else _detail(job_id)[0]
    job = JobHandle(job.id).cancel() if client is None else RemoteJob(client, job.id).cancel()
    click.echo(f"{job.id} {job.status.value}")


@click.command(name="ls")
@click.option("--status", "status_filter", type=click.Choice([s.value for s in JobStatus]))
@click.option("--stack", help="Only jobs of this stack.")
@click.option("--label", help="Only jobs with this label.")
@click.option("--code", help="Only jobs of this code.")
@click.option("--since", metavar="WHEN",
              help="Only jobs created since: an ISO 8601 time, or an age like 90s, 15m, 2h, 7d.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
def list_jobs(status_filter: str | None, stack: str | None, label: str | None, code: str | None,
              since: str | None, limit: int) -> None:
    """List the newest jobs."""
    client = api_client()
    if client is None:
        jobs = _store().reads.list_jobs(limit=limit, status=JobStatus(status_filter) if status_filter else None,
                                        stack=stack, label=label, code=code, since=_since(since),
                                        with_output=False)
    else:
        jobs = client.list_jobs(limit=limit, status=status_filter, stack=stack, label=label, code=code,
                                since=_since(since))
    click.echo(f"{'ID':32}  {'STACK':10} {'STATUS':10} {'EXIT':>4}  {'CREATED':29}  LABEL")
    for job in jobs:
        exit_code = "-" if job.exit_code is None else str(job.exit_code)
        click.echo(f"{job.id:32}  {job.stack:10} {job.status.value:10} {exit_code:>4}  {_time(job.created_at):29}  "
                   f"{job.label or ''}".rstrip())


@click.command()
@click.argument("job_id")
@click.option("--delay", type=float, default=0, help="Seconds to wait before queueing the new job.")
@click.option("--secret-env", "secret_pairs", multiple=True, metavar="K[=V]",
              help="The job's secret variables again (erased when it ended), as for `run`.")
def retry(job_id: str, delay: float, secret_pairs: tuple[str, ...]) -> None:
    """Run a finished job again as a new job (same stack, image, command, payload and settings), linked to
    it both ways; print the new job's id."""
    from longshore.client import retry as retry_job

    client = api_client()
    job = _get(job_id) if client is None else _detail(job_id)[0]
    try:
        handle = (client.retry if client else retry_job)(job.id, delay=delay, secret_env=_secret_env(secret_pairs))
    except (InvalidJob, ConfigError) as exc:
        click.echo(f"longshore: {exc}", err=True)
        sys.exit(PLATFORM_FAILURE)
    click.echo(handle.id)


@click.command()
def stacks() -> None:
    """List the stacks this installation knows."""
    from longshore.broker.routing import stack_queue
    from longshore.domain.stacks import format_size

    client = api_client()
    if client is None:
        from longshore.service.runtime import get_runtime
        from longshore.service.views import stack_view

        views = [stack_view(stack) for stack in get_runtime().manifest.stacks.values()]
    else:
        views = client.stacks()
    for stack in views:
        low, high = stack["defaults"], stack["maxima"]
        timeout = f"{low['timeout_seconds']:g}s" if low["timeout_seconds"] else "default"
        click.echo(f"{stack['name']:14} {stack['image']:24} queue={stack_queue(stack['name'])} "
                   f"runtime={stack['runtime']} user={stack['user']} memory={format_size(low['memory_bytes'])}"
                   f"(max {format_size(high['memory_bytes'])}) disk={format_size(low['disk_bytes'])}"
                   f"(max {format_size(high['disk_bytes'])}) cpus={low['cpus']:g}(max {high['cpus']:g}) "
                   f"timeout={timeout}(max {high['timeout_seconds']:g}s) pull={stack['pull']}")


def _store():
    from longshore.service.runtime import get_runtime

    return get_runtime().store


def _detail(job_id: str) -> tuple[Job, dict]:
    """The job and its detailed view (attempts, retries, webhook deliveries), from the store or the API."""
    from longshore.service.submit import rejected_id

    client = api_client()
    if client is None:
        from longshore.service.runtime import get_runtime
        from longshore.service.views import job_detail

        rt = get_runtime()  # one read: the job (its output aside) with its attempts
        detail = rt.store.reads.job_detail(job_id if is_job_id(job_id) else rejected_id(job_id))
        if detail is None:
            raise click.ClickException(f"no job with id {job_id[:80]!r}")
        return detail.job, job_detail(rt, detail)
    try:
        detail = RemoteJob(client, job_id if is_job_id(job_id) else rejected_id(job_id)).detail()
    except JobNotFound:
        raise click.ClickException(f"no job with id {job_id[:80]!r}") from None
    return job_from_view(detail), detail


def _get(job_id: str) -> Job:
    """The job; for an id that cannot name a job, the rejection a Celery-native message with it left."""
    from longshore.service.submit import rejected_id

    try:
        return _store().jobs.get(job_id if is_job_id(job_id) else rejected_id(job_id))
    except JobNotFound:
        raise click.ClickException(f"no job with id {job_id[:80]!r}") from None


AGE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
SECONDS_PER = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _since(raw: str | None) -> float | None:
    """`--since` as epoch seconds: an age (90s, 15m, 2h, 7d) back from now, or an ISO 8601 time (UTC if no
    zone is given)."""
    if raw is None:
        return None
    age = AGE.fullmatch(raw.strip())
    if age:
        return time.time() - float(age.group(1)) * SECONDS_PER[age.group(2)]
    try:
        when = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise click.BadParameter(f"{raw[:40]!r} is neither an age like 15m nor an ISO 8601 time",
                                 param_hint="--since") from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _time(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, tz=timezone.utc).isoformat(timespec="milliseconds")
