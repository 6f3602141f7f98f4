"""Settings, parsed once from the environment into typed, frozen, grouped objects.

Every tunable is declared here once, with its variable, default, bounds and a line
of documentation; `settings_table()` renders them for the README (a test keeps the
two equal). A bad value stops the program at start with a message that names the
variable and says what is wrong. Units are in the names.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import socket
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable
from urllib.parse import urlsplit

from longshore.domain.policy import Policies, StepRetry
from longshore.domain.spec import JobLimits
from longshore.domain.steps import Step
from longshore.errors import ConfigError

#: The manifest shipped in the repository, next to the package's source root.
REPO_STACKS_FILE = Path(__file__).resolve().parents[2] / "workers" / "stacks.toml"

BROKER_SCHEMES = frozenset({"amqp", "amqps", "pyamqp", "memory"})
DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "postgres", "postgresql+psycopg2"})
DOCKER_SCHEMES = frozenset({"unix", "tcp", "ssh", "http", "https", "npipe"})

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


def _path(env: Env, var: Variable, values: dict[str, Any]) -> Path:
    return Path(_raw(env, var, values)).expanduser()


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


def _stacks_file(env: Env, var: Variable, values: dict[str, Any]) -> Path:
    path = _path(env, var, values)
    if not path.is_file():
        raise ConfigError(f"{var.name}: the stack manifest {path} does not exist "
                          "(set LONGSHORE_STACKS to the path of a stacks.toml)")
    return path


# -- the groups ---------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class JobSettings:
    """What a job may ask for, and what is kept of it."""

    default_stack: str = variable("LONGSHORE_DEFAULT_STACK", "busybox", "the stack when a job names none",
                                  read=_text)
    output_limit_bytes: int = variable(
        "LONGSHORE_OUTPUT_LIMIT_BYTES", 1 << 20, "output kept per job: the **last** bytes of stdout+stderr",
        read=_whole, minimum=1024, maximum=64 << 20)
    result_limit_bytes: int = variable("LONGSHORE_RESULT_LIMIT_BYTES", 1 << 20, "largest result file collected",
                                       read=_whole, minimum=1024, maximum=64 << 20)
    payload_limit_bytes: int = variable("LONGSHORE_PAYLOAD_LIMIT_BYTES", 1 << 20, "largest payload accepted",
                                        read=_whole, minimum=2, maximum=64 << 20)
    default_timeout_seconds: float = variable("LONGSHORE_DEFAULT_TIMEOUT_SECONDS", 3600,
                                              "timeout of a job whose stack sets none", minimum=1, maximum=7 * 86400)
    max_timeout_seconds: float = variable("LONGSHORE_MAX_TIMEOUT_SECONDS", 86400, "the largest timeout a job may ask for",
                                          minimum=1, maximum=7 * 86400)
    max_retries: int = variable("LONGSHORE_MAX_JOB_RETRIES", 10,
                                "the most retries a job may ask for (of its own failures)", read=_whole, minimum=0)
    max_retry_delay_seconds: float = variable(
        "LONGSHORE_MAX_RETRY_DELAY_SECONDS", 900,
        "the longest delay between a job's retries (the new attempt waits in the store, not on the broker)",
        minimum=0)
    pids_limit: int = variable("LONGSHORE_PIDS_LIMIT", 256, "processes one job may run at once (stops fork bombs)",
                               read=_whole, minimum=16, maximum=1 << 22)


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """How workers run, heart-beat and talk to their engine."""

    hostname: str = variable("LONGSHORE_HOSTNAME", lambda _values: socket.gethostname(),
                             "recorded on each attempt; part of the default worker name", read=_text,
                             shown_default="the host name")
    embedded_slots: int = variable("LONGSHORE_EMBEDDED_SLOTS", 4, "containers the embedded worker runs at once",
                                   read=_whole, minimum=1)
    supervise_interval_seconds: float = variable(
        "LONGSHORE_SUPERVISE_INTERVAL_SECONDS", 0.5,
        "how often a worker's watcher looks over its attempts and containers (cancels, stalls, adoption)",
        minimum=0.05, maximum=10)
    redrive_after_seconds: float = variable(
        "LONGSHORE_REDRIVE_AFTER_SECONDS", 30, "a step of a worker's own attempt with no progress this long is sent again",
        minimum=1, maximum=3600)
    claim_wait_seconds: float = variable(
        "LONGSHORE_CLAIM_WAIT_SECONDS", 5, "how long a pull waits for a free slot before handing its job back",
        minimum=0, maximum=50)
    heartbeat_seconds: float = variable("LONGSHORE_HEARTBEAT_SECONDS", 10, "how often a worker heart-beats",
                                        minimum=0.1, maximum=600)
    lost_seconds: float = variable("LONGSHORE_WORKER_LOST_SECONDS", 120,
                                   "a worker silent this long is lost and its jobs requeued", minimum=1,
                                   maximum=86400)
    forget_seconds: float = variable(
        "LONGSHORE_WORKER_FORGET_SECONDS", 3600,
        "a worker silent this long that owns nothing is forgotten (and no longer reported down)", minimum=60)
    engine_lost_seconds: float = variable(
        "LONGSHORE_ENGINE_LOST_SECONDS", 0,
        "0: a started job whose engine has no live worker waits (for `longshore janitor --engine-gone ID`); "
        "N: it is requeued once that engine has been silent N seconds and the job is past its deadline "
        "(a host that is only cut off could then run it twice)", minimum=0)
    docker_timeout_seconds: float = variable("LONGSHORE_DOCKER_TIMEOUT_SECONDS", 60, "timeout of one engine call",
                                             minimum=1, maximum=3600)
    metrics_addr: str = variable("LONGSHORE_METRICS_ADDR", "127.0.0.1",
                                 "address a worker's `--metrics-port` listens on", read=_text)


@dataclass(frozen=True, kw_only=True)
class RetrySettings:
    """The platform's own retries: steps, publishing, redeliveries (never the job's retries)."""

    step_retries: int = variable("LONGSHORE_STEP_RETRIES", 10,
                                 "platform retries of a lifecycle step on a transient engine or store failure",
                                 read=_whole, minimum=0)
    step_backoff_seconds: int = variable("LONGSHORE_STEP_BACKOFF_SECONDS", 1,
                                         "first backoff of a step retry; doubles each retry, full jitter",
                                         read=_whole, minimum=1, maximum=60)
    step_backoff_max_seconds: int = variable("LONGSHORE_STEP_BACKOFF_MAX_SECONDS", 30, "longest backoff of a step retry",
                                             read=_whole, minimum=1, maximum=60)
    reap_backoff_seconds: int = variable("LONGSHORE_REAP_BACKOFF_SECONDS", 2, "first backoff of a reap retry",
                                         read=_whole, minimum=1, maximum=60)
    reap_backoff_max_seconds: int = variable("LONGSHORE_REAP_BACKOFF_MAX_SECONDS", 60, "longest backoff of a reap retry",
                                             read=_whole, minimum=1, maximum=60)
    max_redeliveries: int = variable("LONGSHORE_MAX_REDELIVERIES", 3,
                                     "a step redelivered more often (its worker keeps dying) requeues the job",
                                     read=_whole, minimum=0)
    max_redrives: int = variable("LONGSHORE_MAX_REDRIVES", 10,
                                 "an attempt whose stalled steps were sent again more often is requeued",
                                 read=_whole, minimum=1)
    max_requeues: int = variable("LONGSHORE_MAX_REQUEUES", 3,
                                 "platform requeues of one started job before it ends `lost` (a poison job)",
                                 read=_whole, minimum=0)
    publish_retries: int = variable("LONGSHORE_PUBLISH_RETRIES", 40,
                                    "retries of a publish while the broker is unreachable (about a minute in all)",
                                    read=_whole, minimum=0)
    publish_retry_interval_max_seconds: float = variable("LONGSHORE_PUBLISH_RETRY_INTERVAL_MAX_SECONDS", 2,
                                                         "longest pause between publish retries", minimum=0.1)
    broker_connect_timeout_seconds: float = variable("LONGSHORE_BROKER_CONNECT_TIMEOUT_SECONDS", 60,
                                                     "how long connecting to publish rides out a broker restart",
                                                     minimum=1)


@dataclass(frozen=True, kw_only=True)
class JanitorSettings:
    """The janitor: what it waits for before touching a container or a job."""

    reap_grace_seconds: float = variable("LONGSHORE_REAP_GRACE_SECONDS", 60,
                                         "janitor grace before touching a container", minimum=0)
    interval_seconds: float = variable("LONGSHORE_JANITOR_INTERVAL_SECONDS", 60, "the janitor's period (beat)",
                                       minimum=1)
    unpublished_after_seconds: float = variable(
        "LONGSHORE_UNPUBLISHED_AFTER_SECONDS", 10,
        "a queued job not on the broker this long after its store write is re-published (at least the grace)",
        minimum=1)
    republish_after_seconds: float = variable(
        "LONGSHORE_REPUBLISH_AFTER_SECONDS", 300,
        "a pull handed to a worker that has not claimed it this long is published again (it gave up in an outage)",
        minimum=60)
    worker_queue_expires_seconds: float = variable(
        "LONGSHORE_WORKER_QUEUE_EXPIRES_SECONDS", 86400, "a worker queue nobody consumes this long is dropped",
        minimum=60)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything Longshore reads from its environment, validated."""

    home: Path = variable("LONGSHORE_HOME", lambda _values: str(Path.home() / ".longshore"),
                          "where the embedded default keeps its data", read=_path, shown_default="`~/.longshore`")
    broker_url: str = variable("LONGSHORE_BROKER_URL", "memory://", "`amqp://…` for RabbitMQ",
                               read=_url(BROKER_SCHEMES), shown_default="none: embedded")
    database_url: str = variable("LONGSHORE_DATABASE_URL", lambda values: f"sqlite:///{values['home'] / 'longshore.db'}",
                                 "`postgresql://…` in production", read=_url(DATABASE_SCHEMES),
                                 shown_default="`sqlite:///$LONGSHORE_HOME/longshore.db`")
    database_pool_size: int = variable("LONGSHORE_DATABASE_POOL_SIZE", 5,
                                       "PostgreSQL connections each process keeps open (a prefork child: 1)",
                                       read=_whole, minimum=1)
    database_max_overflow: int = variable("LONGSHORE_DATABASE_MAX_OVERFLOW", 5,
                                          "further PostgreSQL connections a process may open under load",
                                          read=_whole, minimum=0)
    database_connect_timeout_seconds: float = variable(
        "LONGSHORE_DATABASE_CONNECT_TIMEOUT_SECONDS", 10, "how long a connect to PostgreSQL may take", minimum=1,
        maximum=300)
    docker_host: str | None = variable("DOCKER_HOST", None, "the engine this worker drives",
                                       read=_url(DOCKER_SCHEMES), shown_default="the local socket")
    stacks_file: Path = variable("LONGSHORE_STACKS", str(REPO_STACKS_FILE), "the stack manifest",
                                 read=_stacks_file, shown_default="`workers/stacks.toml`")
    jobs: JobSettings = field(default_factory=JobSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    janitor: JanitorSettings = field(default_factory=JanitorSettings)

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: a worker runs inside this process."""
        return self.broker_url.startswith("memory://")

    @functools.cached_property
    def installation(self) -> str:
        """A short, stable id of this installation (its job store), for container labels."""
        parts = urlsplit(self.database_url)
        where = f"{parts.scheme}://{parts.hostname or ''}:{parts.port or ''}{parts.path}"
        return hashlib.sha256(where.encode()).hexdigest()[:16]

    @functools.cached_property
    def job_limits(self) -> JobLimits:
        """The bounds the job validator checks against."""
        jobs = self.jobs
        return JobLimits(default_stack=jobs.default_stack, payload_limit_bytes=jobs.payload_limit_bytes,
                         default_timeout_seconds=jobs.default_timeout_seconds,
                         max_timeout_seconds=jobs.max_timeout_seconds, max_retries=jobs.max_retries,
                         max_retry_delay_seconds=jobs.max_retry_delay_seconds)

    @functools.cached_property
    def policies(self) -> Policies:
        """The lifecycle's retry and requeue rules."""
        retry = self.retry
        step = StepRetry(max_retries=retry.step_retries, backoff_seconds=retry.step_backoff_seconds,
                         backoff_max_seconds=retry.step_backoff_max_seconds)
        reap = StepRetry(max_retries=retry.step_retries, backoff_seconds=retry.reap_backoff_seconds,
                         backoff_max_seconds=retry.reap_backoff_max_seconds)
        steps = {s: (reap if s is Step.REAP else step) for s in Step}
        return Policies(steps=MappingProxyType(steps), max_redeliveries=retry.max_redeliveries,
                        max_requeues=retry.max_requeues,
                        engine_outage_margin_seconds=2 * self.worker.heartbeat_seconds + 1)

    @classmethod
    def from_env(cls, environ: Env | None = None) -> "Settings":
        """Build settings from `environ` (default `os.environ`); raise ConfigError on nonsense."""
        env = dict(os.environ if environ is None else environ)
        settings = _read_group(cls, env, {})
        _cross_check(settings)
        return settings


def _read_group(group: type, env: Env, values: dict[str, Any]) -> Any:
    """Read every variable of a settings group (and its nested groups) in declaration order."""
    kwargs: dict[str, Any] = {}
    for f in fields(group):
        var = f.metadata.get("variable")
        if var is not None:
            kwargs[f.name] = values[f.name] = var.read(env, var, values)
        elif is_dataclass(f.default_factory):
            kwargs[f.name] = _read_group(f.default_factory, env, values)
    return group(**kwargs)


#: A worker is judged lost only after missing this many heartbeats in a row.
MIN_HEARTBEATS_PER_LOST_WINDOW = 3


def _cross_check(settings: Settings) -> None:
    jobs, worker = settings.jobs, settings.worker
    if jobs.default_timeout_seconds > jobs.max_timeout_seconds:
        raise ConfigError("LONGSHORE_DEFAULT_TIMEOUT_SECONDS: must not exceed "
                          f"LONGSHORE_MAX_TIMEOUT_SECONDS ({jobs.max_timeout_seconds:g})")
    if worker.lost_seconds < MIN_HEARTBEATS_PER_LOST_WINDOW * worker.heartbeat_seconds:
        raise ConfigError(f"LONGSHORE_WORKER_LOST_SECONDS: {worker.lost_seconds:g} is shorter than "
                          f"{MIN_HEARTBEATS_PER_LOST_WINDOW} heartbeats (LONGSHORE_HEARTBEAT_SECONDS="
                          f"{worker.heartbeat_seconds:g}): every worker would look lost between two beats")


def variables(group: type = Settings) -> list[tuple[Variable, str]]:
    """Every variable, in declaration order, with the name of its group."""
    found = []
    for f in fields(group):
        var = f.metadata.get("variable")
        if var is not None:
            found.append((var, group.__name__))
        elif is_dataclass(f.default_factory):
            found.extend(variables(f.default_factory))
    return found


def settings_table() -> str:
    """The README's settings table, rendered from the declarations above."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for var, _group in variables():
        lines.append(f"| `{var.name}` | {var.shown_default or _shown(var.default)} | {var.doc} |")
    return "\n".join(lines)


def _shown(default: Any) -> str:
    if isinstance(default, float):
        return f"{default:g}"
    return str(default) if isinstance(default, int) else f"`{default}`"


@functools.cache
def get_settings() -> Settings:
    """The process's settings, parsed on first use and then kept."""
    return Settings.from_env()
