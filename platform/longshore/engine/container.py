"""One attempt's container: its spec, its labels, the sandbox the engine is asked for, and the read-back.

The sandbox, and why each part is there:
- a read-only root filesystem, so the image's writable layer (unbounded on the engine's disk) takes nothing;
- TASK_DIR and /tmp as tmpfs mounts of the job's disk limit (and inode limit): writes past them fail with
  ENOSPC. Their pages live in memory, so the container's memory limit is the job's memory plus its disk;
- the contract folder (/longshore: payload in, result out) as an anonymous volume, or as a bind of the
  attempt's folder on a directory the worker shares with its engine (`contract_folders`), owned by root
  and read-only to the job, except the result and progress files, made for the job's user and bounded
  by RLIMIT_FSIZE;
- ulimits (open files, processes, no core dumps, file size), an init that reaps zombies and forwards
  signals, a numeric non-root user, no network, no capabilities, no new privileges, the engine's default
  seccomp profile (verified on the engine), and the stack's OCI runtime (gVisor's `runsc` or `runc`).
Every field is read back after create: an engine that dropped one fails the job rather than run it loose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from docker.types import LogConfig, Mount, Ulimit

from longshore.engine.contract import CONTRACT_DIR, TASK_DIR

LABEL_JOB = "io.longshore.job"
LABEL_ATTEMPT = "io.longshore.attempt"
LABEL_WORKER = "io.longshore.worker"
#: The job's timeout in seconds: its deadline is the container's start plus this, enforced by the
#: worker's watcher from the engine alone (it needs neither the store nor the broker to kill on time).
LABEL_TIMEOUT = "io.longshore.timeout"
#: Which installation (job store) made the container: a janitor touches only its own.
LABEL_INSTALLATION = "io.longshore.installation"
#: "folder" when the container's contract is a bind of its folder on a directory the worker shares with the
#: engine: whoever reads its result or progress decides by this, never by whether a folder of its name exists.
LABEL_CONTRACT = "io.longshore.contract"
#: Scratch directories of every job: its working directory and the conventional one.
SCRATCH_DIRS = (TASK_DIR, "/tmp")
#: RLIMIT_FSIZE is this much over the disk limit, so a full tmpfs answers ENOSPC before the limit kills
#: the writer with SIGXFSZ; the result file (on the engine's disk) is bounded by it.
FSIZE_SLACK_BYTES = 1 << 20
#: Under the host's memory pressure the kernel kills a job before dockerd or a worker.
OOM_SCORE_ADJ = 500
SECURITY_OPT = ["no-new-privileges"]
#: How much larger than the output limit each of a container's two log files may grow (see host_config).
LOG_FILE_FACTOR = 8


@dataclass(frozen=True, kw_only=True)
class SandboxSpec:
    """The stack's confinement of the job (from the worker's manifest)."""

    runtime: str
    user: str
    pids: int
    nofile: int
    nproc: int
    inodes: int


@dataclass(frozen=True, kw_only=True)
class ContainerSpec:
    """Everything needed to create one attempt's container."""

    name: str
    image: str
    command: list[str] | None
    env: dict[str, str]
    memory_bytes: int
    cpus: float
    disk_bytes: int
    sandbox: SandboxSpec
    labels: dict[str, str]
    payload: str
    output_limit_bytes: int
    config: str | None = None  #: the code's config (JSON text): CONFIG_FILE
    #: An archive code's files, as a tar to extract into the contract folder (under CODE_FOLDER)
    code_files: bytes | None = field(default=None, repr=False)

    @property
    def memory_limit_bytes(self) -> int:
        """The container's memory limit: the job's memory, and its files in TASK_DIR and /tmp."""
        return self.memory_bytes + self.disk_bytes

    @property
    def fsize_bytes(self) -> int:
        """The largest file the job may write."""
        return self.disk_bytes + FSIZE_SLACK_BYTES


#: Labels a job container must not inherit from its image: an image built by docker compose carries its
#: project and service, and compose would take the job for one of its own containers (and remove it).
CLEARED_IMAGE_LABELS = {"com.docker.compose.project": "", "com.docker.compose.service": "",
                        "com.docker.compose.oneoff": ""}


def container_labels(spec: ContainerSpec, contract_source: str | None = None) -> dict[str, str]:
    """The labels the container is created with: Longshore's, over cleared image labels."""
    return {**CLEARED_IMAGE_LABELS, **spec.labels, **({LABEL_CONTRACT: "folder"} if contract_source else {})}


def shared_contract(labels: dict[str, str] | None) -> bool:
    """True when the container's contract is a bind of its shared folder (see LABEL_CONTRACT)."""
    return (labels or {}).get(LABEL_CONTRACT) == "folder"


def contract_source(inspected: dict[str, Any]) -> str | None:
    """The shared folder a created container's contract binds (None: its contract was copied in), from its
    mount: a container of the release before the label binds its folder without saying so."""
    return next((m.get("Source") for m in (inspected.get("HostConfig") or {}).get("Mounts") or []
                 if m.get("Target") == CONTRACT_DIR and m.get("Type") == "bind"), None)


def tmpfs_options(spec: ContainerSpec) -> str:
    """A scratch directory's mount options: its size and inode bounds, writable by any user, no devices."""
    return f"rw,exec,nosuid,nodev,size={spec.disk_bytes},nr_inodes={spec.sandbox.inodes},mode=1777"


def ulimits(spec: ContainerSpec) -> dict[str, int]:
    """The job's resource limits, soft and hard alike (a job cannot raise them)."""
    return {"nofile": spec.sandbox.nofile, "nproc": spec.sandbox.nproc, "core": 0, "fsize": spec.fsize_bytes}


def host_config(spec: ContainerSpec, contract_source: str | None = None) -> dict[str, Any]:
    """The engine's HostConfig for the spec (see the module's docstring); `contract_source`: the attempt's
    contract folder on a directory shared with the engine (None: an anonymous volume)."""
    return dict(
        mem_limit=spec.memory_limit_bytes,
        memswap_limit=spec.memory_limit_bytes,  # no swap: the limit is the limit
        nano_cpus=int(spec.cpus * 1e9),
        pids_limit=spec.sandbox.pids,
        network_mode="none",
        cap_drop=["ALL"],
        security_opt=SECURITY_OPT,
        read_only=True,
        init=True,
        runtime=spec.sandbox.runtime,
        oom_score_adj=OOM_SCORE_ADJ,
        tmpfs={path: tmpfs_options(spec) for path in SCRATCH_DIRS},
        mounts=[contract_mount(spec, contract_source)],
        ulimits=[Ulimit(name=name, soft=value, hard=value) for name, value in ulimits(spec).items()],
        log_config=LogConfig(
            # The local driver keeps the bytes as the job wrote them (json-file turns invalid UTF-8 into U+FFFD).
            type="local",
            # Two files: after a rotation the previous file still holds the output before it. A file's size
            # counts the driver's framing too (about 33 bytes a line), so each holds LOG_FILE_FACTOR times the
            # limit: the last `output_limit_bytes` of content are there to read for lines of 5 bytes or more.
            config={"max-size": str(LOG_FILE_FACTOR * spec.output_limit_bytes), "max-file": "2",
                    "compress": "false"},
        ),
    )


def contract_mount(spec: ContainerSpec, contract_source: str | None) -> Mount:
    """The contract folder's mount: the attempt's shared folder, or an anonymous volume."""
    if contract_source is not None:
        return Mount(target=CONTRACT_DIR, source=contract_source, type="bind", propagation="rprivate")
    # no source: an anonymous volume, removed with the container (remove_container(v=True)); labelled,
    # so the janitor finds one a crash left behind
    return Mount(target=CONTRACT_DIR, source=None, type="volume",
                 labels={LABEL_INSTALLATION: spec.labels[LABEL_INSTALLATION], LABEL_JOB: spec.labels[LABEL_JOB]})


def unapplied_limits(inspected: dict[str, Any], spec: ContainerSpec, contract_source: str | None = None) -> list[str]:
    """The sandbox fields the created container (as the engine reads it back) lacks, in words; empty when
    every one held."""
    applied = inspected.get("HostConfig") or {}
    wanted = {
        "Memory": spec.memory_limit_bytes,
        "MemorySwap": spec.memory_limit_bytes,
        "NanoCpus": int(spec.cpus * 1e9),
        "PidsLimit": spec.sandbox.pids,
        "NetworkMode": "none",
        "CapDrop": ["ALL"],
        "SecurityOpt": SECURITY_OPT,
        "ReadonlyRootfs": True,
        "Init": True,
        "Runtime": spec.sandbox.runtime,
        "OomScoreAdj": OOM_SCORE_ADJ,
        "Privileged": False,
        "Tmpfs": {path: tmpfs_options(spec) for path in SCRATCH_DIRS},
    }
    missing = [f"{key}={value} (engine has {applied.get(key)})"
               for key, value in wanted.items() if applied.get(key) != value]
    held = {u.get("Name"): (u.get("Soft"), u.get("Hard")) for u in applied.get("Ulimits") or []}
    missing += [f"ulimit {name}={value} (engine has {held.get(name)})"
                for name, value in ulimits(spec).items() if held.get(name) != (value, value)]
    if applied.get("CapAdd") or applied.get("Devices") or applied.get("Binds"):
        missing.append("no added capabilities, devices or binds (engine added some)")
    wanted_mount = ([{"Type": "bind", "Source": contract_source, "Target": CONTRACT_DIR, "ReadOnly": False}]
                    if contract_source is not None else [{"Type": "volume", "Target": CONTRACT_DIR, "ReadOnly": False}])
    mounts = [{key: m.get(key, False if key == "ReadOnly" else None) for key in wanted_mount[0]}
              for m in applied.get("Mounts") or []]
    if mounts != wanted_mount:
        missing.append(f"one {wanted_mount[0]['Type']} at {CONTRACT_DIR} (engine has {applied.get('Mounts')})")
    user = (inspected.get("Config") or {}).get("User")
    if user != spec.sandbox.user:
        missing.append(f"User={spec.sandbox.user} (engine has {user!r})")
    return missing


def belongs_to(labels: dict[str, str] | None, spec: ContainerSpec) -> bool:
    """True when an existing container's labels say it is this spec's attempt."""
    labels = labels or {}
    return all(labels.get(key) == spec.labels[key] for key in (LABEL_JOB, LABEL_ATTEMPT))
