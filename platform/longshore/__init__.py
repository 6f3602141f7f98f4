"""Longshore: run other people's code as jobs, each in its own Docker container, over Celery.

`submit`, `retry`, `list_jobs`, `JobHandle` and `JobStatus` are imported on first use, so `import longshore`
never parses settings or connects anywhere by itself.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["submit", "retry", "list_jobs", "upload_code", "pause_code", "resume_code", "JobHandle", "JobStatus",
           "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("submit", "retry", "list_jobs", "upload_code", "pause_code", "resume_code", "JobHandle"):
        from longshore import client

        return getattr(client, name)
    if name == "JobStatus":
        from longshore.domain.status import JobStatus

        return JobStatus
    raise AttributeError(f"module 'longshore' has no attribute {name!r}")
