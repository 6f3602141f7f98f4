"""Credentials for private image registries, read from a Docker-style config (`{"auths": {…}}`).

Each entry gives a username and password, either as fields or as `auth`, the base64 of
`username:password` that `docker login` writes. A password never appears in a repr or an
error: what is wrong is said of the entry, by its registry's name.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longshore.errors import ConfigError


@dataclass(frozen=True)
class RegistryCredential:
    """A username and password for one registry; the password is left out of the repr."""

    registry: str  #: host[:port], as in an image reference
    username: str
    password: str = field(repr=False)

    def auth_config(self) -> dict[str, str]:
        """The engine's form of it (the X-Registry-Auth header docker-py builds)."""
        return {"username": self.username, "password": self.password, "serveraddress": self.registry}


@dataclass(frozen=True)
class RegistryAuths:
    """Every registry's credentials, and the setting they came from (named in errors)."""

    source: str
    credentials: tuple[RegistryCredential, ...] = ()

    def get(self, registry: str) -> RegistryCredential | None:
        """The credentials configured for `registry` (host[:port]), if any."""
        return next((c for c in self.credentials if c.registry == registry), None)

    def auth_config(self, registry: str) -> dict[str, str] | None:
        """What a pull from `registry` sends: its credentials in the engine's form, or None."""
        credential = self.get(registry)
        return credential.auth_config() if credential else None


def registry_host(key: str) -> str:
    """A config key as the registry's host[:port]: docker writes some as URLs (`https://index.docker.io/v1/`)."""
    host = key.split("://", 1)[-1].split("/", 1)[0]
    return "docker.io" if host == "index.docker.io" else host


def load_registry_auths(path: Path, source: str) -> RegistryAuths:
    """The credentials in the config file at `path`; ConfigError naming `source` if it cannot be read or makes
    no sense. Errors say where, never what: the file holds passwords."""
    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:  # bad JSON, or not UTF-8
        where = f" (line {exc.lineno}, column {exc.colno}: {exc.msg})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigError(f"{source}: {path} is not JSON{where}") from None
    return parse_registry_auths(document, source)


def parse_registry_auths(document: Any, source: str) -> RegistryAuths:
    """The credentials of a parsed config document; ConfigError naming `source` and the entry on nonsense."""
    auths = document.get("auths") if isinstance(document, dict) else None
    if not isinstance(auths, dict):
        raise ConfigError(f'{source}: the file has no "auths" object (expected {{"auths": {{"REGISTRY": '
                          '{"username": "…", "password": "…"}}}})')
    return RegistryAuths(source, tuple(_credential(key, entry, source) for key, entry in auths.items()))


def _credential(key: str, entry: Any, source: str) -> RegistryCredential:
    registry = registry_host(key)
    where = f"{source}: the entry for registry {key!r}"
    if not registry:
        raise ConfigError(f"{where} names no registry")
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} is not an object")
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:  # docker's own form, which wins over the fields as it does for docker
            username, colon, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            colon = ""
        if not (colon and username and password):
            raise ConfigError(f'{where}: "auth" is not the base64 of username:password')
        return RegistryCredential(registry, username, password)
    username, password = entry.get("username"), entry.get("password")
    if isinstance(username, str) and username and isinstance(password, str) and password:
        return RegistryCredential(registry, username, password)
    raise ConfigError(f'{where} has neither "username" and "password" nor "auth" (base64 of username:password)')
