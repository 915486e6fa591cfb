"""Where and how a sweep's workers run (nothing here imports the workers: the command line
reads it before anything else)."""

from __future__ import annotations

import dataclasses

__all__ = ["BACKENDS", "Launch"]


@dataclasses.dataclass(frozen=True)
class Launch:
    """Where and how the workers run.

    Attributes:
        backend: ``loky`` (local worker processes) or ``dask`` (a dask.distributed cluster).
        scheduler: the dask scheduler's address (``tcp://host:8786``), for ``backend="dask"``.
        heartbeat_interval: seconds between a trial's heartbeats (RDB storages).
        grace_period: seconds without a heartbeat after which a trial is failed and retried.
    """

    backend: str = "loky"
    scheduler: str | None = None
    heartbeat_interval: int = 10
    grace_period: int = 30


BACKENDS = ("dask", "loky")
