"""Settings, parsed once from the environment into a typed, frozen object.

A bad value stops the program at start with a message that names the variable
and says what is wrong. Every tunable lives here with its unit in its name.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from longshore.errors import ConfigError

#: Where the embedded default keeps its SQLite file when LONGSHORE_HOME is unset.
DEFAULT_HOME = Path.home() / ".longshore"
#: The manifest shipped in the repository, next to the package's source root.
REPO_STACKS_FILE = Path(__file__).resolve().parents[2] / "workers" / "stacks.toml"

BROKER_SCHEMES = {"amqp", "amqps", "pyamqp", "memory"}
DATABASE_SCHEMES = {"sqlite", "postgresql", "postgres", "postgresql+psycopg2"}
DOCKER_SCHEMES = {"unix", "tcp", "ssh", "http", "https", "npipe"}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything Longshore reads from its environment, validated."""

    broker_url: str
    database_url: str
    docker_host: str | None
    stacks_file: Path
    home: Path
    hostname: str
    output_limit_bytes: int
    result_limit_bytes: int
    payload_limit_bytes: int
    default_timeout_seconds: float
    max_timeout_seconds: float
    docker_timeout_seconds: float
    default_stack: str
    embedded_slots: int
    wait_slice_seconds: float
    heartbeat_seconds: float
    worker_lost_seconds: float
    reap_grace_seconds: float
    janitor_interval_seconds: float

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: a worker runs inside this process."""
        return self.broker_url.startswith("memory://")

    @property
    def installation(self) -> str:
        """A short, stable id of this installation (its job store), for container labels."""
        parts = urlsplit(self.database_url)
        where = f"{parts.scheme}://{parts.hostname or ''}:{parts.port or ''}{parts.path}"
        return hashlib.sha256(where.encode()).hexdigest()[:16]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        """Build settings from `environ` (default `os.environ`); raise ConfigError on nonsense."""
        env = dict(os.environ if environ is None else environ)
        home = Path(env.get("LONGSHORE_HOME") or DEFAULT_HOME).expanduser()
        broker_url = _url(env, "LONGSHORE_BROKER_URL", "memory://", BROKER_SCHEMES)
        database_url = _url(
            env, "LONGSHORE_DATABASE_URL", f"sqlite:///{home / 'longshore.db'}", DATABASE_SCHEMES
        )
        docker_host = env.get("DOCKER_HOST") or None
        if docker_host is not None:
            _url(env, "DOCKER_HOST", None, DOCKER_SCHEMES)
        stacks_file = Path(env.get("LONGSHORE_STACKS") or REPO_STACKS_FILE).expanduser()
        if not stacks_file.is_file():
            raise ConfigError(
                f"LONGSHORE_STACKS: the stack manifest {stacks_file} does not exist "
                "(set LONGSHORE_STACKS to the path of a stacks.toml)"
            )
        default_timeout = _number(env, "LONGSHORE_DEFAULT_TIMEOUT_SECONDS", 3600, minimum=1)
        max_timeout = _number(env, "LONGSHORE_MAX_TIMEOUT_SECONDS", 86400, minimum=1)
        if default_timeout > max_timeout:
            raise ConfigError(
                "LONGSHORE_DEFAULT_TIMEOUT_SECONDS: must not exceed "
                f"LONGSHORE_MAX_TIMEOUT_SECONDS ({max_timeout:g})"
            )
        return cls(
            broker_url=broker_url,
            database_url=database_url,
            docker_host=docker_host,
            stacks_file=stacks_file,
            home=home,
            hostname=env.get("LONGSHORE_HOSTNAME") or socket.gethostname(),
            output_limit_bytes=int(_number(env, "LONGSHORE_OUTPUT_LIMIT_BYTES", 1 << 20, minimum=1024)),
            result_limit_bytes=int(_number(env, "LONGSHORE_RESULT_LIMIT_BYTES", 1 << 20, minimum=1024)),
            payload_limit_bytes=int(_number(env, "LONGSHORE_PAYLOAD_LIMIT_BYTES", 1 << 20, minimum=2)),
            default_timeout_seconds=default_timeout,
            max_timeout_seconds=max_timeout,
            docker_timeout_seconds=_number(env, "LONGSHORE_DOCKER_TIMEOUT_SECONDS", 60, minimum=1),
            default_stack=env.get("LONGSHORE_DEFAULT_STACK") or "busybox",
            embedded_slots=int(_number(env, "LONGSHORE_EMBEDDED_SLOTS", 4, minimum=1)),
            # Well under RabbitMQ's default consumer_timeout of 30 minutes.
            wait_slice_seconds=_number(env, "LONGSHORE_WAIT_SLICE_SECONDS", 300, minimum=0.5),
            heartbeat_seconds=_number(env, "LONGSHORE_HEARTBEAT_SECONDS", 10, minimum=0.1),
            worker_lost_seconds=_number(env, "LONGSHORE_WORKER_LOST_SECONDS", 120, minimum=1),
            reap_grace_seconds=_number(env, "LONGSHORE_REAP_GRACE_SECONDS", 60, minimum=0),
            janitor_interval_seconds=_number(env, "LONGSHORE_JANITOR_INTERVAL_SECONDS", 60, minimum=1),
        )


def _url(env: dict[str, str], name: str, default: str | None, schemes: set[str]) -> str:
    value = env.get(name) or default
    scheme = urlsplit(value).scheme if value else ""
    if scheme not in schemes:
        raise ConfigError(
            f"{name}: {value!r} is not a URL Longshore understands; "
            f"expected a scheme among {', '.join(sorted(schemes))}"
        )
    return value


def _number(env: dict[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{name}: {raw!r} is below the minimum of {minimum:g}")
    return value


@functools.cache
def get_settings() -> Settings:
    """The process's settings, parsed on first use and then kept."""
    return Settings.from_env()
