"""One heartbeat thread per worker process, for all the trials it runs.

Optuna's ``Study.optimize`` starts a thread per trial; a worker that trains a stack of 32
trials would run 32 threads, each writing its own heartbeat. Here one thread writes the
heartbeats of every running trial of the process in one transaction every
``heartbeat_interval`` seconds. (A trial's first heartbeat is written with its creation, see
:class:`studies.storage.adaptor.SweepStorage`.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import optuna

from studies import _optuna_compat as compat

__all__ = ["Heartbeat", "heartbeat_enabled"]


def heartbeat_enabled(storage: optuna.storages.BaseStorage) -> bool:
    """Whether the storage records heartbeats (an RDB storage opened with a heartbeat interval)."""
    return isinstance(storage, optuna.storages.RDBStorage) and bool(storage.get_heartbeat_interval())


class Heartbeat:
    """Records a heartbeat for each trial ``trial_ids()`` returns, every ``interval`` seconds.

    Use as a context manager; a failing write (the database away for a moment) is retried at
    the next beat: a trial is failed only after ``grace_period`` seconds without one.
    """

    def __init__(self, storage: optuna.storages.RDBStorage, trial_ids: Callable[[], Iterable[int]]) -> None:
        self.storage = storage
        self.interval = float(storage.get_heartbeat_interval() or 0)
        self.trial_ids = trial_ids
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweep-heartbeat", daemon=True)
        self.beats = 0

    def beat(self) -> None:
        """Record the heartbeats now."""
        ids = list(self.trial_ids())
        if ids:
            compat.rdb_record_heartbeats(self.storage, ids)
            self.beats += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - the next beat tries again; staleness is the signal
                pass

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)
