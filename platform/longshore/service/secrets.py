"""Sealing jobs' secret variables: encrypted at rest (Fernet, from `cryptography`), opened only to
create the job's container.

Keys come from LONGSHORE_SECRET_KEYS (the first seals, every one opens, so keys can be rotated).
The embedded default keeps a key of its own in LONGSHORE_HOME, made on first use, readable by its
owner only. Values never reach an error message, a log line or a record's repr.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from longshore.errors import ConfigError, InvalidJob
from longshore.settings import Settings

EMBEDDED_KEY_FILE = "secret.key"


class SecretsUnavailable(Exception):
    """Sealed secrets cannot be opened with this process's keys (a permanent failure of the job)."""


class Sealer:
    """Seals a job's secret variables before they are stored, and opens them to create its container."""

    def __init__(self, keys: tuple[str, ...]):
        self._fernet = MultiFernet([Fernet(key) for key in keys]) if keys else None

    def __repr__(self) -> str:
        return f"<Sealer {'with keys' if self._fernet else 'without a key'}>"

    def seal(self, secret_env: dict[str, str]) -> str | None:
        """The variables encrypted as one token; None when there are none."""
        if not secret_env:
            return None
        if self._fernet is None:
            raise InvalidJob("secret_env: this installation has no key to seal secrets with "
                             "(set LONGSHORE_SECRET_KEYS)")
        return self._fernet.encrypt(json.dumps(secret_env).encode()).decode()

    def open(self, sealed: str | None) -> dict[str, str]:
        """The variables from their token; SecretsUnavailable if no key of this process opens it."""
        if sealed is None:
            return {}
        if self._fernet is None:
            raise SecretsUnavailable("its secret variables cannot be opened: this worker has no "
                                     "LONGSHORE_SECRET_KEYS")
        try:
            return json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken:
            raise SecretsUnavailable("its secret variables cannot be opened: none of this worker's "
                                     "LONGSHORE_SECRET_KEYS sealed them") from None


def sealer_for(settings: Settings) -> Sealer:
    """The sealer of this installation: its configured keys, or the embedded default's own key."""
    if settings.jobs.secret_keys or not settings.embedded:
        return Sealer(settings.jobs.secret_keys)
    return Sealer((_embedded_key(settings.home),))


def _embedded_key(home: Path) -> str:
    path = home / EMBEDDED_KEY_FILE
    home.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting together make one key, never two
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(100):  # its maker may not have written it yet
            key = path.read_text().strip()
            if key:
                return key
            time.sleep(0.01)
        raise ConfigError(f"LONGSHORE_HOME: the secrets key {path} is empty; remove it to make a new one") from None
    with os.fdopen(fd, "w") as out:
        out.write(Fernet.generate_key().decode())
    return path.read_text().strip()
