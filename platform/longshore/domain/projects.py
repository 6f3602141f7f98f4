"""Projects and their API tokens: who may see and touch which jobs, codes and schedules.

A token is 32 random bytes (URL-safe base64), shown once when it is made; the store keeps only its SHA-256
digest, so a stolen database yields no token. Looking one up by its digest needs no comparison of
secrets (the digest of a guess reveals nothing about a stored one); the lookup still compares in
constant time."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid

from longshore.errors import InvalidJob

#: What is made without naming a project belongs to this one (made by migration 0006).
DEFAULT_PROJECT = "default"
PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
PROJECT_ID = re.compile(r"[0-9a-f]{24}")
TOKEN_BYTES = 32


def new_project_id() -> str:
    """24 hex characters, like IronWorker's ids."""
    return uuid.uuid4().hex[:24]


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_project_name(name: object) -> str:
    if not isinstance(name, str) or not PROJECT_NAME.fullmatch(name):
        raise InvalidJob("name: a project's name is 1 to 100 letters, digits, '_', '.' or '-', starting with a "
                         "letter or digit")
    if PROJECT_ID.fullmatch(name):
        raise InvalidJob("name: 24 hexadecimal digits look like a project's id; choose another name")
    return name
