"""Create: the attempt's container in its sandbox, its contract delivered, every field read back."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from docker.types import Mount

from longshore.engine.calls import path_stat
from longshore.engine.container import LABEL_INSTALLATION, LABEL_JOB, ContainerSpec, belongs_to, container_labels, \
    contract_source, host_config, shared_contract, unapplied_limits
from longshore.engine.contract import CODE_DIR, CONTRACT_DIR, TASK_DIR, contract_archive
from longshore.engine.contract_folders import SharedContracts
from longshore.engine.images import ImageCalls
from longshore.errors import DockerFailure, FailureKind, TransientDockerFailure

log = logging.getLogger(__name__)


class CreateCalls(ImageCalls):
    """Creating (or adopting) an attempt's container (pulling its image again if it went since its pull)."""

    def create(self, spec: ContainerSpec, *, on_progress: Callable[[], None] | None = None) -> str:
        """Create the attempt's container (or adopt the one a redelivery made), deliver its payload,
        and check that the engine applied every field of the sandbox. `on_progress`: called every few
        seconds while it pulls the image again (one removed since its pull step)."""
        self._check_seccomp()
        shared = self._shared_contracts(spec)
        source = None
        if shared is not None:
            try:
                source = str(_write_contract(shared, spec))
            except OSError as exc:  # the directory went away or became unwritable: copy, as without one
                log.warning("job contracts are copied into each container (slower): the worker cannot make "
                            "folders in %s: %s", self._contract_root, exc)
                self._contracts_proven, shared = False, None
        try:
            container_id = self._create_pulling_if_gone(spec, source, shared, on_progress)
        except DockerFailure as failure:
            if failure.kind is FailureKind.CONFLICT:
                container_id, adopted_source = self._adopt(spec)
                if source is not None and adopted_source != source:
                    shared.remove(spec.name)  # made by a process that copied its contract in (or shared another)
                source = adopted_source  # whatever this process would do: as the container was made
            else:
                if shared is not None and failure.kind is not FailureKind.TRANSIENT:
                    # refused: no container has it (a transient failure may have made one, which needs it)
                    shared.remove(spec.name)
                explained = self._explain_create_failure(spec, failure)
                if explained is failure:
                    raise
                raise explained from failure
        if source is None:  # copied in: each copy is an extraction by the engine
            if spec.code_files is not None:
                self._call("create", self._api.put_archive, container_id, CONTRACT_DIR, spec.code_files)
            self._call("create", self._api.put_archive, container_id, CONTRACT_DIR,
                       contract_archive(spec.payload, spec.sandbox.user, config=spec.config))
        missing = unapplied_limits(self._call("create", self._api.inspect_container, container_id), spec, source)
        if missing:
            raise DockerFailure("create", FailureKind.PERMANENT,
                                "the Docker engine did not apply the sandbox: " + ", ".join(missing))
        return container_id

    def _check_seccomp(self) -> None:
        """The engine confines containers with a seccomp profile (its default one, as we never set another);
        its security options are asked once per process."""
        options = self._security()
        if not any(option.startswith("name=seccomp") for option in options):
            raise DockerFailure("create", FailureKind.PERMANENT,
                                "the Docker engine runs containers without seccomp (its SecurityOptions: "
                                f"{', '.join(options) or 'none'}); Longshore will not run jobs there")

    def _security(self) -> list[str]:
        """The engine's SecurityOptions, asked once per process (a failed ask is asked again next time)."""
        if self._security_options is None:
            self._security_options = self._call("create", lambda: self._api.info()).get("SecurityOptions") or []
        return self._security_options

    def _explain_create_failure(self, spec: ContainerSpec, failure: DockerFailure) -> DockerFailure:
        """A refused create, in words: a stack runtime the engine lacks is named, and permanent."""
        if failure.kind is FailureKind.TRANSIENT:
            return failure
        try:
            runtimes = sorted(self._call("create", lambda: self._api.info()).get("Runtimes") or {})
        except DockerFailure:
            return failure
        if spec.sandbox.runtime not in runtimes:
            return DockerFailure("create", FailureKind.PERMANENT,
                                 f"its stack runs jobs with the OCI runtime {spec.sandbox.runtime!r}, which this "
                                 f"Docker engine does not have (it has: {', '.join(runtimes)})")
        return failure

    def _create_pulling_if_gone(self, spec: ContainerSpec, source: str | None, shared: SharedContracts | None,
                                on_progress: Callable[[], None] | None) -> str:
        try:
            return self._call("create", self._create, spec, source)
        except DockerFailure as failure:
            if failure.kind is not FailureKind.NOT_FOUND or not self.image_was_gone(spec.image, on_progress):
                raise
        if shared is not None:  # a long pull may have outlasted the sweep's grace for a folder with no container
            _write_contract(shared, spec)
        return self._call("create", self._create, spec, source)  # its image pulled again: once more

    def _create(self, spec: ContainerSpec, source: str | None) -> str:
        response = self._api.create_container(
            spec.image, command=spec.command, name=spec.name, user=spec.sandbox.user,
            environment=spec.env, labels=container_labels(spec, source),
            working_dir=CODE_DIR if spec.code_files is not None else TASK_DIR,
            host_config=self._api.create_host_config(**host_config(spec, source)),
        )
        return response["Id"]

    def _contracts(self) -> SharedContracts | None:
        """This engine's contract folders if a shared directory is configured (proved or not)."""
        if self._contract_root is not None and self._contracts_of_engine is None:
            self._contracts_of_engine = SharedContracts(self._contract_root, self.engine_id())
        return self._contracts_of_engine

    def _contract_folder(self, name: str, labels: dict[str, str] | None) -> Path | None:
        """The container's contract folder, when its labels say it binds one and this process sees it."""
        contracts = self._contracts() if shared_contract(labels) else None
        folder = contracts.folder(name) if contracts is not None else None
        return folder if folder is not None and folder.is_dir() else None

    def _shared_contracts(self, spec: ContainerSpec) -> SharedContracts | None:
        """This engine's contract folders when the worker shares a directory with it (proved once per engine,
        with the spec's image, present on it); None: contracts are copied into each container."""
        shared = self._contracts()
        if shared is None or self._contracts_proven is False:
            return None
        if self._contracts_proven is None:
            why_not = self._unshareable() or (None if shared.proven() else self._probe(shared, spec))
            if why_not is not None:
                log.warning("job contracts are copied into each container (slower): %s", why_not)
            self._contracts_proven = why_not is None
        return shared if self._contracts_proven else None

    def _unshareable(self) -> str | None:
        """Why this engine must never get a shared folder, whatever an earlier probe proved; asked each process."""
        options = self._security()
        if any(option.startswith(("name=userns", "name=rootless")) for option in options):
            return "the Docker engine maps user ids (userns-remap or rootless): the job's files would not be its own"
        if any(option.startswith("name=selinux") for option in options):
            return "the Docker engine enforces SELinux labels, which a folder mounted this way would not carry"
        return None

    def _probe(self, shared: SharedContracts, spec: ContainerSpec) -> str | None:
        """Why the engine cannot share the contract directory, or None when it proved it does."""

        def sees(folder, token: str) -> bool:
            # Labelled as the installation's: a janitor removes it if this process dies before it does.
            labels = {LABEL_INSTALLATION: spec.labels[LABEL_INSTALLATION], LABEL_JOB: f"probe-{token}"}
            probe = self._call("create", self._api.create_container, spec.image, command=["true"], labels=labels,
                               host_config=self._api.create_host_config(mounts=[
                                   Mount(target=CONTRACT_DIR, source=str(folder), type="bind", read_only=True)],
                                   network_mode="none"))["Id"]
            try:
                found, answer = self._answer("create", path_stat, self._api, probe, f"{CONTRACT_DIR}/{token}")
                return found and int(answer.get("size", -1)) == len(token)
            finally:
                self._answer("create", self._api.remove_container, probe, force=True, v=True)

        try:
            return shared.probe(sees, user="65534:65534")
        except DockerFailure as failure:
            return f"the Docker engine could not mount {self._contract_root}: {failure}"

    def _adopt(self, spec: ContainerSpec) -> tuple[str, str | None]:
        """The existing container of the spec's attempt (a redelivered create), and its contract's folder."""
        found, existing = self._answer("create", self._api.inspect_container, spec.name)
        if not found:
            # The name is held by a create of the same container still under way (the engine reserves the
            # name before the container exists) or refused since (it frees the name), or a reap took it:
            # the step tries again (fenced, as every retry), and adopts it or makes it.
            raise TransientDockerFailure("create", FailureKind.TRANSIENT,
                                         f"a container named {spec.name} was in the way and is not there: "
                                         "creating it again")
        if not belongs_to(existing["Config"]["Labels"], spec):
            raise DockerFailure("create", FailureKind.PERMANENT,
                                f"a container named {spec.name} exists but belongs to another job")
        log.info("adopting existing container %s for %s", existing["Id"][:12], spec.name)
        return existing["Id"], contract_source(existing)


def _write_contract(shared: SharedContracts, spec: ContainerSpec) -> Path:
    """The container's contract folder, written (or found complete) in this engine's shared directory."""
    return shared.write(spec.name, payload=spec.payload, user=spec.sandbox.user, config=spec.config,
                        code_files=spec.code_files)
