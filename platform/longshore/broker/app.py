"""The Celery application, built from settings: configuration only, no signal handlers.

Configuration follows what a job platform needs from Celery: late acks so a
killed worker's step is redelivered, one message prefetched per slot, durable
queues declared explicitly, publisher confirms. Task events (Flower's view) are sent
once asked for: Flower asks every worker (`enable_events`, every 5 s), and a worker
asked sends them until it restarts. Sent to nobody, they were three quarters of a
job's broker messages.
"""

from __future__ import annotations

from celery import Celery

from longshore.broker.routing import CONTROL_QUEUE, JANITOR_TASK, declared_queues
from longshore.settings import Settings


def publish_retry_policy(settings: Settings) -> dict[str, float]:
    """How publishing retries while the broker is unreachable (kombu's retry policy)."""
    retry = settings.retry
    return {"max_retries": retry.publish_retries, "interval_start": 0.2, "interval_step": 0.5,
            "interval_max": retry.publish_retry_interval_max_seconds}


def create_app(settings: Settings, stack_names: list[str]) -> Celery:
    """Build the app for these settings and stacks; nothing connects until first use."""
    app = Celery("longshore")
    policy = publish_retry_policy(settings)
    transport_options = {"polling_interval": 0.01} if settings.embedded else {
        "confirm_publish": True,
        # Connecting to publish rides out a broker restart instead of failing the
        # step that publishes; kombu reads these for its default channel.
        **policy,
        "connect_retries_timeout": settings.retry.broker_connect_timeout_seconds,
    }
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options,
        task_queues=declared_queues(stack_names),
        task_default_queue=CONTROL_QUEUE,
        task_create_missing_queues=True,
        task_publish_retry_policy=policy,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        # Off until a monitor asks (Flower sends `enable_events`; `longshore worker --task-events` forces
        # them): with nobody listening, each step's received/started/succeeded events and each publish's
        # sent event were 17 of 23 messages per job, all dropped by the broker.
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
        beat_schedule={
            "longshore-janitor": {"task": JANITOR_TASK, "schedule": settings.janitor.interval_seconds},
        },
    )
    return app
