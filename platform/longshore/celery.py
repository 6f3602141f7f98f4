"""The entry point `celery -A longshore …` finds: the app, with every task and signal handler registered."""

from longshore.worker.tasks import app

__all__ = ["app"]
