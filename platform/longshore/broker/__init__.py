"""Celery and kombu plumbing: the app (configuration only), routing and task names, publishing.

It imports the domain and settings and nothing above them, never the store or the engine.
"""
