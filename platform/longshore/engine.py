"""The one boundary around Docker.

Every engine call goes through `DockerEngine._call`, which times it and turns
any failure into a `DockerFailure` of one of three kinds, decided from exception
types and HTTP status codes only — Docker's message text has changed between
versions, so it never decides anything here.
"""

from __future__ import annotations

import io
import logging
import socket
import tarfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable

import docker
import docker.auth
import docker.errors
import docker.utils
import requests.exceptions
from docker.types import LogConfig

from longshore.errors import LongshoreError

log = logging.getLogger(__name__)

LABEL_JOB = "io.longshore.job"
LABEL_ATTEMPT = "io.longshore.attempt"
LABEL_WORKER = "io.longshore.worker"
LABEL_DEADLINE = "io.longshore.deadline"
#: Which installation (job store) made the container: a janitor touches only its own.
LABEL_INSTALLATION = "io.longshore.installation"

#: The job's contract inside its container (IronWorker's names).
CONTRACT_DIR = "/longshore"
PAYLOAD_PATH = f"{CONTRACT_DIR}/payload.json"
TASK_DIR = f"{CONTRACT_DIR}/task"
RESULT_PATH = f"{TASK_DIR}/result.json"
#: Processes one job may run at once: stops fork bombs without hampering real work.
PIDS_LIMIT = 256


class FailureKind(str, Enum):
    """What the platform should do about a failed engine call."""

    TRANSIENT = "transient"  #: the engine or network hiccuped: retry with backoff
    PERMANENT = "permanent"  #: the request itself is wrong: fail the job, do not retry
    CONFLICT = "conflict"  #: 409: resolve by looking at the actual state, not by retrying


class DockerFailure(LongshoreError):
    """An engine call failed; `kind` says what to do about it."""

    def __init__(self, step: str, kind: FailureKind, message: str):
        super().__init__(message)
        self.step = step
        self.kind = kind


class TransientDockerFailure(DockerFailure):
    """A DockerFailure worth retrying; Celery's autoretry catches this class."""


def classify(exc: BaseException) -> FailureKind:
    """Decide the kind of a failed engine call from its type and status code."""
    if isinstance(exc, docker.errors.APIError) and exc.status_code is not None:
        if exc.status_code == 409:
            return FailureKind.CONFLICT
        if exc.status_code >= 500:
            return FailureKind.TRANSIENT
        return FailureKind.PERMANENT
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        ConnectionError, TimeoutError)):
        return FailureKind.TRANSIENT
    if isinstance(exc, (docker.errors.InvalidRepository, docker.errors.InvalidArgument,
                        docker.errors.ImageNotFound, docker.errors.NotFound)):
        return FailureKind.PERMANENT
    if isinstance(exc, docker.errors.DockerException):
        # Raised by the client itself when it cannot reach the engine at all.
        return FailureKind.TRANSIENT
    return FailureKind.PERMANENT


def is_not_found(exc: BaseException) -> bool:
    """True for the engine's 404, whatever docker-py named the class."""
    return isinstance(exc, docker.errors.APIError) and exc.status_code == 404


@dataclass(frozen=True, kw_only=True)
class ContainerSpec:
    """Everything needed to create one attempt's container."""

    name: str
    image: str
    command: list[str] | None
    env: dict[str, str]
    user: str | None
    memory_bytes: int
    cpus: float
    labels: dict[str, str]
    payload: str
    output_limit_bytes: int


@dataclass(frozen=True)
class ExitReport:
    """What a finished container left behind."""

    exit_code: int
    oom_killed: bool
    output: str
    output_truncated: bool
    result: str | None
    finished_at: float | None = None  #: when the container stopped, as the engine recorded it


class DockerEngine:
    """A docker-py APIClient behind one error classifier and one timer."""

    def __init__(self, docker_host: str | None, *, timeout_seconds: float, max_pool_size: int = 32,
                 on_call: Callable[[str, str, float], None] | None = None):
        self._docker_host = docker_host
        self._timeout_seconds = timeout_seconds
        self._max_pool_size = max_pool_size
        self._client: docker.APIClient | None = None
        self._on_call = on_call or (lambda step, outcome, seconds: None)

    @property
    def api(self) -> docker.APIClient:
        """The low-level client, connected on first use (version negotiated)."""
        if self._client is None:
            env = {"DOCKER_HOST": self._docker_host} if self._docker_host else {}
            self._client = self._call(
                "connect", docker.APIClient,
                **docker.utils.kwargs_from_env(environment=env),
                version="auto",  # negotiated with the engine: this call can find it down
                timeout=self._timeout_seconds,
                max_pool_size=self._max_pool_size,
            )
        return self._client

    def _call(self, step: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except DockerFailure:
            self._on_call(step, "error", time.perf_counter() - started)
            raise
        except Exception as exc:  # every engine failure leaves here classified
            kind = classify(exc)
            self._on_call(step, kind.value, time.perf_counter() - started)
            failure_class = TransientDockerFailure if kind is FailureKind.TRANSIENT else DockerFailure
            raise failure_class(step, kind, _describe(step, exc)) from exc
        self._on_call(step, "ok", time.perf_counter() - started)
        return result

    # -- pull ----------------------------------------------------------------

    def ensure_image(self, image: str, *, always_pull: bool) -> bool:
        """Make `image` present on the engine; return True if it was pulled."""
        repository, tag = _split_reference(image)
        if not always_pull and self._call("pull", self._has_image, image):
            return False
        _check_registry_resolves(repository)
        self._call("pull", self._pull, repository, tag)
        return True

    def _pull(self, repository: str, tag: str) -> None:
        # The engine answers 200 and then streams; a failure mid-stream arrives as a
        # structured `error` entry, which is retryable: the request itself was fine.
        for event in self.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise TransientDockerFailure("pull", FailureKind.TRANSIENT,
                                    f"pull of {repository}:{tag} broke off: {event.get('error')}")

    def _has_image(self, image: str) -> bool:
        try:
            self.api.inspect_image(image)
        except docker.errors.APIError as exc:
            if is_not_found(exc):
                return False
            raise
        return True

    # -- create --------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> str:
        """Create the attempt's container, or adopt the one a redelivery already made."""
        try:
            container_id = self._call("create", self._create, spec)
        except DockerFailure as failure:
            if failure.kind is not FailureKind.CONFLICT:
                raise
            container_id = self._adopt(spec)
        self._call("create", self.api.put_archive, container_id, "/", _contract_archive(spec.payload))
        self.verify_limits(container_id, spec)
        return container_id

    def _create(self, spec: ContainerSpec) -> str:
        host_config = self.api.create_host_config(
            mem_limit=spec.memory_bytes,
            memswap_limit=spec.memory_bytes,  # no swap: the limit is the limit
            nano_cpus=int(spec.cpus * 1e9),
            pids_limit=PIDS_LIMIT,
            network_mode="none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            log_config=LogConfig(
                type=LogConfig.types.JSON,
                # Two files: after a rotation the previous file still holds the output
                # before it, so the last `output_limit_bytes` are always there to read.
                config={"max-size": str(spec.output_limit_bytes), "max-file": "2"},
            ),
        )
        response = self.api.create_container(
            spec.image, command=spec.command, name=spec.name, user=spec.user or "",
            environment=spec.env, labels=spec.labels, working_dir=TASK_DIR,
            host_config=host_config,
        )
        return response["Id"]

    def _adopt(self, spec: ContainerSpec) -> str:
        existing = self._call("create", self.api.inspect_container, spec.name)
        labels = existing["Config"]["Labels"] or {}
        if labels.get(LABEL_JOB) != spec.labels[LABEL_JOB] or labels.get(LABEL_ATTEMPT) != spec.labels[LABEL_ATTEMPT]:
            raise DockerFailure("create", FailureKind.PERMANENT,
                                f"a container named {spec.name} exists but belongs to another job")
        log.info("adopting existing container %s for %s", existing["Id"][:12], spec.name)
        return existing["Id"]

    def verify_limits(self, container_id: str, spec: ContainerSpec) -> None:
        """Fail permanently if the engine silently dropped a requested limit."""
        applied = self._call("create", self.api.inspect_container, container_id)["HostConfig"]
        wanted = {
            "Memory": spec.memory_bytes,
            "MemorySwap": spec.memory_bytes,
            "NanoCpus": int(spec.cpus * 1e9),
            "PidsLimit": PIDS_LIMIT,
        }
        missing = [f"{key}={value} (engine has {applied.get(key)})"
                   for key, value in wanted.items() if applied.get(key) != value]
        if missing:
            raise DockerFailure("create", FailureKind.PERMANENT,
                                "the Docker engine did not apply the requested limits: " + ", ".join(missing))

    # -- start, wait ---------------------------------------------------------

    def state(self, container_id: str) -> dict[str, Any] | None:
        """The container's State, or None if it no longer exists."""
        try:
            return self._call("inspect", self.api.inspect_container, container_id)["State"]
        except DockerFailure as failure:
            if is_not_found(failure.__cause__):
                return None
            raise

    def start(self, container_id: str) -> None:
        """Start the container (a no-op on the engine if it is already running)."""
        self._call("start", self.api.start, container_id)

    def wait(self, container_id: str, timeout_seconds: float) -> int | None:
        """The exit code, or None if the container was still running after `timeout_seconds`."""
        deadline = time.monotonic() + timeout_seconds
        try:
            return self._call("wait", self.api.wait, container_id, timeout=max(timeout_seconds, 0.01))["StatusCode"]
        except TransientDockerFailure:
            # A read timeout on the wait is the job's timeout, not the engine's fault.
            if time.monotonic() >= deadline:
                return None
            raise

    def kill(self, container_id: str) -> None:
        """SIGKILL the container; a container that already stopped is fine."""
        log.info("killing container %s", container_id)
        try:
            self._call("kill", self.api.kill, container_id)
        except DockerFailure as failure:
            if failure.kind is not FailureKind.CONFLICT and not is_not_found(failure.__cause__):
                raise

    def collect(self, container_id: str, *, output_limit_bytes: int, result_limit_bytes: int) -> ExitReport:
        """Read the exited container's exit code, OOM flag, output (last bytes) and result file."""
        state = self._call("wait", self.api.inspect_container, container_id)["State"]
        raw = self._call("wait", self.api.logs, container_id, stdout=True, stderr=True)
        truncated = len(raw) > output_limit_bytes
        output = raw[-output_limit_bytes:].decode("utf-8", "replace")
        return ExitReport(
            exit_code=state["ExitCode"],
            oom_killed=bool(state.get("OOMKilled")),
            output=output,
            output_truncated=truncated,
            result=self._read_result(container_id, result_limit_bytes),
            finished_at=_timestamp(state.get("FinishedAt")),
        )

    def _read_result(self, container_id: str, limit_bytes: int) -> str | None:
        try:
            stream, stat = self._call("wait", self.api.get_archive, container_id, RESULT_PATH)
        except DockerFailure as failure:
            if is_not_found(failure.__cause__):
                return None
            raise
        if stat.get("size", 0) > limit_bytes:
            return None
        archive = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
        member = archive.next()
        if member is None or not member.isfile():
            return None
        return archive.extractfile(member).read(limit_bytes).decode("utf-8", "replace")

    # -- reap ----------------------------------------------------------------

    def remove(self, container_id: str) -> bool:
        """Force-remove the container; False if it was already gone or being removed."""
        log.info("removing container %s", container_id)
        try:
            self._call("reap", self.api.remove_container, container_id, force=True, v=True)
        except DockerFailure as failure:
            if failure.kind is FailureKind.CONFLICT or is_not_found(failure.__cause__):
                return False
            raise
        return True

    def managed_containers(self, installation: str) -> list[dict[str, Any]]:
        """Every container on this engine that this installation's jobs made."""
        return self._call("list", self.api.containers, all=True,
                          filters={"label": [LABEL_JOB, f"{LABEL_INSTALLATION}={installation}"]})


def _timestamp(rfc3339: str | None) -> float | None:
    """The engine's RFC 3339 time (nanoseconds, `Z`) as a Unix time; None if unset."""
    if not rfc3339 or rfc3339.startswith("0001-"):
        return None
    whole, _, fraction = rfc3339.rstrip("Z").partition(".")
    stamp = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp()
    return stamp + float(f"0.{fraction[:6] or 0}")


def _split_reference(image: str) -> tuple[str, str]:
    """Split `repo[:tag]` into repository and tag (default `latest`); digests stay whole."""
    if "@" in image:
        repository, digest = image.split("@", 1)
        return repository, digest
    repository, tag = docker.utils.parse_repository_tag(image)
    return repository, tag or "latest"


def _check_registry_resolves(repository: str) -> None:
    """An unknown registry is permanent: the engine would report it as a retryable 500."""
    try:
        registry, _ = docker.auth.resolve_repository_name(repository)
    except docker.errors.InvalidRepository as exc:
        raise DockerFailure("pull", FailureKind.PERMANENT, f"malformed image name: {exc}") from exc
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    if registry == docker.auth.INDEX_NAME:
        host = "registry-1.docker.io"
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise DockerFailure("pull", FailureKind.PERMANENT,
                            f"cannot pull {repository}: registry {registry} is unknown (its name does not resolve)") from exc


def _contract_archive(payload: str) -> bytes:
    """A tar holding the job's contract folder: the payload file and a writable TASK_DIR."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in (CONTRACT_DIR, TASK_DIR):
            folder = tarfile.TarInfo(path.lstrip("/"))
            folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o1777, time.time()
            archive.addfile(folder)
        data = payload.encode()
        payload_file = tarfile.TarInfo(PAYLOAD_PATH.lstrip("/"))
        payload_file.size, payload_file.mode, payload_file.mtime = len(data), 0o444, time.time()
        archive.addfile(payload_file, io.BytesIO(data))
    return buffer.getvalue()


def _describe(step: str, exc: BaseException) -> str:
    """Words for a user: the step, the status code if any, and the engine's explanation."""
    if isinstance(exc, docker.errors.APIError):
        explanation = exc.explanation or str(exc)
        code = f" ({exc.status_code})" if exc.status_code else ""
        return f"{step} failed{code}: {explanation}"
    return f"{step} failed: {type(exc).__name__}: {exc}"
