"""The container an attempt runs in, from the job, this worker's manifest and the installation's settings."""

from __future__ import annotations

from longshore.domain.records import Job
from longshore.domain.steps import container_name
from longshore.engine.container import LABEL_ATTEMPT, LABEL_INSTALLATION, LABEL_JOB, LABEL_TIMEOUT, LABEL_WORKER, \
    ContainerSpec, SandboxSpec
from longshore.engine.contract import contract_env, ironworker_arguments
from longshore.service.runtime import Runtime


def container_spec(rt: Runtime, job: Job, attempt: int, nodename: str) -> ContainerSpec:
    """The container an attempt runs in: the stack's sandbox (from this worker's manifest), the job's
    resources, its variables (secrets opened here, for the engine only), the contract, the labels."""
    sandbox = rt.manifest.get(job.stack).sandbox
    archive = rt.store.codes.archive_of(job.code, job.code_revision, project=job.project_id) if job.code else None
    command, code_files = job.command, None
    if archive is not None:  # an archive code: its files, its entry run with IronWorker's arguments
        code_files = rt.code_files.tar(rt.store.codes, rt.settings.archive_limits, archive[0])
        command = [*(job.command or []), *ironworker_arguments(job.id, with_config=job.config is not None)]
    return ContainerSpec(
        name=container_name(job.id, attempt),
        image=job.image,
        command=command,
        env={**job.env, **rt.sealer.open(job.sealed_secret_env),
             **contract_env(job.id, with_config=job.config is not None)},
        memory_bytes=job.memory_bytes,
        cpus=job.cpus,
        disk_bytes=job.disk_bytes,
        sandbox=SandboxSpec(runtime=sandbox.runtime, user=sandbox.user, pids=sandbox.pids, nofile=sandbox.nofile,
                            nproc=sandbox.nproc, inodes=sandbox.inodes),
        labels={
            LABEL_JOB: job.id,
            LABEL_ATTEMPT: str(attempt),
            LABEL_WORKER: nodename,
            LABEL_TIMEOUT: f"{job.timeout_seconds:g}",
            LABEL_INSTALLATION: rt.settings.installation,
        },
        payload=job.payload,
        output_limit_bytes=rt.settings.jobs.output_limit_bytes,
        config=job.config,
        code_files=code_files,
    )
