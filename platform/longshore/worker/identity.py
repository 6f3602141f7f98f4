"""This process's own worker facts: its node name, and the metrics port it was asked to serve.

Set once when the worker is set up (before the pool forks, so children inherit them).
"""

from __future__ import annotations

_local_worker: list[str] = []
_metrics_port: list[int] = [0]


def set_local_worker(nodename: str) -> None:
    """Remember this process's worker node name (inherited by prefork children)."""
    _local_worker[:] = [nodename]


def local_worker() -> str:
    """The node name of the worker running in this process."""
    if not _local_worker:
        raise RuntimeError("no Longshore worker has been set up in this process")
    return _local_worker[0]


def set_metrics_port(port: int) -> None:
    """The port `longshore worker --metrics-port` asked for (0: no metrics server)."""
    _metrics_port[0] = port


def metrics_port() -> int:
    """The metrics port asked for, 0 if none."""
    return _metrics_port[0]
