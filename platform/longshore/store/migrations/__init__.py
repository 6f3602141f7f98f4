"""Alembic's migration environment for the job store (numbered revisions in `versions/`)."""
