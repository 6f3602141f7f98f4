"""Longshore: run other people's code as jobs, each in its own Docker container, over Celery.

`submit`, `retry`, `list_jobs`, `JobHandle` and `JobStatus` are imported on first use, so `import longshore`
never parses settings or connects anywhere by itself.
"""

from typing import Any

__version__ = "0.1.0"
API = ("submit", "retry", "list_jobs", "upload_code", "pause_code", "resume_code", "schedule", "list_schedules",
       "pause_schedule", "resume_schedule", "delete_schedule", "JobHandle")
__all__ = [*API, "Client", "JobStatus", "__version__"]


def __getattr__(name: str) -> Any:
    if name in API:
        from longshore import client

        return getattr(client, name)
    if name == "Client":
        from longshore.remote import Client

        return Client
    if name == "JobStatus":
        from longshore.domain.status import JobStatus

        return JobStatus
    raise AttributeError(f"module 'longshore' has no attribute {name!r}")
