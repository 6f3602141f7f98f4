"""How settings are declared (`variable`) and read from the environment: one reader per kind of value.

A reader gets the environment, its variable's declaration and the values read so far, and returns
the typed value or raises ConfigError naming the variable. Secrets are never echoed.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from longshore.domain.registries import RegistryAuths, load_registry_auths
from longshore.domain.stacks import parse_size
from longshore.domain.webhooks import parse_networks
from longshore.errors import ConfigError, InvalidJob

BROKER_SCHEMES = frozenset({"amqp", "amqps", "pyamqp", "memory"})
DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "postgres", "postgresql+psycopg2"})
HTTP_SCHEMES = frozenset({"http", "https"})
DOCKER_SCHEMES = frozenset({"unix", "tcp", "ssh", "http", "https", "npipe"})
#: What DOCKER_CERT_PATH holds, as the docker CLI reads it: the engine's CA, this client's certificate and key.
DOCKER_CERT_FILES = ("ca.pem", "cert.pem", "key.pem")

Env = dict[str, str]


@dataclass(frozen=True)
class Variable:
    """One environment variable: how to read it and what it means."""

    name: str
    read: Callable[[Env, "Variable", dict[str, Any]], Any]  #: (environment, self, values read so far)
    default: Any
    doc: str
    shown_default: str | None = None  #: the default as the README shows it, when not the value itself
    minimum: float | None = None
    maximum: float | None = None


#: How a switch may be written.
SWITCH_WORDS = {**dict.fromkeys(("1", "true", "yes", "on"), True), **dict.fromkeys(("0", "false", "no", "off"), False)}


def variable(name: str, default: Any, doc: str, *, read: Callable | None = None, minimum: float | None = None,
             maximum: float | None = None, shown_default: str | None = None) -> Any:
    """Declare a settings field read from environment variable `name`."""
    return field(metadata={"variable": Variable(name, read or _number, default, doc, shown_default, minimum,
                                                maximum)})


# -- readers ------------------------------------------------------------------

def _raw(env: Env, var: Variable, values: dict[str, Any]) -> Any:
    raw = env.get(var.name)
    if raw is None or raw == "":
        return var.default(values) if callable(var.default) else var.default
    return raw


def _number(env: Env, var: Variable, values: dict[str, Any]) -> float:
    raw = env.get(var.name)
    if raw is None or raw == "":
        return float(var.default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{var.name}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{var.name}: {raw!r} is not a finite number")
    if var.minimum is not None and value < var.minimum:
        raise ConfigError(f"{var.name}: {raw!r} is below the minimum of {var.minimum:g}")
    if var.maximum is not None and value > var.maximum:
        raise ConfigError(f"{var.name}: {raw!r} is above the maximum of {var.maximum:g}")
    return value


def _whole(env: Env, var: Variable, values: dict[str, Any]) -> int:
    return int(_number(env, var, values))


def _text(env: Env, var: Variable, values: dict[str, Any]) -> str | None:
    return _raw(env, var, values)


def _switch(env: Env, var: Variable, values: dict[str, Any]) -> bool:
    """`1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off` (any case); empty: the default."""
    raw = str(_raw(env, var, values)).strip().lower()
    if raw not in SWITCH_WORDS:
        raise ConfigError(f"{var.name}: {raw!r} is neither on (1, true, yes, on) nor off (0, false, no, off)")
    return SWITCH_WORDS[raw]


def _path(env: Env, var: Variable, values: dict[str, Any]) -> Path:
    return Path(_raw(env, var, values)).expanduser()


def _shared_dir(env: Env, var: Variable, values: dict[str, Any]) -> Path | None:
    """An absolute path (the engine sees it at the same path), or `off`."""
    raw = _raw(env, var, values)
    if raw is None or raw.strip().lower() == "off":
        return None
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise ConfigError(f"{var.name}: {raw!r} is not an absolute path (the Docker engine must see it at the "
                          "same path); give one, or `off`")
    return path


def _url(schemes: frozenset[str]) -> Callable[[Env, Variable, dict[str, Any]], str | None]:
    def read(env: Env, var: Variable, values: dict[str, Any]) -> str | None:
        value = _raw(env, var, values)
        if value is None:
            return None
        if urlsplit(value).scheme not in schemes:
            raise ConfigError(
                f"{var.name}: {value!r} is not a URL Longshore understands; "
                f"expected a scheme among {', '.join(sorted(schemes))}"
            )
        return value

    return read


def _size(env: Env, var: Variable, values: dict[str, Any]) -> int:
    raw = _raw(env, var, values)
    try:
        amount = parse_size(raw, var.name, int(var.minimum or 1))
    except InvalidJob as exc:
        raise ConfigError(str(exc)) from None
    if var.maximum is not None and amount > var.maximum:
        raise ConfigError(f"{var.name}: {raw!r} is above the maximum of {int(var.maximum)} bytes")
    return amount


def _secret_keys(env: Env, var: Variable, values: dict[str, Any]) -> tuple[str, ...]:
    """Fernet keys (url-safe base64 of 32 bytes), comma-separated: the first seals, all open. Never echoed."""
    raw = _raw(env, var, values) or ""
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    for position, key in enumerate(keys, 1):
        try:
            valid = len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32 and len(key) == 44
        except (ValueError, UnicodeEncodeError):
            valid = False
        if not valid:
            raise ConfigError(f"{var.name}: key {position} is not a Fernet key (44 characters of url-safe base64, "
                              "as `longshore secret-key` prints)")
    return keys


def _webhook_secret(env: Env, var: Variable, values: dict[str, Any]) -> str | None:
    """A key to sign webhooks with: at least 16 characters. Never echoed."""
    raw = _raw(env, var, values)
    if raw is not None and len(raw.strip()) < 16:
        raise ConfigError(f"{var.name}: must be at least 16 characters (e.g. `openssl rand -hex 32`)")
    return raw.strip() if raw else None


def _networks(env: Env, var: Variable, values: dict[str, Any]) -> tuple:
    """CIDR networks, comma-separated."""
    try:
        return parse_networks(_raw(env, var, values) or "")
    except ValueError as exc:
        raise ConfigError(f"{var.name}: {exc} (give networks like 10.1.0.0/16, comma-separated)") from None


def _registry_auths(env: Env, var: Variable, values: dict[str, Any]) -> RegistryAuths:
    raw = _raw(env, var, values)
    return RegistryAuths(var.name) if raw is None else load_registry_auths(Path(raw).expanduser(), var.name)


def _docker_switch(env: Env, var: Variable, values: dict[str, Any]) -> bool:
    """On when set to anything, as the docker CLI reads its switches (it only asks whether one is empty); so
    a value meaning "off" is refused rather than read as on."""
    raw = env.get(var.name, "")
    if raw.strip().lower() in {"0", "false", "no", "off"}:
        raise ConfigError(f"{var.name}: {raw!r} would turn it on for the docker CLI (any value does); "
                          "set it to 1, or leave it empty for off")
    return raw != ""


def _docker_cert_path(env: Env, var: Variable, values: dict[str, Any]) -> Path:
    """Docker's directory of TLS files; with DOCKER_TLS_VERIFY on, each of them must be there."""
    path = _path(env, var, values)
    if values["docker_tls_verify"]:
        for name in DOCKER_CERT_FILES:
            if not (path / name).is_file():
                raise ConfigError(f"{var.name}: {path / name} does not exist (with DOCKER_TLS_VERIFY set, "
                                  f"{var.name} must hold {', '.join(DOCKER_CERT_FILES)})")
    return path


def _stacks_file(env: Env, var: Variable, values: dict[str, Any]) -> Path:
    path = _path(env, var, values)
    if not path.is_file():
        raise ConfigError(f"{var.name}: the stack manifest {path} does not exist "
                          "(set LONGSHORE_STACKS to the path of a stacks.toml)")
    return path
