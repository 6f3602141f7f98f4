"""The one boundary around Docker: every engine call is made, timed and classified (`calls.EngineCalls`).

`DockerEngine` is the engine's whole surface, in parts as docker-py's own client is: images
(`images.ImageCalls`), create (`create.CreateCalls`), and here the rest: start, wait, collect, kill,
remove, and listing. The surface stays small.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from longshore.engine.calls import path_stat
from longshore.engine.container import LABEL_INSTALLATION, LABEL_JOB
from longshore.engine.contract import PROGRESS_LIMIT_BYTES, PROGRESS_PATH, RESULT_PATH, inside, refuse_result, \
    result_from_archive
from longshore.engine.contract_folders import go_stat, read_file
from longshore.engine.create import CreateCalls
from longshore.errors import DockerFailure, FailureKind

log = logging.getLogger(__name__)

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


class DockerEngine(CreateCalls):
    """The engine's surface: identity and events, images and create (`CreateCalls`, on `ImageCalls`), and here
    start, wait, collect, kill, remove and listing; every call through `EngineCalls._call`."""

    def engine_id(self) -> str:
        """The engine's own id (stable across restarts of it): what a worker's identity is tied to."""
        info = self._call("info", lambda: self._api.info())
        return "".join(ch for ch in info["ID"] if ch.isalnum()).lower()

    def container_events(self, installation: str) -> Any:
        """A stream of this installation's starts, exits and OOM kills (decoded dicts); `.close()` it to stop.
        Only those: each event is read and decoded here (a removal's `destroy` follows every `die`)."""
        return self._call("events", lambda: self._api.events(decode=True, filters={
            "type": "container", "label": f"{LABEL_INSTALLATION}={installation}", "event": ["start", "die", "oom"]}))

    def ping(self) -> bool:
        """True when the engine answers."""
        try:
            return bool(self._call("ping", lambda: self._api.ping()))
        except DockerFailure:
            return False

    # -- start, wait ---------------------------------------------------------

    def state(self, container_id: str) -> dict[str, Any] | None:
        """The container's State, or None if it no longer exists."""
        details = self.inspect(container_id)
        return details["State"] if details is not None else None

    def inspect(self, container_id: str) -> dict[str, Any] | None:
        """What the engine says of the container (its State, Config with Labels, HostConfig), or None if it
        no longer exists."""
        found, details = self._answer("inspect", self._api.inspect_container, container_id)
        return details if found else None

    def start(self, container_id: str) -> bool:
        """Start the container (a no-op on the engine if it is already running); False if it does not exist."""
        return self._answer("start", self._api.start, container_id)[0]

    def remove_unstarted(self, container_id: str) -> bool:
        """Remove a container that never ran, by its id; never forced: one that runs now is left (False), as
        is one already gone. Its contract folder stays (a container made again from the same spec uses it)."""
        return self._answer("start", self._api.remove_container, container_id, v=True,
                            absent=(FailureKind.CONFLICT, FailureKind.NOT_FOUND))[0]

    def clear_endpoint(self, name: str) -> None:
        """Drop the network endpoint a start left under container name `name` with no container: an engine
        stopped in the middle of a start keeps it (removing the container does not), and refuses every later
        start of a container of that name (403) until it is forced out of the network."""
        self._answer("start", self._api.disconnect_container_from_network, name, "none", force=True,
                     absent=(FailureKind.NOT_FOUND,))

    def kill(self, container_id: str) -> None:
        """SIGKILL the container; a container that already stopped or is gone is fine."""
        log.info("killing container %s", container_id)
        self._answer("kill", self._api.kill, container_id, absent=(FailureKind.CONFLICT, FailureKind.NOT_FOUND))

    def collect(self, container_id: str, *, output_limit_bytes: int, result_limit_bytes: int,
                inspected: dict[str, Any] | None = None) -> ExitReport:
        """Read the exited container's exit code, OOM flag, output (its last bytes, as bytes) and result file.
        `inspected`: the engine's answer of `inspect` after it exited (it no longer changes), to save one."""
        state = (inspected or {}).get("State") or {}
        if state.get("Running") or state.get("Status") not in ("exited", "dead"):
            inspected = self._call("wait", self._api.inspect_container, container_id)
            state = inspected["State"]
        raw = self._call("wait", self._output, container_id, tty=bool(inspected["Config"].get("Tty")))
        result, result_error = self._read_result(container_id, result_limit_bytes, inspected["Config"]["Labels"])
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

    def _output(self, container_id: str, *, tty: bool) -> bytes:
        """The container's whole output, both streams, as docker-py's `logs` reads it, without the inspect
        `logs` makes first to ask whether the container has a TTY (the caller's inspect said): one engine
        call fewer per job. Errors are docker-py's, raised from the status."""
        api = self._api
        answer = api._get(api._url("/containers/{0}/logs", container_id),
                          params={"stderr": 1, "stdout": 1, "timestamps": 0, "follow": 0, "tail": "all"})
        return api._get_result_tty(False, answer, tty)

    def _read_result(self, container_id: str, limit_bytes: int,
                     labels: dict[str, str] | None) -> tuple[bytes | None, str | None]:
        """The result file's bytes, or why it was refused; nothing is read unless it is a regular
        file within the limit."""
        found = self._contract_file("wait", container_id, labels, RESULT_PATH, limit_bytes,
                                    wanted=lambda stat: int(stat.get("size", 0)) > 0)  # empty: nothing to fetch
        if found is None:
            return None, None
        stat, data = found
        if int(stat.get("size", 0)) == 0 and not int(stat.get("mode", 0)) & (1 << 31):
            return None, None  # the empty file made for it: the job wrote no result
        refusal = refuse_result(stat, limit_bytes)
        return (None, refusal) if refusal else (data, None)

    def read_progress(self, container_id: str, labels: dict[str, str] | None,
                      seen: str | None) -> tuple[str, bytes | None] | None:
        """The progress file's (modification time, bytes) if it changed since `seen` (bytes None when it is
        not a regular file or is over PROGRESS_LIMIT_BYTES); None if unchanged or gone. Its content is read
        only when it changed. `labels`: the container's."""
        def changed(stat: dict[str, Any]) -> str:
            return f"{stat.get('mtime')}/{stat.get('size')}"

        found = self._contract_file("progress", container_id, labels, PROGRESS_PATH, PROGRESS_LIMIT_BYTES,
                                    wanted=lambda stat: changed(stat) != seen)
        if found is None or changed(found[0]) == seen:
            return None
        stat, data = found
        return changed(stat), None if refuse_result(stat, PROGRESS_LIMIT_BYTES) else data

    def _contract_file(self, step: str, name: str, labels: dict[str, str] | None, path: str, limit_bytes: int,
                       wanted: Callable[[dict[str, Any]], bool]) -> tuple[dict[str, Any], bytes | None] | None:
        """A file of the container's contract folder a job may write: its stat (as the engine's archive API
        gives it) and its bytes (None unless a regular file within the limit, and `wanted` by its stat);
        None when it does not exist. From its shared folder if its labels say it binds one (and this process
        sees it), else through the engine (a stat, then the content only if wanted)."""
        folder = self._contract_folder(name, labels)
        if folder is not None:
            found = read_file(folder / inside(path), limit_bytes)
            return None if found is None else (go_stat(found[0]), found[1])
        found, stat = self._answer(step, path_stat, self._api, name, path)
        if not found:
            return None
        if refuse_result(stat, limit_bytes) or not wanted(stat):
            return stat, None
        stream, _ = self._call(step, self._api.get_archive, name, path)
        return stat, result_from_archive(stream, limit_bytes)

    # -- reap, list ----------------------------------------------------------

    def remove(self, container_id: str) -> bool:
        """Force-remove the container; False if it was already gone or being removed."""
        log.info("removing container %s", container_id)
        removed = self._answer("reap", self._api.remove_container, container_id, force=True, v=True,
                               absent=(FailureKind.CONFLICT, FailureKind.NOT_FOUND))[0]
        contracts = self._contracts()
        if contracts is not None:
            contracts.remove(container_id)  # by name: its folder (one removed by id waits for a sweep)
        return removed

    def remove_leftover_contracts(self, *, grace_seconds: float) -> int:
        """Remove the contract folders older than `grace_seconds` whose container is gone; how many."""
        contracts = self._contracts()
        if contracts is None:
            return 0
        removed, older_than = 0, time.time() - grace_seconds
        for name in contracts.names(older_than=older_than):
            if self.state(name) is None:
                contracts.remove(name, older_than=older_than)  # not a fresh one a create is making now
                removed += 1
        return removed

    def managed_containers(self, installation: str) -> list[dict[str, Any]]:
        """Every container on this engine that this installation's jobs made."""
        return self._call("list", self._api.containers, all=True,
                          filters={"label": [LABEL_JOB, f"{LABEL_INSTALLATION}={installation}"]})

    def orphaned_volumes(self, installation: str) -> list[dict[str, Any]]:
        """This installation's contract volumes that no container uses (their container was removed
        without its volumes, e.g. by hand)."""
        found = self._call("list", self._api.volumes,
                           filters={"label": f"{LABEL_INSTALLATION}={installation}", "dangling": True})
        return (found or {}).get("Volumes") or []

    def remove_volume(self, name: str) -> bool:
        """Remove a volume; False if it is gone or in use again."""
        return self._answer("reap", self._api.remove_volume, name,
                            absent=(FailureKind.CONFLICT, FailureKind.NOT_FOUND))[0]



def timestamp(rfc3339: str | None) -> float | None:
    """The engine's RFC 3339 time (nanoseconds, `Z`) as a Unix time; None if unset."""
    if not rfc3339 or rfc3339.startswith("0001-"):
        return None
    whole, _, fraction = rfc3339.rstrip("Z").partition(".")
    stamp = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp()
    return stamp + float(f"0.{fraction[:6] or 0}")


