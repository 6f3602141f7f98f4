"""Create: the attempt's container in its sandbox, its contract delivered, every field read back."""

from __future__ import annotations

import logging

from longshore.engine.calls import EngineCalls
from longshore.engine.container import ContainerSpec, belongs_to, container_labels, host_config, unapplied_limits
from longshore.engine.contract import CODE_DIR, CONTRACT_DIR, TASK_DIR, contract_archive
from longshore.errors import DockerFailure, FailureKind

log = logging.getLogger(__name__)


class CreateCalls(EngineCalls):
    """Creating (or adopting) an attempt's container."""

    def create(self, spec: ContainerSpec) -> str:
        """Create the attempt's container (or adopt the one a redelivery made), deliver its payload,
        and check that the engine applied every field of the sandbox."""
        self._check_seccomp()
        try:
            container_id = self._call("create", self._create, spec)
        except DockerFailure as failure:
            if failure.kind is FailureKind.CONFLICT:
                container_id = self._adopt(spec)
            else:
                explained = self._explain_create_failure(spec, failure)
                if explained is failure:
                    raise
                raise explained from failure
        if spec.code_files is not None:
            self._call("create", self._api.put_archive, container_id, CONTRACT_DIR, spec.code_files)
        self._call("create", self._api.put_archive, container_id, CONTRACT_DIR,
                   contract_archive(spec.payload, spec.sandbox.user, config=spec.config))
        missing = unapplied_limits(self._call("create", self._api.inspect_container, container_id), spec)
        if missing:
            raise DockerFailure("create", FailureKind.PERMANENT,
                                "the Docker engine did not apply the sandbox: " + ", ".join(missing))
        return container_id

    def _check_seccomp(self) -> None:
        """The engine confines containers with a seccomp profile (its default one, as we never set another);
        asked once per connection."""
        if self._seccomp_checked:
            return
        options = self._call("create", lambda: self._api.info()).get("SecurityOptions") or []
        if not any(option.startswith("name=seccomp") for option in options):
            raise DockerFailure("create", FailureKind.PERMANENT,
                                "the Docker engine runs containers without seccomp (its SecurityOptions: "
                                f"{', '.join(options) or 'none'}); Longshore will not run jobs there")
        self._seccomp_checked = True

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

    def _create(self, spec: ContainerSpec) -> str:
        response = self._api.create_container(
            spec.image, command=spec.command, name=spec.name, user=spec.sandbox.user,
            environment=spec.env, labels=container_labels(spec),
            working_dir=CODE_DIR if spec.code_files is not None else TASK_DIR,
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
