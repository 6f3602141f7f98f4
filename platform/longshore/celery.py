"""The Celery application: `celery -A longshore worker` finds `app` here.

Configuration follows what a job platform needs from Celery: late acks so a
killed worker's step is redelivered, one message prefetched per slot, durable
queues declared explicitly, publisher confirms, and task events for Flower.
"""

from __future__ import annotations

from celery import Celery, signals

from longshore.routing import CONTROL_QUEUE, declared_queues, set_local_worker, worker_queue
from longshore.runtime import get_runtime


#: How publishing retries while the broker is unreachable: about a minute in all.
PUBLISH_RETRY_POLICY = {"max_retries": 40, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2}


def create_app() -> Celery:
    """Build the app from the process's settings and stack manifest."""
    runtime = get_runtime()
    settings = runtime.settings
    celery_app = Celery("longshore", include=["longshore.lifecycle", "longshore.jobs"])
    transport_options = {"polling_interval": 0.01} if settings.embedded else {
        "confirm_publish": True,
        # Connecting to publish rides out a broker restart (about a minute) instead of
        # failing the step that publishes; kombu reads these for its default channel.
        **PUBLISH_RETRY_POLICY,
        "connect_retries_timeout": 60,
    }
    celery_app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options,
        task_queues=declared_queues(runtime.manifest.names()),
        task_default_queue=CONTROL_QUEUE,
        task_create_missing_queues=True,
        # Ride out a broker restart (seconds) instead of failing the step that publishes.
        task_publish_retry_policy=PUBLISH_RETRY_POLICY,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "longshore-janitor": {"task": "longshore.janitor", "schedule": settings.janitor_interval_seconds},
        },
    )
    return celery_app


app = create_app()


@signals.worker_ready.connect
def _start_heartbeat(sender, **_kwargs) -> None:
    """Heart-beat into the store, and sweep this engine once at start (as Fn's agent does)."""
    from longshore.worker import start_heartbeat

    from longshore.worker import serve_metrics_if_asked

    queues = [q.name for q in sender.app.amqp.queues.consume_from.values()]
    slots = sender.pool.limit if sender.pool else 1
    serve_metrics_if_asked(queues, slots=slots)
    start_heartbeat(queues, slots=slots, sweep_at_start=True)


@signals.worker_process_init.connect
def _fresh_connections_in_child(**_kwargs) -> None:
    """A prefork child must not share the parent's database or Docker sockets."""
    runtime = get_runtime()
    runtime.store.engine.dispose(close=False)
    runtime.reset_engine()


@signals.worker_process_shutdown.connect
def _forget_dead_child(pid: int, **_kwargs) -> None:
    """prometheus-client's multiprocess mode: a finished child's live gauges go with it."""
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


@signals.celeryd_after_setup.connect
def _consume_own_queue(sender: str, instance, **_kwargs) -> None:
    """Every worker also consumes its own queue, for the later steps of what it pulled."""
    set_local_worker(sender)
    instance.app.amqp.queues.select_add(worker_queue(sender))
