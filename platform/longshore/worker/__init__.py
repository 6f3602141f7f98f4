"""Worker processes: thin Celery task adapters, signal handlers, heartbeat, the embedded worker.

Only this package and `cli/` know Celery decorators and process signals; what a
task does is in `service/`.
"""
