"""Settings, parsed once from the environment into typed, frozen, grouped objects.

Every tunable is declared here once, with its variable, default, bounds and a line
of documentation; `settings_table()` renders them for the README (a test keeps the
two equal). A bad value stops the program at start with a message that names the
variable and says what is wrong. Units are in the names. How each kind of value is
read lives in `readers`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from longshore.domain.archives import ArchiveLimits
from longshore.domain.policy import Policies, StepRetry
from longshore.domain.quotas import Quotas
from longshore.domain.registries import RegistryAuths
from longshore.domain.spec import JobLimits
from longshore.domain.stacks import Ceiling, Resources
from longshore.domain.steps import Step
from longshore.errors import ConfigError
from longshore.settings.readers import (  # noqa: F401  (DOCKER_CERT_FILES: part of this module's surface)
    BROKER_SCHEMES, DATABASE_SCHEMES, HTTP_SCHEMES, DOCKER_CERT_FILES, DOCKER_SCHEMES, Env, Variable, _docker_cert_path,
    _docker_switch, _networks, _path, _registry_auths, _secret_keys, _shared_dir, _size, _stacks_file, _switch, _text,
    _url, _webhook_secret, _whole, variable,
)

#: The manifest shipped in the repository, next to the package's source root.
REPO_STACKS_FILE = Path(__file__).resolve().parents[3] / "workers" / "stacks.toml"


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
    max_timeout_seconds: float = variable("LONGSHORE_MAX_TIMEOUT_SECONDS", 86400,
                                          "the largest timeout a job may ask for", minimum=1, maximum=7 * 86400)
    max_retries: int = variable("LONGSHORE_MAX_JOB_RETRIES", 10,
                                "the most retries a job may ask for (of its own failures)", read=_whole, minimum=0)
    max_retry_delay_seconds: float = variable(
        "LONGSHORE_MAX_RETRY_DELAY_SECONDS", 900,
        "the longest delay between a job's retries (the new attempt waits in the store, not on the broker)",
        minimum=0)
    max_memory_bytes: int = variable("LONGSHORE_MAX_MEMORY", "4g", "the most memory any stack may give a job",
                                     read=_size, minimum=6 << 20, shown_default="`4g`")
    max_disk_bytes: int = variable(
        "LONGSHORE_MAX_DISK", "1g", "the most disk any stack may give a job (its files live in memory: see "
        "docs/security.md)", read=_size, minimum=1 << 20, shown_default="`1g`")
    max_cpus: float = variable("LONGSHORE_MAX_CPUS", 8, "the most CPUs any stack may give a job", minimum=0.01,
                               maximum=1024)
    code_archive_limit_bytes: int = variable(
        "LONGSHORE_CODE_ARCHIVE_LIMIT", "32m", "the largest code archive (zip) accepted at upload", read=_size,
        minimum=1 << 10, maximum=1 << 30, shown_default="`32m`")
    code_unpacked_limit_bytes: int = variable(
        "LONGSHORE_CODE_UNPACKED_LIMIT", "128m", "the most bytes a code archive may unpack to (checked while "
        "inflating: zip bombs stop there)", read=_size, minimum=1 << 10, maximum=4 << 30, shown_default="`128m`")
    max_pids: int = variable("LONGSHORE_MAX_PIDS", 4096, "the most processes any stack may let a job run at once",
                             read=_whole, minimum=16, maximum=1 << 22)
    secret_keys: tuple[str, ...] = variable(
        "LONGSHORE_SECRET_KEYS", "", "Fernet keys sealing jobs' `secret_env` at rest, comma-separated: the first "
        "seals, every one opens (rotation); the embedded default makes one in `LONGSHORE_HOME`",
        read=_secret_keys, shown_default="none")


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
        "LONGSHORE_REDRIVE_AFTER_SECONDS", 30,
        "a step of a worker's own attempt with no progress this long is sent again", minimum=1, maximum=3600)
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
    registry_auths: RegistryAuths = variable(
        "LONGSHORE_REGISTRY_AUTH_FILE", None, "a Docker-style config file of private registries' credentials "
        '(`{"auths": {"HOST:PORT": {"username": …, "password": …}}}`, or docker\'s `"auth"` form), read at start',
        read=_registry_auths, shown_default="none")
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
    step_backoff_max_seconds: int = variable("LONGSHORE_STEP_BACKOFF_MAX_SECONDS", 30,
                                             "longest backoff of a step retry", read=_whole, minimum=1, maximum=60)
    reap_backoff_seconds: int = variable("LONGSHORE_REAP_BACKOFF_SECONDS", 2, "first backoff of a reap retry",
                                         read=_whole, minimum=1, maximum=60)
    reap_backoff_max_seconds: int = variable("LONGSHORE_REAP_BACKOFF_MAX_SECONDS", 60,
                                             "longest backoff of a reap retry", read=_whole, minimum=1, maximum=60)
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
    """The janitor: what it waits for before touching a container or a job, and how long ended jobs stay."""

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
    retention_output_days: float = variable(
        "LONGSHORE_RETENTION_OUTPUT_DAYS", 0, "days after a job ended when the janitor deletes its output, result, "
        "payload, config and env (the job stays, with `erased_at`); 0: kept forever", minimum=0)
    retention_job_days: float = variable(
        "LONGSHORE_RETENTION_JOB_DAYS", 0, "days after a job ended when the janitor deletes the job itself, with its "
        "attempts and webhook deliveries; 0: never", minimum=0)


@dataclass(frozen=True, kw_only=True)
class SchedulerSettings:
    """The scheduler, one active per installation (every worker and `longshore scheduler` compete for it):
    it makes schedules' jobs and delivers webhooks."""

    interval_seconds: float = variable("LONGSHORE_SCHEDULER_INTERVAL_SECONDS", 1,
                                       "how often the active scheduler looks for due schedules and webhooks",
                                       minimum=0.1, maximum=60)
    webhook_secret: str | None = variable(
        "LONGSHORE_WEBHOOK_SECRET", None, "the key webhooks are signed with (HMAC-SHA256, at least 16 "
        "characters); without it jobs naming a webhook are refused", read=_webhook_secret,
        shown_default="none")
    webhook_allow_networks: tuple = variable(
        "LONGSHORE_WEBHOOK_ALLOW_NETWORKS", "", "networks (CIDR, comma-separated) webhooks may reach although "
        "they are loopback or private (which are refused otherwise)", read=_networks, shown_default="none")
    webhook_timeout_seconds: float = variable("LONGSHORE_WEBHOOK_TIMEOUT_SECONDS", 10,
                                              "how long a webhook's receiver may take to answer", minimum=1,
                                              maximum=120)
    webhook_max_tries: int = variable("LONGSHORE_WEBHOOK_MAX_TRIES", 25,
                                      "tries of one delivery before it is abandoned", read=_whole, minimum=1,
                                      maximum=1000)
    webhook_max_backoff_seconds: float = variable(
        "LONGSHORE_WEBHOOK_MAX_BACKOFF_SECONDS", 600,
        "the longest wait between tries of a delivery (the waits double from 1 s)", minimum=1, maximum=86400)


@dataclass(frozen=True, kw_only=True)
class QuotaSettings:
    """What one project may have at once, unless the project sets its own (`longshore projects set`);
    0 means no limit."""

    max_queued_jobs: int = variable(
        "LONGSHORE_PROJECT_MAX_QUEUED_JOBS", 0, "jobs of one project waiting to run (queued or delayed) "
        "beyond which its submissions are refused (HTTP 429); 0: no limit", read=_whole, minimum=0)
    max_running_jobs: int = variable(
        "LONGSHORE_PROJECT_MAX_RUNNING_JOBS", 0, "jobs of one project holding a worker's slot at once; the rest "
        "wait queued", read=_whole, minimum=0)
    requests_per_second: float = variable(
        "LONGSHORE_PROJECT_REQUESTS_PER_SECOND", 100, "API requests of one project per second, per API process "
        "(bursts of twice that pass; over it: HTTP 429)", minimum=0, maximum=1e6)

    @functools.cached_property
    def defaults(self) -> Quotas:
        return Quotas(max_queued_jobs=self.max_queued_jobs, max_running_jobs=self.max_running_jobs,
                      requests_per_second=self.requests_per_second)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything Longshore reads from its environment, validated."""

    home: Path = variable("LONGSHORE_HOME", lambda _values: str(Path.home() / ".longshore"),
                          "where the embedded default keeps its data", read=_path, shown_default="`~/.longshore`")
    contract_dir: Path | None = variable(
        "LONGSHORE_CONTRACT_DIR", lambda values: str(values["home"].absolute() / "contracts"),
        "a directory a worker and its Docker engine both see at this path: each job's payload and result folder "
        "is made there and mounted, not copied into its container (proved at the first job; where the engine "
        "does not see it, contracts are copied); `off`: always copy", read=_shared_dir,
        shown_default="`$LONGSHORE_HOME/contracts`")
    broker_url: str = variable("LONGSHORE_BROKER_URL", "memory://", "`amqp://…` for RabbitMQ",
                               read=_url(BROKER_SCHEMES), shown_default="none: embedded")
    database_url: str = variable("LONGSHORE_DATABASE_URL", lambda values: f"sqlite:///{values['home']}/longshore.db",
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
    database_prepare: bool = variable("LONGSHORE_DATABASE_PREPARE", "on", "PostgreSQL plans a statement a connection "
        "repeats once (`PREPARE`); `off` behind a pooler that moves sessions between server connections (pgbouncer "
        "in transaction mode)", read=_switch)
    docker_host: str | None = variable("DOCKER_HOST", None, "the engine this worker drives",
                                       read=_url(DOCKER_SCHEMES), shown_default="the local socket")
    docker_tls_verify: bool = variable(
        "DOCKER_TLS_VERIFY", "", "`1`: speak TLS to a `tcp://` DOCKER_HOST and verify it, as the docker CLI does",
        read=_docker_switch, shown_default="empty: off")
    docker_cert_path: Path = variable(
        "DOCKER_CERT_PATH", lambda _values: str(Path.home() / ".docker"),
        "`ca.pem`, `cert.pem` and `key.pem` for DOCKER_TLS_VERIFY (each must exist when it is on)",
        read=_docker_cert_path, shown_default="`~/.docker`")
    api_url: str | None = variable(
        "LONGSHORE_API_URL", None, "`http(s)://…` of a `longshore api`: the job, code and schedule commands use it "
        "(with LONGSHORE_TOKEN) instead of the broker and the store", read=_url(HTTP_SCHEMES), shown_default="none")
    token: str | None = variable("LONGSHORE_TOKEN", None, "the API token those commands act with",
                                 read=_text, shown_default="none")
    stacks_file: Path = variable("LONGSHORE_STACKS", str(REPO_STACKS_FILE), "the stack manifest",
                                 read=_stacks_file, shown_default="`workers/stacks.toml`")
    jobs: JobSettings = field(default_factory=JobSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    janitor: JanitorSettings = field(default_factory=JanitorSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    quotas: QuotaSettings = field(default_factory=QuotaSettings)

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
    def archive_limits(self) -> ArchiveLimits:
        """How big a code archive may be, zipped and unpacked."""
        return ArchiveLimits(zip_bytes=self.jobs.code_archive_limit_bytes,
                             unpacked_bytes=self.jobs.code_unpacked_limit_bytes)

    @functools.cached_property
    def job_limits(self) -> JobLimits:
        """The bounds the job validator checks against."""
        jobs = self.jobs
        return JobLimits(default_stack=jobs.default_stack, payload_limit_bytes=jobs.payload_limit_bytes,
                         default_timeout_seconds=jobs.default_timeout_seconds, max_retries=jobs.max_retries,
                         max_retry_delay_seconds=jobs.max_retry_delay_seconds)

    @functools.cached_property
    def ceiling(self) -> Ceiling:
        """The installation's maximums, which every stack's must stay under."""
        jobs = self.jobs
        return Ceiling(resources=Resources(memory_bytes=jobs.max_memory_bytes, cpus=jobs.max_cpus,
                                           disk_bytes=jobs.max_disk_bytes, timeout_seconds=jobs.max_timeout_seconds),
                       pids=jobs.max_pids)

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
        settings = _read_group(cls, dict(os.environ if environ is None else environ), {})
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
    if bool(settings.api_url) != bool(settings.token):
        raise ConfigError("LONGSHORE_API_URL and LONGSHORE_TOKEN: set both (to use an API) or neither")
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


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value) if isinstance(value, int) else f"`{value}`"


@functools.cache
def get_settings() -> Settings:
    """The process's settings, parsed on first use and then kept."""
    return Settings.from_env()
