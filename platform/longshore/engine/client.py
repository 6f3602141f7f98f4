"""The one boundary around Docker: every engine call is made, timed and classified here.

`DockerEngine._call` times each call, reports it to a hook (metrics), and turns any
failure into a `DockerFailure` whose kind `classify` decided. The surface stays
small: pull, create, start, wait, collect, kill, remove, and listing.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import docker
import docker.auth
import docker.errors
import docker.utils

from longshore.engine import classify
from longshore.engine.container import LABEL_INSTALLATION, LABEL_JOB, LABEL_WORKER, ContainerSpec, belongs_to, \
    host_config, unapplied_limits
from longshore.engine.contract import RESULT_PATH, TASK_DIR, contract_archive, result_from_archive
from longshore.errors import DockerFailure, FailureKind, TransientDockerFailure

log = logging.getLogger(__name__)

#: Called after every engine call with (call, outcome, seconds); outcome is "ok" or a FailureKind value.
CallHook = Callable[[str, str, float], None]


@dataclass(frozen=True, kw_only=True)
class ExitReport:
    """What a finished container left behind."""

    exit_code: int
    oom_killed: bool
    output: str
    output_truncated: bool
    result: str | None
    finished_at: float | None  #: when the container stopped, as the engine recorded it


class DockerEngine:
    """A docker-py APIClient behind one error classifier and one timer."""

    def __init__(self, docker_host: str | None, *, timeout_seconds: float, max_pool_size: int = 32,
                 on_call: CallHook | None = None):
        self._docker_host = docker_host
        self._timeout_seconds = timeout_seconds
        self._max_pool_size = max_pool_size
        self._client: docker.APIClient | None = None
        self._on_call = on_call or (lambda call, outcome, seconds: None)

    @property
    def _api(self) -> docker.APIClient:
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
        except DockerFailure as failure:
            if not getattr(failure, "reported", False):  # an inner call (connect) reported it already
                self._on_call(step, failure.kind.value, time.perf_counter() - started)
            failure.reported = True
            raise
        except Exception as exc:  # every engine failure leaves here classified
            failure = classify.failure(step, exc)
            self._on_call(step, failure.kind.value, time.perf_counter() - started)
            failure.reported = True
            raise failure from exc
        self._on_call(step, "ok", time.perf_counter() - started)
        return result

    def ping(self) -> bool:
        """True when the engine answers."""
        try:
            return bool(self._call("ping", lambda: self._api.ping()))
        except DockerFailure:
            return False

    # -- pull ----------------------------------------------------------------

    def ensure_image(self, image: str, *, always_pull: bool) -> bool:
        """Make `image` present on the engine; return True if it was pulled."""
        repository, tag = _split_reference(image)
        if not always_pull and self._has_image(image):
            return False
        _check_registry_resolves(repository)
        self._call("pull", self._pull, repository, tag)
        return True

    def _pull(self, repository: str, tag: str) -> None:
        # The engine answers 200 and then streams; a failure mid-stream arrives as a
        # structured `error` entry, which is retryable: the request itself was fine.
        for event in self._api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise TransientDockerFailure("pull", FailureKind.TRANSIENT,
                                             f"pull of {repository}:{tag} broke off: {event.get('error')}")

    def _has_image(self, image: str) -> bool:
        def inspect() -> bool:
            try:
                self._api.inspect_image(image)
            except docker.errors.APIError as exc:
                if classify.classify(exc) is FailureKind.NOT_FOUND:
                    return False  # an expected answer, not a failed call
                raise
            return True

        return self._call("pull", inspect)

    # -- create --------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> str:
        """Create the attempt's container (or adopt the one a redelivery made), deliver its payload,
        and check that the engine applied every limit."""
        try:
            container_id = self._call("create", self._create, spec)
        except DockerFailure as failure:
            if failure.kind is not FailureKind.CONFLICT:
                raise
            container_id = self._adopt(spec)
        self._call("create", self._api.put_archive, container_id, "/", contract_archive(spec.payload))
        applied = self._call("create", self._api.inspect_container, container_id)["HostConfig"]
        missing = unapplied_limits(applied, spec)
        if missing:
            raise DockerFailure("create", FailureKind.PERMANENT,
                                "the Docker engine did not apply the requested limits: " + ", ".join(missing))
        return container_id

    def _create(self, spec: ContainerSpec) -> str:
        response = self._api.create_container(
            spec.image, command=spec.command, name=spec.name, user=spec.user or "",
            environment=spec.env, labels=spec.labels, working_dir=TASK_DIR,
            host_config=self._api.create_host_config(**host_config(spec)),
        )
        return response["Id"]

    def _adopt(self, spec: ContainerSpec) -> str:
        existing = self._call("create", self._api.inspect_container, spec.name)
        if not belongs_to(existing["Config"]["Labels"], spec):
            raise DockerFailure("create", FailureKind.PERMANENT,
                                f"a container named {spec.name} exists but belongs to another job")
        log.info("adopting existing container %s for %s", existing["Id"][:12], spec.name)
        return existing["Id"]

    # -- start, wait ---------------------------------------------------------

    def state(self, container_id: str) -> dict[str, Any] | None:
        """The container's State, or None if it no longer exists."""
        try:
            return self._call("inspect", self._api.inspect_container, container_id)["State"]
        except DockerFailure as failure:
            if failure.kind is FailureKind.NOT_FOUND:
                return None
            raise

    def start(self, container_id: str) -> None:
        """Start the container (a no-op on the engine if it is already running)."""
        self._call("start", self._api.start, container_id)

    def wait(self, container_id: str, timeout_seconds: float) -> int | None:
        """The exit code, or None if the container was still running after `timeout_seconds`."""
        deadline = time.monotonic() + timeout_seconds
        try:
            return self._call("wait", self._api.wait, container_id, timeout=max(timeout_seconds, 0.01))["StatusCode"]
        except TransientDockerFailure:
            # A read timeout on the wait is the job's timeout, not the engine's fault.
            if time.monotonic() >= deadline:
                return None
            raise

    def kill(self, container_id: str) -> None:
        """SIGKILL the container; a container that already stopped or is gone is fine."""
        log.info("killing container %s", container_id)
        try:
            self._call("kill", self._api.kill, container_id)
        except DockerFailure as failure:
            if failure.kind not in (FailureKind.CONFLICT, FailureKind.NOT_FOUND):
                raise

    def collect(self, container_id: str, *, output_limit_bytes: int, result_limit_bytes: int) -> ExitReport:
        """Read the exited container's exit code, OOM flag, output (last bytes) and result file."""
        state = self._call("wait", self._api.inspect_container, container_id)["State"]
        raw = self._call("wait", self._api.logs, container_id, stdout=True, stderr=True)
        return ExitReport(
            exit_code=state["ExitCode"],
            oom_killed=bool(state.get("OOMKilled")),
            output=raw[-output_limit_bytes:].decode("utf-8", "replace"),
            output_truncated=len(raw) > output_limit_bytes,
            result=self._read_result(container_id, result_limit_bytes),
            finished_at=_timestamp(state.get("FinishedAt")),
        )

    def _read_result(self, container_id: str, limit_bytes: int) -> str | None:
        try:
            stream, stat = self._call("wait", self._api.get_archive, container_id, RESULT_PATH)
        except DockerFailure as failure:
            if failure.kind is FailureKind.NOT_FOUND:
                return None
            raise
        if stat.get("size", 0) > limit_bytes:
            return None
        return result_from_archive(stream, limit_bytes)

    # -- reap, list ----------------------------------------------------------

    def remove(self, container_id: str) -> bool:
        """Force-remove the container; False if it was already gone or being removed."""
        log.info("removing container %s", container_id)
        try:
            self._call("reap", self._api.remove_container, container_id, force=True, v=True)
        except DockerFailure as failure:
            if failure.kind in (FailureKind.CONFLICT, FailureKind.NOT_FOUND):
                return False
            raise
        return True

    def managed_containers(self, installation: str) -> list[dict[str, Any]]:
        """Every container on this engine that this installation's jobs made."""
        return self._call("list", self._api.containers, all=True,
                          filters={"label": [LABEL_JOB, f"{LABEL_INSTALLATION}={installation}"]})

    def running_containers_of(self, worker: str) -> int:
        """How many job containers worker `worker` has running on this engine now."""
        return len(self._call("list", self._api.containers,
                              filters={"label": f"{LABEL_WORKER}={worker}", "status": "running"}))


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
