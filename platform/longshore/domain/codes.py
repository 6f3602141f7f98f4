"""Code packages (IronWorker's "codes"): a named, revisioned set of job defaults that tasks are queued by.

A code names a stack and either an image (the stack's own by default) with an optional command, or an
archive (zip) with an entry file that the stack's `entry_command` runs (`python3 hello.py` on the python
stack) with IronWorker's arguments; and the defaults of the jobs queued for it: env, config (JSON given to
the job as CONFIG_FILE), timeout, memory, cpus, priority, retries and their delay. Every upload is a new
revision; a job runs the latest revision or a pinned one. A code also carries what gates its jobs across
the installation: `max_concurrency` and whether it is paused (kept on the code, not the revision, so they
change without an upload).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from longshore.domain.archives import ArchiveLimits, check_archive
from longshore.domain.records import NewJob
from longshore.domain.spec import ESCAPED_NUL, JobLimits, build_job
from longshore.domain.stacks import StackManifest
from longshore.errors import CodeNotFound, InvalidJob

#: IronWorker's code names: letters, digits, and `_ . -`, not starting with a mark.
CODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
#: `NAME@REVISION` pins a revision.
CODE_REFERENCE = re.compile(r"(?P<name>[^@]+)(?:@(?P<revision>[1-9][0-9]{0,8}))?")
MAX_CONFIG_BYTES = 64 << 10
MAX_CONCURRENCY = 10_000
#: The job fields a code gives defaults for (the job's own value wins; env is merged, the job's winning).
DEFAULT_FIELDS = ("image", "command", "env", "timeout", "memory", "cpus", "disk", "priority", "retries",
                  "retry_delay", "webhook")
#: What an upload may name besides those defaults.
CODE_FIELDS = {"stack", "config", "max_concurrency", "archive", "entry", *DEFAULT_FIELDS}


@dataclass(frozen=True, kw_only=True)
class CodeRevision:
    """One upload of a code: its stack and the validated defaults of its jobs."""

    name: str
    revision: int
    stack: str
    defaults: dict[str, Any]  #: job fields, as `build_job` takes them (sizes in bytes)
    config: str | None  #: JSON text, or None
    max_concurrency: int | None
    created_at: float
    archive_sha256: str | None = None  #: an archive code's zip, by digest, and the entry file its stack runs
    entry: str | None = None


@dataclass(frozen=True, kw_only=True)
class Code:
    """A code as listed: its latest revision and its gates."""

    name: str
    latest: int
    stack: str
    paused: bool
    max_concurrency: int | None
    created_at: float
    updated_at: float


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not CODE_NAME.fullmatch(name):
        raise InvalidJob("code: a code's name is 1 to 100 letters, digits, '_', '.' or '-', starting with a "
                         "letter or digit")
    return name


def known_name(name: str) -> str:
    """A code's name to look up: one no code can have is answered as a code never made (CodeNotFound, with
    the store's words), before any lookup."""
    if not CODE_NAME.fullmatch(name):
        raise CodeNotFound(f"code: no code named {name[:100]!r}")
    return name


def parse_reference(reference: Any) -> tuple[str, int | None]:
    """`NAME` or `NAME@REVISION` → (name, revision or None)."""
    match = CODE_REFERENCE.fullmatch(reference) if isinstance(reference, str) else None
    if match is None:
        raise InvalidJob("code: must be a code's name, or NAME@REVISION")
    return check_name(match.group("name")), int(match.group("revision")) if match.group("revision") else None


def build_code(manifest: StackManifest, limits: JobLimits, name: str, fields: dict[str, Any],
               archive_limits: ArchiveLimits | None = None) -> dict[str, Any]:
    """Validate an upload: its defaults must make a valid job on its stack, its archive (if any) must be a
    safe zip holding its entry file. Returns what a revision stores (`stack`, `defaults`, `config`,
    `max_concurrency`, `archive`: (ArchiveInfo, bytes) or None, `entry`); raises InvalidJob naming the field."""
    check_name(name)
    unknown = sorted(set(fields) - CODE_FIELDS)
    if unknown:
        raise InvalidJob(f"{unknown[0]}: is not a field of a code (its fields: {', '.join(sorted(CODE_FIELDS))})")
    if not isinstance(fields.get("stack"), str):
        raise InvalidJob("stack: a code must name its stack")
    defaults = {key: fields[key] for key in DEFAULT_FIELDS if fields.get(key) is not None}
    archive = _archive(manifest, fields, defaults, archive_limits)
    job = build_job(manifest, limits, stack=fields["stack"], **defaults)  # the defaults make a valid job
    stored = {"image": job.image, "command": job.command, "env": job.env, "retries": job.retries,
              "retry_delay": job.retry_delay_seconds, "priority": job.priority}
    if job.webhook:
        stored["webhook"] = job.webhook
    stored.update({key: value for key, value in (("timeout", job.timeout_seconds), ("memory", job.memory_bytes),
                                                 ("cpus", job.cpus), ("disk", job.disk_bytes))
                   if key in defaults})  # unset ones follow the stack's defaults of the day
    return {"stack": job.stack, "defaults": stored, "config": _config(fields.get("config")),
            "max_concurrency": _max_concurrency(fields.get("max_concurrency")), "archive": archive,
            "entry": archive[0].entry if archive else None}


def _archive(manifest: StackManifest, fields: dict[str, Any], defaults: dict[str, Any],
             archive_limits: ArchiveLimits | None) -> tuple[Any, bytes] | None:
    """An archive code's zip, checked, with its entry run by the stack (set as the defaults' command)."""
    if fields.get("archive") is None:
        if fields.get("entry") is not None:
            raise InvalidJob("entry: only an archive code has an entry file (give `archive` too)")
        return None
    if "command" in defaults:
        raise InvalidJob("command: an archive code runs its entry file; give `entry`, not `command`")
    stack = manifest.get(fields["stack"])
    if not stack.entry_command:
        raise InvalidJob(f"archive: stack {stack.name} runs no archive codes (it has no entry_command); "
                         "upload an image code there, or use a stack that has one")
    if archive_limits is None:
        raise InvalidJob("archive: this installation takes no archive codes")
    info = check_archive(fields["archive"], fields.get("entry"), archive_limits)
    defaults["command"] = [*stack.entry_command, info.entry]
    return info, bytes(fields["archive"])


def job_from_code(manifest: StackManifest, limits: JobLimits, revision: CodeRevision,
                  fields: dict[str, Any]) -> NewJob:
    """A job of `revision`: its defaults, overridden by the job's own fields (env merged)."""
    stack = fields.pop("stack", None)
    if stack is not None and stack != revision.stack:
        raise InvalidJob(f"stack: code {revision.name} runs on stack {revision.stack}, not {stack!r}")
    if revision.archive_sha256 and fields.get("command") is not None:
        raise InvalidJob(f"command: code {revision.name} is an archive: its jobs run its entry file "
                         f"({revision.entry})")
    merged = dict(revision.defaults)
    for key, value in fields.items():
        if value is None:
            continue
        if key == "env" and isinstance(value, dict):
            merged["env"] = {**merged.get("env", {}), **value}
        else:
            merged[key] = value
    return build_job(manifest, limits, stack=revision.stack, **merged)


def _config(config: Any) -> str | None:
    if config is None:
        return None
    try:
        text = json.dumps(config, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidJob(f"config: is not JSON ({str(exc)[:120]})") from None
    if ESCAPED_NUL.search(text):
        raise InvalidJob("config: must not contain a NUL character")
    if len(text) > MAX_CONFIG_BYTES:
        raise InvalidJob(f"config: {len(text)} bytes as JSON, over the limit of {MAX_CONFIG_BYTES}")
    return text


def _max_concurrency(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise InvalidJob(f"max_concurrency: must be a whole number from 1 to {MAX_CONCURRENCY}")
    return value
