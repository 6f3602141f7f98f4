"""This process's own worker facts: who it is, the stacks it serves, the metrics port it was asked for.

Set once when the worker is set up (before the pool forks, so children inherit them).
"""

from __future__ import annotations

from longshore.domain.records import WorkerIdentity

_identity: list[WorkerIdentity] = []
_stacks: list[list[str]] = [[]]
_metrics_port: list[int] = [0]

#: Pool processes (or threads) beyond the slots: steps of running attempts (a wait, a kill) always
#: find one free even while every slot's pull is under way.
SPARE_POOL_SLOTS = 2


def default_name(stacks: list[str], engine_id: str) -> str:
    """A worker name tied to the engine it drives, not to the host name: a restarted process or a
    replaced pod on the same engine is the same worker, and takes back its queue and containers."""
    label = "-".join(stacks) if len(stacks) <= 3 else f"{len(stacks)}stacks"
    return f"longshore-{label}@{engine_id[:12]}"


def set_identity(identity: WorkerIdentity, stacks: list[str]) -> None:
    """Remember this process's worker identity and the stacks it serves."""
    _identity[:] = [identity]
    _stacks[0] = list(stacks)


def identity() -> WorkerIdentity:
    """This process's worker identity."""
    if not _identity:
        raise RuntimeError("no Longshore worker has been set up in this process")
    return _identity[0]


def served_stacks() -> list[str]:
    """The stacks this process's worker serves."""
    return list(_stacks[0])


def local_worker() -> str:
    """The node name of the worker running in this process."""
    return identity().name


def set_metrics_port(port: int) -> None:
    """The port `longshore worker --metrics-port` asked for (0: no metrics server)."""
    _metrics_port[0] = port


def metrics_port() -> int:
    """The metrics port asked for, 0 if none."""
    return _metrics_port[0]
