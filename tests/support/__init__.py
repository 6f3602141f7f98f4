"""Helpers and fixtures shared by the test tiers (on sys.path through pytest's `pythonpath`)."""
