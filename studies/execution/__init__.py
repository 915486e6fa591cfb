"""Running a sweep: the launcher (open or resume the studies, start the workers and the MLflow
writer, show progress), the worker processes, what survives a kill (recovery, heartbeats),
stop signals, and the watchdog over servers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine._lazy import lazy_face

if TYPE_CHECKING:
    from studies.execution import signals
    from studies.execution.launch import BACKENDS, Launch
    from studies.execution.processes import stop_tree
    from studies.execution.runner import (
        QuietEvents,
        RunEvents,
        RunResult,
        SweepHalted,
        SweepInterrupted,
        default_jobs,
        open_sweep,
        run_sweep,
    )
    from studies.execution.supervisor import Supervisor
    from studies.execution.worker import HALT_AFTER, WorkerResult, WorkerTask, halted, work

__all__ = [
    "BACKENDS",
    "HALT_AFTER",
    "Launch",
    "QuietEvents",
    "RunEvents",
    "RunResult",
    "Supervisor",
    "SweepHalted",
    "SweepInterrupted",
    "WorkerResult",
    "WorkerTask",
    "default_jobs",
    "halted",
    "open_sweep",
    "run_sweep",
    "signals",
    "stop_tree",
    "work",
]

__getattr__, __dir__ = lazy_face(__name__, __file__, __all__)
