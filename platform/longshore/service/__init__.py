"""Orchestration: submit, cancel, the lifecycle steps as plain functions, the janitor.

It talks to the store and the engine directly and to the broker through the
`Publisher` port; it knows no Celery decorator and no process signal. Entry
points (`worker/`, `cli/`, `client`) pass it a `Runtime`.
"""
