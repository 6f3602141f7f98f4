"""Running a worker in the foreground: a real Celery worker serving some stacks on this host's engine."""

from __future__ import annotations

from celery.apps.worker import Worker as CeleryWorker

from longshore.broker.routing import worker_queues
from longshore.service.runtime import get_runtime
from longshore.worker.identity import set_metrics_port
from longshore.worker.tasks import app


def served_queues(stacks: list[str]) -> list[str]:
    """The shared queues a worker serving `stacks` consumes; an unknown stack stops it, naming the known ones."""
    manifest = get_runtime().manifest
    for name in stacks:
        manifest.get(name)
    return worker_queues(stacks)


def default_nodename(stacks: list[str]) -> str:
    """A node name stable across restarts (the stacks served and the host), so a restarted
    worker takes back its own queue and finishes what it had started."""
    label = "-".join(stacks) if len(stacks) <= 3 else f"{len(stacks)}stacks"
    return f"longshore-{label}@{get_runtime().settings.worker.hostname}"


def run_worker(stacks: list[str], *, slots: int, nodename: str | None = None, loglevel: str = "INFO",
               beat: bool = False, pool: str = "prefork", metrics_port: int = 0) -> None:
    """Run a Celery worker in the foreground: `slots` pool processes (or threads), one step each at a time."""
    set_metrics_port(metrics_port)
    worker = CeleryWorker(
        app=app,
        hostname=nodename or default_nodename(stacks),
        queues=served_queues(stacks),
        pool_cls=pool,
        concurrency=slots,
        loglevel=loglevel,
        send_events=True,
        without_mingle=True,
        without_gossip=True,
        beat=beat,
    )
    worker.start()
    raise SystemExit(worker.exitcode)
