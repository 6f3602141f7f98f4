"""Running a worker in the foreground: a real Celery worker serving some stacks on this host's engine."""

from __future__ import annotations

import time

from celery.apps.worker import Worker as CeleryWorker

from longshore.broker.routing import CONTROL_QUEUE, worker_queue_name
from longshore.domain.records import WorkerIdentity
from longshore.errors import ConfigError, DockerFailure, FailureKind
from longshore.service.runtime import Runtime, get_runtime
from longshore.settings import Settings
from longshore.worker.identity import SPARE_POOL_SLOTS, default_name, set_identity, set_metrics_port
from longshore.worker.tasks import app

#: How long a starting worker waits for its Docker engine to answer.
ENGINE_WAIT_SECONDS = 30


def engine_id(rt: Runtime) -> str:
    """The id of this process's engine; ConfigError naming DOCKER_HOST when it does not answer, and at once
    when it refuses to be spoken to as configured (a TLS handshake refused, plain HTTP to its TLS port)."""
    deadline = time.monotonic() + ENGINE_WAIT_SECONDS
    while True:
        try:
            return rt.engine.engine_id()
        except DockerFailure as failure:
            if failure.kind is FailureKind.PERMANENT:  # a refusal, not an outage: waiting will not change it
                raise ConfigError(f"DOCKER_HOST: the Docker engine {_engine_words(rt.settings)} cannot be "
                                  f"spoken to as configured: {failure}") from None
            if time.monotonic() > deadline:
                raise ConfigError(f"DOCKER_HOST: the Docker engine {_engine_words(rt.settings)} does not answer: "
                                  f"{failure}") from None
            time.sleep(1)


def _engine_words(settings: Settings) -> str:
    """The engine's address and how it is spoken to, naming the variables that decide it."""
    if not settings.docker_host:
        return "(local socket)"
    if settings.docker_tls_verify:
        return (f"{settings.docker_host} (over TLS: DOCKER_TLS_VERIFY is set, "
                f"DOCKER_CERT_PATH={settings.docker_cert_path})")
    return f"{settings.docker_host} (without TLS: DOCKER_TLS_VERIFY is not set)"


def run_worker(stacks: list[str], *, slots: int, nodename: str | None = None, loglevel: str = "INFO",
               beat: bool = False, pool: str = "prefork", metrics_port: int = 0, task_events: bool = False) -> None:
    """Run a Celery worker in the foreground, running at most `slots` containers at once; its task events
    are sent from the start with `task_events`, otherwise once a monitor (Flower) enables them."""
    rt = get_runtime()
    for name in stacks:
        rt.manifest.get(name)  # an unknown stack stops the worker with the known ones named
    engine = engine_id(rt)
    me = WorkerIdentity(name=nodename or default_name(stacks, engine), engine_id=engine, slots=slots,
                        host=rt.settings.worker.hostname)
    consumers = rt.publisher.consumers([me.name])
    if consumers and consumers.get(me.name, 0) > 0:
        raise ConfigError(f"a worker named {me.name} is already running (already consuming its queue "
                          f"{worker_queue_name(me.name)}): each worker needs a name of its own (--name)")
    set_identity(me, stacks)
    set_metrics_port(metrics_port)
    worker = CeleryWorker(
        app=app,
        hostname=me.name,
        queues=[CONTROL_QUEUE],  # and its own queue; its stacks' queues are for admission
        pool_cls=pool,
        concurrency=slots + SPARE_POOL_SLOTS,
        loglevel=loglevel,
        send_events=task_events,
        without_mingle=True,
        without_gossip=True,
        beat=beat,
    )
    worker.start()
    raise SystemExit(worker.exitcode)
