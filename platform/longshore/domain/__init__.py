"""Pure domain: statuses and transitions, records, the job spec, outcomes, policies, stacks.

Nothing here does I/O or imports Celery, SQLAlchemy or docker; it imports nothing of
Longshore but `errors`. Every other layer builds on it.
"""
