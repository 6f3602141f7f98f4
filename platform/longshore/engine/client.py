"""The one boundary around Docker: every engine call is made, timed and classified here.

`DockerEngine._call` times each call, reports it to a hook (metrics), and turns any
failure into a `DockerFailure` whose kind `classify` decided. The surface stays
small: pull, create, start, wait, collect, kill, remove, and listing.
"""

from __future__ import annotations

import base64
import json
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
from longshore.engine.container import LABEL_INSTALLATION, LABEL_JOB, ContainerSpec, belongs_to, container_labels, \
    host_config, unapplied_limits
from longshore.engine.contract import RESULT_PATH, TASK_DIR, contract_archive, refuse_result, result_from_archive
from longshore.errors import DockerFailure, FailureKind, TransientDockerFailure

log = logging.getLogger(__name__)

#: Called after every engine call with (call, outcome, seconds); outcome is "ok" or a FailureKind value.
CallHook = Callable[[str, str, float], None]


@dataclass(frozen=True, kw_only=True)
class ExitReport:
    """What a finished container left behind."""

    exit_code: int
    oom_killed: bool
    output: bytes
    output_truncated: bool
    result: bytes | None
    result_error: str | None  #: why the result file was refused (not a regular file, too big)
    started_at: float | None  #: when the container started, as the engine recorded it
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

    def _call(self, step: str, fn: Callable[..., Any], *args: Any, expected: tuple[FailureKind, ...] = (),
              **kwargs: Any) -> Any:
        """Make one engine call, timed and classified. A failure of an `expected` kind (a 404 where
        "gone" is an answer) is reported as "ok" and still raised, for the caller to read."""
        started = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except DockerFailure as failure:
            if not getattr(failure, "reported", False):  # an inner call (connect) reported it already
                self._report(step, failure, expected, started)
            failure.reported = True
            raise
        except Exception as exc:  # every engine failure leaves here classified
            failure = classify.failure(step, exc)
            self._report(step, failure, expected, started)
            failure.reported = True
            raise failure from exc
        self._on_call(step, "ok", time.perf_counter() - started)
        return result

    def _report(self, step: str, failure: DockerFailure, expected: tuple[FailureKind, ...], started: float) -> None:
        outcome = "ok" if failure.kind in expected else failure.kind.value
        self._on_call(step, outcome, time.perf_counter() - started)

    def engine_id(self) -> str:
        """The engine's own id (stable across restarts of it): what a worker's identity is tied to."""
        info = self._call("info", lambda: self._api.info())
        return "".join(ch for ch in info["ID"] if ch.isalnum()).lower()

    def container_events(self, installation: str) -> Any:
        """A stream of this installation's container events (decoded dicts); `.close()` it to stop."""
        return self._call("events", lambda: self._api.events(decode=True, filters={
            "type": "container", "label": f"{LABEL_INSTALLATION}={installation}",
            "event": ["start", "die", "destroy", "oom"]}))

    def ping(self) -> bool:
        """True when the engine answers."""
        try:
            return bool(self._call("ping", lambda: self._api.ping()))
        except DockerFailure:
            return False

    # -- pull ----------------------------------------------------------------

    def ensure_image(self, image: str, *, always_pull: bool, on_progress: Callable[[], None] | None = None) -> bool:
        """Make `image` present on the engine; return True if it was pulled. A long pull calls
        `on_progress` every few seconds, to show it is under way."""
        repository, tag = _split_reference(image)
        if not always_pull and self._has_image(image):
            return False
        _check_registry_resolves(repository)
        self._call("pull", _pull, self._api, repository, tag, on_progress or (lambda: None))
        return True

    def _has_image(self, image: str) -> bool:
        try:
            self._call("pull", self._api.inspect_image, image, expected=(FailureKind.NOT_FOUND,))
        except DockerFailure as failure:
            if failure.kind is FailureKind.NOT_FOUND:
                return False
            raise
        return True

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
            environment=spec.env, labels=container_labels(spec), working_dir=TASK_DIR,
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
            return self._call("inspect", self._api.inspect_container, container_id,
                              expected=(FailureKind.NOT_FOUND,))["State"]
        except DockerFailure as failure:
            if failure.kind is FailureKind.NOT_FOUND:
                return None
            raise

    def start(self, container_id: str) -> None:
        """Start the container (a no-op on the engine if it is already running)."""
        self._call("start", self._api.start, container_id)

    def kill(self, container_id: str) -> None:
        """SIGKILL the container; a container that already stopped or is gone is fine."""
        log.info("killing container %s", container_id)
        try:
            self._call("kill", self._api.kill, container_id, expected=(FailureKind.CONFLICT, FailureKind.NOT_FOUND))
        except DockerFailure as failure:
            if failure.kind not in (FailureKind.CONFLICT, FailureKind.NOT_FOUND):
                raise

    def collect(self, container_id: str, *, output_limit_bytes: int, result_limit_bytes: int) -> ExitReport:
        """Read the exited container's exit code, OOM flag, output (its last bytes, as bytes) and result file."""
        state = self._call("wait", self._api.inspect_container, container_id)["State"]
        raw = self._call("wait", self._api.logs, container_id, stdout=True, stderr=True)
        result, result_error = self._read_result(container_id, result_limit_bytes)
        return ExitReport(
            exit_code=state["ExitCode"],
            oom_killed=bool(state.get("OOMKilled")),
            output=raw[-output_limit_bytes:],
            output_truncated=len(raw) > output_limit_bytes,
            result=result,
            result_error=result_error,
            started_at=timestamp(state.get("StartedAt")),
            finished_at=timestamp(state.get("FinishedAt")),
        )

    def _read_result(self, container_id: str, limit_bytes: int) -> tuple[bytes | None, str | None]:
        """The result file's bytes, or why it was refused; nothing is read unless it is a regular
        file within the limit (its stat is asked for first, without its content)."""
        try:
            stat = self._call("wait", _path_stat, self._api, container_id, RESULT_PATH,
                              expected=(FailureKind.NOT_FOUND,))
        except DockerFailure as failure:
            if failure.kind is FailureKind.NOT_FOUND:
                return None, None
            raise
        refusal = refuse_result(stat, limit_bytes)
        if refusal:
            return None, refusal
        stream, _ = self._call("wait", self._api.get_archive, container_id, RESULT_PATH)
        return result_from_archive(stream, limit_bytes), None

    # -- reap, list ----------------------------------------------------------

    def remove(self, container_id: str) -> bool:
        """Force-remove the container; False if it was already gone or being removed."""
        log.info("removing container %s", container_id)
        try:
            self._call("reap", self._api.remove_container, container_id, force=True, v=True,
                       expected=(FailureKind.CONFLICT, FailureKind.NOT_FOUND))
        except DockerFailure as failure:
            if failure.kind in (FailureKind.CONFLICT, FailureKind.NOT_FOUND):
                return False
            raise
        return True

    def managed_containers(self, installation: str) -> list[dict[str, Any]]:
        """Every container on this engine that this installation's jobs made."""
        return self._call("list", self._api.containers, all=True,
                          filters={"label": [LABEL_JOB, f"{LABEL_INSTALLATION}={installation}"]})



#: How often a long pull reports that it is under way.
PULL_PROGRESS_SECONDS = 5.0


def _pull(api: docker.APIClient, repository: str, tag: str, on_progress: Callable[[], None]) -> None:
    # The engine answers 200 and then streams; a failure mid-stream arrives as a
    # structured `error` entry, which is retryable: the request itself was fine.
    reported = time.monotonic()
    for event in api.pull(repository, tag=tag, stream=True, decode=True):
        if "error" in event:
            raise TransientDockerFailure("pull", FailureKind.TRANSIENT,
                                         f"pull of {repository}:{tag} broke off: {event.get('error')}")
        if time.monotonic() - reported >= PULL_PROGRESS_SECONDS:
            reported = time.monotonic()
            on_progress()


def _path_stat(api: docker.APIClient, container_id: str, path: str) -> dict[str, Any]:
    # HEAD .../archive answers the path's stat without its content (docker-py has no call for it).
    response = api.head(api._url("/containers/{0}/archive", container_id), params={"path": path})
    api._raise_for_status(response)
    return json.loads(base64.b64decode(response.headers["X-Docker-Container-Path-Stat"]))


def timestamp(rfc3339: str | None) -> float | None:
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
