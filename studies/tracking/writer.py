"""MLflow off the training path: a process of its own writes the finished trials to MLflow
while the workers train.

MLflow's SQLAlchemy store spends about 10 ms of CPU per run plus about 60 us per metric
point; done in the process that trains (or under the launcher's GIL while it polls) it
slows the sweep down. The writer process reads the storage (incrementally) and writes what
is missing, again and again, until the launcher asks for a last sync. It ignores Ctrl-C:
the launcher decides when it stops, and it stops between two runs, so that no run is left
half-written; if the launcher dies, the writer leaves too.

The last sync writes every run this writer may write, then the parents; the summary figures
are drawn in it only until a deadline the launcher gives (the end of a run never waits for
them: ``sweep sync`` draws what was left, and each parent's description says how current
its figures are).
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass

from studies.storage import redact
from studies.tracking import sqlite as mlflow_sqlite

__all__ = ["EndBudget", "MlflowStatus", "MlflowWriter"]

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
    mine: int = 0  # of ``behind``, the runs this writer may write (the rest: other hosts' live writers)
    rate: float = 0.0  # runs written per second lately (0: not measured yet)
    finishing: bool = False  # the launcher waits for the last sync
    failing: bool = False  # the last sync failed (MLflow away or unwritable)
    stale_figures: int = 0  # studies whose figures the last sync left to 'sweep sync'
    stopped: str | None = None  # why the writer ended before writing its share ("interrupted", ...)
    failure: str | None = None  # while MLflow fails: one line saying why, and the 'sweep sync' to run

    @property
    def incomplete(self) -> bool:
        """This writer ended with runs of its share unwritten, or MLflow failing."""
        return self.stopped is not None or self.failing or self.mine > 0

    def lag_seconds(self, now: float | None = None) -> float:
        if self.behind_since is None:
            return 0.0
        return (now if now is not None else time.monotonic()) - self.behind_since

    def eta_seconds(self) -> float | None:
        """Seconds until this writer has written its share, at its recent rate (``None``: unknown)."""
        if not self.mine:
            return 0.0
        return self.mine / self.rate if self.rate > 0 else None


def _watch_parent(parent: int) -> None:
    """Leave when the launcher is gone (it was killed): nothing else would stop this process."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent and not mlflow_sqlite.creating_now():  # never half-way through a set-up
            os._exit(0)


def _masked(uri: str | None) -> str | None:
    return None if uri is None else redact(uri)


@dataclass(frozen=True)
class EndBudget:
    """How long a run's last sync may spend on summary figures once its runs are written: what
    is left of ``seconds`` since the end was asked (at ``asked``, a ``time.monotonic()``), plus a
    quarter of the time the end has waited for runs so far (a long wait may take a little more)."""

    asked: float
    seconds: float

    def until(self, now: float) -> float:
        """The ``time.monotonic()`` after which no figure is drawn, the runs being written at ``now``."""
        waited = max(0.0, now - self.asked)
        return now + max(0.0, self.seconds - waited) + 0.25 * waited


class _Commands:
    """What the launcher asked, read from the pipe: ``"stop"``, or ``"final"`` with the seconds
    its last sync may spend on figures (:class:`~studies.tracking.tracker.EndBudget`)."""

    def __init__(self, conn) -> None:  # noqa: ANN001
        self.conn = conn
        self.final = False
        self.stop = False
        self.figures: EndBudget | None = None

    def read(self, timeout: float = 0.0) -> None:
        ready = self.conn.poll(timeout)
        while ready:
            what = self.conn.recv()
            if isinstance(what, tuple):  # read between two runs: about when it was sent
                what, seconds = what
                self.figures = EndBudget(asked=time.monotonic(), seconds=seconds)
            self.final |= what == "final"
            self.stop |= what == "stop"
            ready = self.conn.poll()

    def stop_asked(self) -> bool:
        self.read()
        return self.stop


class _Rate:
    """Runs written per second: a moving average of the seconds each run took."""

    def __init__(self) -> None:
        self.per_run = 0.0
        self.last: float | None = None

    def start(self) -> None:
        self.last = time.monotonic()

    def tick(self) -> None:
        now = time.monotonic()
        if self.last is not None:
            took = now - self.last
            self.per_run = took if not self.per_run else 0.8 * self.per_run + 0.2 * took
        self.last = now

    @property
    def value(self) -> float:
        return 1.0 / self.per_run if self.per_run > 0 else 0.0


def _status(tracker, previous: MlflowStatus, rate: float, *, final: bool) -> MlflowStatus:  # noqa: ANN001
    seen, behind = tracker.progress()
    since = previous.behind_since if behind and previous.behind else (time.monotonic() if behind else None)
    return MlflowStatus(
        logged=tracker.created,
        seen=seen,
        behind=behind,
        behind_since=since,
        busy=tracker.busy,
        experiment_id=tracker.experiment_id,
        tracking_uri=_masked(tracker.mlflow.resolved_uri),
        mine=tracker.behind_mine,
        rate=rate,
        finishing=final,
        failing=tracker.failing,
        stale_figures=tracker.parents.stale_figures() if final else 0,
        failure=tracker.failure,
    )


def _main(conn, sweep: str, storage_url: str, tracking_uri: str | None, parent: int) -> None:  # noqa: ANN001
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the launcher decides when this stops
    signal.signal(signal.SIGTERM, mlflow_sqlite.stop_unless_creating)  # never half-way through a store's set-up
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    import optuna

    from studies.storage import SweepStorage, open_storage
    from studies.tracking.tracker import Tracker

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    commands = _Commands(conn)

    def warn(message: str) -> None:
        conn.send(("warn", message))

    try:
        view = SweepStorage(
            open_storage(storage_url, heartbeat_interval=None, checked=True), refresh_seconds=0.0, read_unfinished=False
        )
    except Exception as exc:  # noqa: BLE001 - reported; the sweep goes on
        why = f"the MLflow writer could not open the storage ({type(exc).__name__}); run 'sweep sync {sweep}' later."
        conn.send(("done", MlflowStatus(done=True, failing=True, failure=why)))
        return
    # MLflow's failures are said by the display (a line while failing, one warning at the end).
    tracker = Tracker(sweep, tracking_uri, storage_url=storage_url, warn=warn, warn_failures=False)
    status = MlflowStatus()
    rate = _Rate()
    sent = [0.0]

    def on_run() -> None:  # a long sync (a backlog) says how far it got, a few times a second
        nonlocal status
        rate.tick()
        if time.monotonic() - sent[0] >= 0.25:
            sent[0] = time.monotonic()
            status = _status(tracker, status, rate.value, final=commands.final)
            conn.send(("status", status))

    while not commands.stop_asked():
        final = commands.final
        rate.start()
        tracker.sync(
            view,
            final=final,
            should_stop=commands.stop_asked,
            figures=commands.figures if final else None,
            on_run=on_run,
        )
        status = _status(tracker, status, rate.value, final=final)
        conn.send(("status", status))
        # The last sync ends the writer when all it may write is written (other hosts' live
        # writers write theirs), or when MLflow failed (warned once: 'sweep sync' catches up).
        if final and (not tracker.behind_mine or tracker.failing):
            break
        if not final:  # figures queued: at once (one per sync, after any run to write)
            commands.read(0.0 if tracker.parents.figures_pending else POLL_SECONDS)
    tracker.release()
    conn.send(("done", dataclasses.replace(_status(tracker, status, rate.value, final=True), done=True)))
    conn.close()
    os._exit(0)  # everything is committed and the leases released: no interpreter teardown to wait for


def _ended(code: int | None) -> str:
    """Why a writer process ended without its last sync, from its exit code."""
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"the MLflow writer process was killed by {signal.Signals(-code).name}"
    if code:
        return f"the MLflow writer process crashed (exit code {code})"
    return "the MLflow writer process ended early"


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
        self._process = ctx.Process(
            target=_main, args=(child, sweep, storage_url, tracking_uri, os.getpid()), name="sweep-mlflow", daemon=True
        )
        self._process.start()
        child.close()

    @property
    def died(self) -> bool:
        """The writer process ended without saying it was done (killed, or crashed)."""
        return not self._process.is_alive() and not self.status.done

    def poll(self) -> MlflowStatus:
        """Take in what the writer said since the last call; returns its latest status."""
        with contextlib.suppress(EOFError, OSError):
            while self._conn.poll():
                kind, payload = self._conn.recv()
                if kind == "warn":
                    self._warn(payload)
                else:
                    self.status = dataclasses.replace(payload, finishing=payload.finishing or self.status.finishing)
        return self.status

    def finish(
        self,
        *,
        on_status=None,
        timeout: float | None = None,  # noqa: ANN001
        figures_seconds: float | None = None,
    ) -> MlflowStatus:
        """Ask for a last sync of everything finished, and wait for it (``on_status`` is
        called with each status meanwhile). Summary figures are drawn in it for about
        ``figures_seconds`` once its runs are written (:class:`~studies.tracking.tracker.EndBudget`;
        ``None``: all that are due)."""
        self.status = dataclasses.replace(self.status, finishing=True)
        if on_status is not None:
            on_status(self.status)
        return self._end(("final", figures_seconds) if figures_seconds is not None else "final", on_status, timeout)

    def stop(self, *, timeout: float = 5.0, why: str | None = None) -> MlflowStatus:
        """Stop after the run being written (the rest is written by the next sync); ``why`` is
        recorded in the status it returns when runs are left unwritten."""
        status = self._end("stop", None, timeout)
        # Cut off before it said anything (still starting up on a busy machine), it ended early
        # because of ``why`` all the same.
        if why is not None and (status.mine or status.stopped is not None):
            status = self.status = dataclasses.replace(status, stopped=why)
        return status

    def _end(self, command: object, on_status, timeout: float | None) -> MlflowStatus:  # noqa: ANN001
        with contextlib.suppress(OSError, BrokenPipeError):
            self._conn.send(command)
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._process.is_alive() and not self.status.done:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            self._process.join(0.1 if left is None else min(0.1, left))
            self.poll()
            if on_status is not None:
                on_status(self.status)
        self.poll()
        if self._process.is_alive():
            self._process.join(1.0)
        code = None
        if self._process.is_alive():  # stopped by the timeout
            self._process.terminate()
            self._process.join(5.0)
        else:
            code = self._process.exitcode
        if not self.status.done and self.status.stopped is None:
            # killed, crashed, or stopped by the timeout: whatever it had not written is left
            self.status = dataclasses.replace(self.status, stopped=_ended(code))
        return self.status
