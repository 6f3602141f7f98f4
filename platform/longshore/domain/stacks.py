"""The stack manifest: the runtimes jobs run in, each with its sandbox, its defaults and its maximums.

A stack is policy as data. Its `Sandbox` confines every job on it (applied at create and read
back after it); its `Resources` say what a job gets when it asks for nothing (`defaults`) and
the most it may ask for (`maxima`), both under the installation's `Ceiling`.
"""

from __future__ import annotations

import fnmatch
import math
import re
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from longshore.errors import ConfigError, InvalidJob, UnknownStack

STACK_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
SIZE = re.compile(r"(\d{1,15}(?:\.\d{1,6})?)\s*([kmgt]?)i?b?", re.IGNORECASE)
SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
#: The engine refuses memory limits under 6 MiB; refuse them first, with our words.
MIN_MEMORY_BYTES = 6 << 20
MIN_DISK_BYTES = 1 << 20
MIN_CPUS = 0.01
#: A numeric uid:gid, so images without /etc/passwd work.
USER = re.compile(r"(\d{1,10}):(\d{1,10})")
RUNTIME = re.compile(r"[a-z][a-z0-9._-]{0,62}")
#: A job's files: TASK_DIR and /tmp each hold at most this many files and folders by default.
DEFAULT_INODES = 16384


class PullPolicy(StrEnum):
    """When a worker pulls a stack's image."""

    MISSING = "missing"  #: only when the engine does not have the image
    ALWAYS = "always"  #: before every attempt, to pick up a moved tag


@dataclass(frozen=True, kw_only=True)
class Resources:
    """A job's resources: the memory its processes use, its CPU share, the bytes its files hold, its time."""

    memory_bytes: int
    cpus: float
    disk_bytes: int
    timeout_seconds: float


@dataclass(frozen=True, kw_only=True)
class Ceiling:
    """The installation's maximums: no stack may offer more (built from settings)."""

    resources: Resources
    pids: int = 32768
    nofile: int = 1 << 20


@dataclass(frozen=True, kw_only=True)
class Sandbox:
    """What confines every job of a stack; the engine is asked for all of it and each field is read back."""

    runtime: str = "runc"  #: the engine's OCI runtime: "runc", or "runsc" for gVisor's kernel
    user: str = "65534:65534"  #: numeric uid:gid, never root
    pids: int = 256  #: processes at once (stops fork bombs)
    nofile: int = 1024  #: open files per process
    #: processes per uid, counted by the kernel across every container of that uid on the host;
    #: the per-job bound is `pids`, this is a backstop.
    nproc: int = 4096
    inodes: int = DEFAULT_INODES  #: files and folders in TASK_DIR and in /tmp, each


@dataclass(frozen=True, kw_only=True)
class Stack:
    """One runtime a worker can serve."""

    name: str
    image: str
    #: Patterns (`fnmatch`, anchored at the start, `*` crosses `/`) of images a job may name instead of
    #: `image`; empty: only `image`.
    images: tuple[str, ...] = ()
    pull: PullPolicy = PullPolicy.MISSING
    defaults: Resources
    maxima: Resources
    sandbox: Sandbox = field(default_factory=Sandbox)
    build: str | None = None
    #: The program (and its first arguments) that runs an archive code's entry file, e.g. ("python3",);
    #: empty: the stack takes no archive codes.
    entry_command: tuple[str, ...] = ()

    def allows_image(self, image: str) -> bool:
        """True when a job of this stack may run `image`."""
        return image == self.image or any(fnmatch.fnmatchcase(image, pattern) for pattern in self.images)

    @property
    def allowed_images(self) -> str:
        """The images a job may name, in words."""
        return ", ".join((self.image, *self.images))


def parse_size(value: Any, what: str, minimum: int) -> int:
    """Parse `128m`, `1g`, `65536` into bytes; raise InvalidJob naming `what` on nonsense."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidJob(f"{what}: must be a size like 128m, 1g or a number of bytes, not {type(value).__name__}")
    if isinstance(value, int):
        amount = value
    else:
        match = SIZE.fullmatch(value.strip())
        if not match:
            raise InvalidJob(f"{what}: {value[:40]!r} is not a size like 128m, 1g or 65536")
        amount = int(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()])
    if amount < minimum:
        raise InvalidJob(f"{what}: {value!r} is below the minimum of {format_size(minimum)}")
    return amount


def parse_memory(value: Any) -> int:
    """A memory limit in bytes (at least 6m)."""
    return parse_size(value, "memory", MIN_MEMORY_BYTES)


def format_size(amount: int) -> str:
    """Bytes in the unit a person would write: 64m, 1g, 1536k."""
    for unit, size in (("t", 1 << 40), ("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if amount >= size and amount % size == 0:
            return f"{amount // size}{unit}"
    return str(amount) if amount < 1 << 20 else f"{amount / (1 << 20):.1f}m"


class StackManifest:
    """The stacks read from a TOML manifest, by name."""

    def __init__(self, stacks: dict[str, Stack]):
        self.stacks = stacks

    @classmethod
    def load(cls, path: Path, ceiling: Ceiling) -> "StackManifest":
        """Read and validate the manifest at `path` under the installation's `ceiling`; raise ConfigError
        naming the problem."""
        try:
            document = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"LONGSHORE_STACKS: cannot read {path}: {exc}") from None
        stacks = {}
        entries = document.get("stacks")
        if not isinstance(entries, dict) or not entries:
            raise ConfigError(f"LONGSHORE_STACKS: {path} defines no [stacks.<name>] table")
        for name, entry in entries.items():
            try:
                stacks[name] = _stack(name, entry, ceiling)
            except (InvalidJob, KeyError, ValueError, TypeError) as exc:
                raise ConfigError(f"LONGSHORE_STACKS: stack {name!r} in {path}: {_words(exc)}") from None
        return cls(stacks)

    def get(self, name: str) -> Stack:
        """The stack called `name`, or UnknownStack naming the known ones."""
        try:
            return self.stacks[name]
        except (KeyError, TypeError):
            raise UnknownStack(
                f"stack: unknown stack {str(name)[:64]!r}; known stacks: {', '.join(sorted(self.stacks))}"
            ) from None

    def names(self) -> list[str]:
        """The stack names, sorted."""
        return sorted(self.stacks)


#: Every key a stack's table may hold; anything else is a typo the operator should hear about.
STACK_KEYS = frozenset({
    "image", "images", "pull", "build", "runtime", "user", "memory", "max_memory", "cpus", "max_cpus", "disk",
    "max_disk", "timeout_seconds", "max_timeout_seconds", "pids", "nofile", "nproc", "inodes", "entry_command"})


def _stack(name: str, entry: Any, ceiling: Ceiling) -> Stack:
    if not STACK_NAME.fullmatch(name):
        raise ValueError("a stack name is lower-case letters, digits, '-' and '_' (at most 63)")
    if not isinstance(entry, dict):
        raise ValueError("must be a table")
    unknown = sorted(set(entry) - STACK_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; a stack may set {', '.join(sorted(STACK_KEYS))}")
    top = ceiling.resources
    maxima = Resources(
        memory_bytes=_bounded_size(entry, "max_memory", top.memory_bytes, MIN_MEMORY_BYTES, top.memory_bytes,
                                   over="the installation's LONGSHORE_MAX_MEMORY"),
        cpus=_bounded_number(entry, "max_cpus", top.cpus, MIN_CPUS, top.cpus),
        disk_bytes=_bounded_size(entry, "max_disk", top.disk_bytes, MIN_DISK_BYTES, top.disk_bytes,
                                 over="the installation's LONGSHORE_MAX_DISK"),
        timeout_seconds=_bounded_number(entry, "max_timeout_seconds", top.timeout_seconds, 1, top.timeout_seconds),
    )
    defaults = Resources(
        memory_bytes=_bounded_size(entry, "memory", min(128 << 20, maxima.memory_bytes), MIN_MEMORY_BYTES,
                                   maxima.memory_bytes),
        cpus=_bounded_number(entry, "cpus", min(1.0, maxima.cpus), MIN_CPUS, maxima.cpus),
        disk_bytes=_bounded_size(entry, "disk", min(64 << 20, maxima.disk_bytes), MIN_DISK_BYTES,
                                 maxima.disk_bytes),
        # 0 (or unset): the installation's default timeout, applied by the validator
        timeout_seconds=_bounded_number(entry, "timeout_seconds", 0, 0, maxima.timeout_seconds),
    )
    images = entry.get("images", [])
    if not isinstance(images, list) or not all(isinstance(p, str) and p.strip() for p in images):
        raise ValueError("images must be a list of image patterns, e.g. [\"registry.example.com/team/*\"]")
    entry_command = entry.get("entry_command", [])
    if not isinstance(entry_command, list) or not all(isinstance(a, str) and a and "\x00" not in a
                                                       for a in entry_command):
        raise ValueError("entry_command must be a list of words, e.g. [\"python3\"]")
    return Stack(
        name=name,
        image=_text(entry, "image"),
        images=tuple(images),
        pull=PullPolicy(entry.get("pull", "missing")),
        defaults=defaults,
        maxima=maxima,
        sandbox=_sandbox(entry, ceiling),
        build=entry.get("build"),
        entry_command=tuple(entry_command),
    )


def _sandbox(entry: dict, ceiling: Ceiling) -> Sandbox:
    base = Sandbox()
    user = entry.get("user", base.user)
    match = USER.fullmatch(user) if isinstance(user, str) else None
    if not match:
        raise ValueError(f"user {user!r} must be a numeric uid:gid such as \"65534:65534\"")
    if int(match.group(1)) == 0 or int(match.group(2)) == 0:
        raise ValueError(f"user {user!r}: jobs never run as root (uid 0) or in the root group (gid 0)")
    runtime = entry.get("runtime", base.runtime)
    if not isinstance(runtime, str) or not RUNTIME.fullmatch(runtime):
        raise ValueError(f"runtime {runtime!r} is not an OCI runtime name such as \"runc\" or \"runsc\"")
    return Sandbox(
        runtime=runtime,
        user=user,
        pids=int(_bounded_number(entry, "pids", base.pids, 16, ceiling.pids, whole=True)),
        nofile=int(_bounded_number(entry, "nofile", base.nofile, 16, ceiling.nofile, whole=True)),
        nproc=int(_bounded_number(entry, "nproc", base.nproc, 16, 1 << 22, whole=True)),
        inodes=int(_bounded_number(entry, "inodes", base.inodes, 16, 1 << 24, whole=True)),
    )


def _text(entry: dict, key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} is required: the image reference jobs on it run")
    return value


def _bounded_size(entry: dict, key: str, default: int, minimum: int, maximum: int, *,
                  over: str = "the stack's maximum") -> int:
    amount = parse_size(entry.get(key, default), key, minimum)
    if amount > maximum:
        raise ValueError(f"{key} {format_size(amount)} is over {over} of {format_size(maximum)}")
    return amount


def _bounded_number(entry: dict, key: str, default: float, minimum: float, maximum: float, *,
                    whole: bool = False) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key} must be a number")
    if whole and value != int(value):
        raise ValueError(f"{key} must be a whole number")
    if not minimum <= value <= maximum:
        raise ValueError(f"{key} {value:g} must be between {minimum:g} and {maximum:g}")
    return float(value)


def _words(exc: Exception) -> str:
    return f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
