"""Where the user commands (jobs, codes, schedules) act: a `longshore api` over HTTP when LONGSHORE_API_URL
and LONGSHORE_TOKEN are set (a laptop needs neither broker nor store), else this installation directly."""

from __future__ import annotations

import functools

from longshore.remote import Client


@functools.cache
def api_client() -> Client | None:
    """The API client the commands use, or None to act on the store and broker directly."""
    from longshore.settings import get_settings

    settings = get_settings()
    return Client(settings.api_url, settings.token) if settings.api_url else None
