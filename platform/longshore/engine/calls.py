"""The boundary's one door: every engine call is made, timed, reported and classified here.

`EngineCalls._call` times each call, reports it to a hook (metrics), and turns any failure into a
`DockerFailure` whose kind `classify` decided (from typed errors and status codes, never text).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any, Callable

import docker

from longshore.domain.registries import RegistryAuths
from longshore.engine import classify
from longshore.engine.connection import connect
from longshore.engine.contract_folders import SharedContracts
from longshore.errors import DockerFailure, FailureKind

#: Called after every engine call with (call, outcome, seconds); outcome is "ok" or a FailureKind value.
CallHook = Callable[[str, str, float], None]


class EngineCalls:
    """A docker-py APIClient, connected on first use, behind one error classifier and one timer."""

    def __init__(self, docker_host: str | None, *, timeout_seconds: float, max_pool_size: int = 32,
                 on_call: CallHook | None = None, registry_auths: RegistryAuths | None = None,
                 tls_certs: Path | None = None, contract_root: Path | None = None):
        self._docker_host = docker_host
        self._tls_certs = tls_certs  #: verify the engine over TLS with this DOCKER_CERT_PATH (None: no TLS)
        self._registry_auths = registry_auths or RegistryAuths("this engine's settings")
        self._timeout_seconds = timeout_seconds
        self._max_pool_size = max_pool_size
        self._client: docker.APIClient | None = None
        self._connecting = threading.Lock()  #: the watcher's threads may all make their first call at once
        self._on_call = on_call or (lambda call, outcome, seconds: None)
        #: The engine's SecurityOptions, asked once per process by the first create (None: not yet).
        self._security_options: list[str] | None = None
        #: A directory shared with the engine for contract folders (`contract_folders`); None: copy contracts in.
        self._contract_root = contract_root
        self._contracts_of_engine: SharedContracts | None = None
        self._contracts_proven: bool | None = None  #: None: not asked yet in this process
        self._seen_images: dict[str, float] = {}  #: image → when the engine last had it (`ImageCalls`)

    @property
    def _api(self) -> docker.APIClient:
        """The low-level client, connected on first use (version negotiated)."""
        if self._client is None:
            with self._connecting:  # one client (and one connection pool) per process, however many threads
                if self._client is None:
                    self._client = self._call(
                        "connect", connect, self._docker_host, tls_certs=self._tls_certs,
                        timeout=self._timeout_seconds,  # the version is negotiated: this can find the engine down
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

    def _answer(self, step: str, fn: Callable[..., Any], *args: Any,
                absent: tuple[FailureKind, ...] = (FailureKind.NOT_FOUND,), **kwargs: Any) -> tuple[bool, Any]:
        """`_call` where a failure of an `absent` kind is an answer (no such container, already being
        removed): (False, None); otherwise (True, the call's result)."""
        try:
            return True, self._call(step, fn, *args, expected=absent, **kwargs)
        except DockerFailure as failure:
            if failure.kind in absent:
                return False, None
            raise

    def _report(self, step: str, failure: DockerFailure, expected: tuple[FailureKind, ...], started: float) -> None:
        outcome = "ok" if failure.kind in expected else failure.kind.value
        self._on_call(step, outcome, time.perf_counter() - started)


def path_stat(api: docker.APIClient, container_id: str, path: str) -> dict[str, Any]:
    """A path's stat in a container, as the engine's archive API answers it."""
    # HEAD .../archive answers the path's stat without its content (docker-py has no call for it).
    response = api.head(api._url("/containers/{0}/archive", container_id), params={"path": path})
    api._raise_for_status(response)
    return json.loads(base64.b64decode(response.headers["X-Docker-Container-Path-Stat"]))
