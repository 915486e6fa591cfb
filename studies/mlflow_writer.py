"""MLflow off the training path: a process of its own writes the finished trials to MLflow
while the workers train.

MLflow's SQLAlchemy store spends about 10 ms of CPU per run plus about 50 us per metric
point; done in the process that trains (or under the launcher's GIL while it polls) it
slows the sweep down. The writer process reads the storage (incrementally) and writes what
is missing, again and again, until the launcher asks for a last sync. It ignores Ctrl-C:
the launcher decides when it stops, and it stops between two runs, so that no run is left
half-written; if the launcher dies, the writer leaves too.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass

from studies.redaction import redact

__all__ = ["MlflowStatus", "MlflowWriter"]

# The writer looks for new finished trials this often (and writes all it finds at once).
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class MlflowStatus:
    """How far MLflow is behind the storage: runs written by this writer, finished trials it
    has seen, trials it has yet to write, and since when it has been behind."""

    logged: int = 0
    seen: int = 0
    behind: int = 0
    behind_since: float | None = None  # time.monotonic() of the oldest unwritten trial's sighting
    busy: str | None = None  # another process holds the lease (it writes this sweep)
    done: bool = False
    experiment_id: str | None = None  # the sweep's MLflow experiment, once the writer has connected
    tracking_uri: str | None = None  # where it writes, its password masked (a status is pickled and shown)

    def lag_seconds(self, now: float | None = None) -> float:
        if self.behind_since is None:
            return 0.0
        return (now if now is not None else time.monotonic()) - self.behind_since


def _watch_parent(parent: int) -> None:
    """Leave when the launcher is gone (it was killed): nothing else would stop this process."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _masked(uri: str | None) -> str | None:
    return None if uri is None else redact(uri)


def _main(conn, sweep: str, storage_url: str, tracking_uri: str | None, parent: int) -> None:  # noqa: ANN001
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the launcher decides when this stops
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    import optuna

    from studies.storage import open_storage
    from studies.store import SweepStorage
    from studies.tracking import Tracker

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    command: list[str] = []

    def stop_asked() -> bool:
        while conn.poll():
            command.append(conn.recv())
        return "stop" in command

    def warn(message: str) -> None:
        conn.send(("warn", message))

    try:
        view = SweepStorage(open_storage(storage_url, heartbeat_interval=None, checked=True), refresh_seconds=0.0,
                            read_unfinished=False)
    except Exception as exc:  # noqa: BLE001 - reported; the sweep goes on
        warn(f"the MLflow writer could not open the storage ({type(exc).__name__}); run 'sweep sync {sweep}' later.")
        conn.send(("done", MlflowStatus(done=True)))
        return
    tracker = Tracker(sweep, tracking_uri, storage_url=storage_url, warn=warn)
    status = MlflowStatus()
    while True:
        final = "final" in command
        if stop_asked():
            break
        tracker.sync(view, final=final, should_stop=stop_asked)
        seen, behind = tracker.progress()
        since = status.behind_since if behind and status.behind else (time.monotonic() if behind else None)
        status = MlflowStatus(logged=tracker.created, seen=seen, behind=behind, behind_since=since, busy=tracker.busy,
                              experiment_id=tracker.experiment_id, tracking_uri=_masked(tracker.mlflow.resolved_uri))
        conn.send(("status", status))
        # The last sync ends the writer when all it may write is written (other hosts' live
        # writers write theirs), or when MLflow failed (warned once: 'sweep sync' catches up).
        if final and (not tracker.behind_mine or tracker.failing) or stop_asked():
            break
        if conn.poll(POLL_SECONDS):
            command.append(conn.recv())
    tracker.release()
    conn.send(("done", MlflowStatus(logged=tracker.created, seen=status.seen, behind=status.behind,
                                    behind_since=status.behind_since, busy=tracker.busy, done=True,
                                    experiment_id=tracker.experiment_id,
                                    tracking_uri=_masked(tracker.mlflow.resolved_uri))))


class MlflowWriter:
    """The launcher's handle on the writer process.

    Args:
        sweep, storage_url, tracking_uri: what to write, from where, to where.
        warn: called (in the launcher) with the writer's one-line warnings.
    """

    def __init__(self, sweep: str, storage_url: str, tracking_uri: str | None, *, warn) -> None:  # noqa: ANN001
        ctx = multiprocessing.get_context("spawn")  # the launcher has threads: never fork it
        self._conn, child = ctx.Pipe()
        self._warn = warn
        self.status = MlflowStatus()
        self._process = ctx.Process(target=_main, args=(child, sweep, storage_url, tracking_uri, os.getpid()),
                                    name="sweep-mlflow", daemon=True)
        self._process.start()
        child.close()

    def poll(self) -> MlflowStatus:
        """Take in what the writer said since the last call; returns its latest status."""
        with contextlib.suppress(EOFError, OSError):
            while self._conn.poll():
                kind, payload = self._conn.recv()
                if kind == "warn":
                    self._warn(payload)
                else:
                    self.status = payload
        return self.status

    def finish(self, *, on_status=None, timeout: float | None = None) -> MlflowStatus:  # noqa: ANN001
        """Ask for a last sync of everything finished, and wait for it (``on_status`` is
        called with each status meanwhile)."""
        return self._end("final", on_status, timeout)

    def stop(self, *, timeout: float = 5.0) -> MlflowStatus:
        """Stop after the run being written (the rest is written by the next sync)."""
        return self._end("stop", None, timeout)

    def _end(self, command: str, on_status, timeout: float | None) -> MlflowStatus:  # noqa: ANN001
        with contextlib.suppress(OSError, BrokenPipeError):
            self._conn.send(command)
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._process.is_alive() and not self.status.done:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            self._process.join(0.2 if left is None else min(0.2, left))
            self.poll()
            if on_status is not None:
                on_status(self.status)
        self.poll()
        if self._process.is_alive():
            self._process.join(1.0)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5.0)
        return self.status
