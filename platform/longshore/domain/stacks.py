"""The stack manifest: which runtime images exist and their default limits."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from longshore.errors import ConfigError, InvalidJob, UnknownStack

STACK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmg]?)b?$", re.IGNORECASE)
MEMORY_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
#: The engine refuses memory limits under 6 MiB; refuse them first, with our words.
MIN_MEMORY_BYTES = 6 << 20


class PullPolicy(StrEnum):
    """When a worker pulls a stack's image."""

    MISSING = "missing"  #: only when the engine does not have the image
    ALWAYS = "always"  #: before every attempt, to pick up a moved tag


@dataclass(frozen=True, kw_only=True)
class Stack:
    """One runtime a worker can serve."""

    name: str
    image: str
    pull: PullPolicy
    memory_bytes: int
    cpus: float
    timeout_seconds: float  #: 0: the installation's default timeout
    user: str | None
    build: str | None



def parse_memory(value: str | int) -> int:
    """Parse `128m`, `1g`, `65536` into bytes; raise InvalidJob on nonsense."""
    if isinstance(value, int):
        amount = value
    else:
        match = MEMORY.match(str(value).strip())
        if not match:
            raise InvalidJob(f"memory {value!r} is not a size like 128m, 1g or 65536")
        amount = int(float(match.group(1)) * MEMORY_UNITS[match.group(2).lower()])
    if amount < MIN_MEMORY_BYTES:
        raise InvalidJob(f"memory {value!r} is below the minimum of 6m")
    return amount


class StackManifest:
    """The stacks read from a TOML manifest, by name."""

    def __init__(self, stacks: dict[str, Stack]):
        self.stacks = stacks

    @classmethod
    def load(cls, path: Path) -> "StackManifest":
        """Read and validate the manifest at `path`; raise ConfigError naming the problem."""
        try:
            document = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"LONGSHORE_STACKS: cannot read {path}: {exc}") from None
        stacks = {}
        for name, entry in (document.get("stacks") or {}).items():
            try:
                stacks[name] = _stack(name, entry)
            except (InvalidJob, KeyError, ValueError, TypeError) as exc:
                raise ConfigError(f"LONGSHORE_STACKS: stack {name!r} in {path}: {exc}") from None
        if not stacks:
            raise ConfigError(f"LONGSHORE_STACKS: {path} defines no [stacks.<name>] table")
        return cls(stacks)

    def get(self, name: str) -> Stack:
        """The stack called `name`, or UnknownStack naming the known ones."""
        try:
            return self.stacks[name]
        except KeyError:
            raise UnknownStack(
                f"unknown stack {name!r}; known stacks: {', '.join(sorted(self.stacks))}"
            ) from None

    def names(self) -> list[str]:
        """The stack names, sorted."""
        return sorted(self.stacks)


def _stack(name: str, entry: dict) -> Stack:
    if not STACK_NAME.match(name):
        raise ValueError("a stack name is lower-case letters, digits, '-' and '_'")
    return Stack(
        name=name,
        image=str(entry["image"]),
        pull=PullPolicy(entry.get("pull", "missing")),
        memory_bytes=parse_memory(entry.get("memory", "128m")),
        cpus=float(entry.get("cpus", 1.0)),
        timeout_seconds=float(entry.get("timeout_seconds", 0)),
        user=entry.get("user"),
        build=entry.get("build"),
    )
