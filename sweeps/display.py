"""Rendering summaries: the live progress lines and the final table."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import click

from studies.tracking import MlflowStatus
from sweeps.errors import EXIT_MLFLOW_INCOMPLETE

if TYPE_CHECKING:
    from studies.sweep import StudySummary

__all__ = [
    "Pace",
    "Progress",
    "Waiting",
    "file_progress",
    "format_duration",
    "summary_table",
    "format_value",
    "mlflow_links",
    "mlflow_line",
    "mlflow_end",
    "next_steps",
    "limits_lines",
    "UI_HOST",
    "UI_PORT",
]

UI_HOST, UI_PORT = "127.0.0.1", 5000  # where 'sweep ui' serves MLflow's UI by default


def format_value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _params(params: dict[str, object]) -> str:
    parts = []
    for k, v in params.items():
        parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(parts) or "-"


def format_duration(seconds: float) -> str:
    """``45 s``, ``3 min 05 s``, ``2 h 04 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@dataclass
class Pace:
    """Trials finished per second since a study (or the sweep) was first seen at work in this
    run, and what that makes of the time left. A resumed sweep's earlier trials do not count:
    the pace is this run's."""

    since: float | None = None  # when it was first seen at work
    at_start: int = 0  # finished trials then

    def see(self, finished: int, working: bool, now: float) -> None:
        if self.since is None and working:
            self.since, self.at_start = now, finished

    def per_minute(self, finished: int, now: float) -> float | None:
        if self.since is None or now - self.since < 1.0 or finished <= self.at_start:
            return None
        return 60.0 * (finished - self.at_start) / (now - self.since)

    def eta(self, finished: int, total: int, now: float) -> float | None:
        """Seconds until ``total`` at this pace (``None``: no pace yet)."""
        rate = self.per_minute(finished, now)
        return None if rate is None else 60.0 * max(0, total - finished) / rate


def _timing(pace: Pace, finished: int, total: int, running: int, now: float, *, busy: bool = True) -> str:
    """``12.5/min, ETA 1 min 20 s``; a study that has trials left but none running while others
    run (``busy``) waits for a worker to be free ("waiting for a slot"): it is not stuck."""
    if finished >= total:
        return "done"
    if not running:
        return "waiting for a slot" if busy else "starting"
    rate = pace.per_minute(finished, now)
    if rate is None:
        return "starting"
    eta = pace.eta(finished, total, now)
    return f"{rate:.1f}/min, ETA {format_duration(eta or 0.0)}"


def _ended(s: StudySummary, wall: float | None) -> str | None:
    """Why a study short of its total asks for no more trials ("stopped (converged)", "budget
    ended"), or ``None``."""
    if s.finished >= s.total:
        return None
    if s.stopped is not None:
        return "stopped (converged)"
    return "budget ended" if s.done(now=wall) else None


def _line(s: StudySummary, width: int, timing: str = "") -> str:
    c = s.counts
    best = f"front {len(s.front):>4}" if s.front is not None else f"best {format_value(s.best_value):>8}"
    return (
        f"{s.dataset:<{width}}  {s.finished:>4}/{s.total:<4}  {best}  "
        f"pruned {c.get('pruned', 0):>3}  diverged {c.get('diverged', 0):>3}  failed {c.get('failed', 0):>3}  "
        f"running {c.get('running', 0):>2}" + (f"  {timing}" if timing else "")
    )


def mlflow_line(status: MlflowStatus, sweep: str) -> str | None:
    """What the display says of MLflow, if anything: how many runs are left to write and how long
    that takes at the writer's pace, who else writes them, or what the last sync is doing."""
    if status.busy:
        return f"MLflow: written by {status.busy}"
    if status.failing and status.failure and not status.finishing:
        return f"MLflow failing, tried again every 30 s: {status.failure}"
    left = status.mine if status.finishing else status.behind
    if not left and not status.finishing:
        return None
    if not left:
        return None if status.done else "MLflow: bringing the studies' parent runs up to date"
    eta = status.eta_seconds()
    line = f"MLflow: {left} run{'s' if left != 1 else ''} to write" + (f", ~{format_duration(eta)}" if eta else "")
    if status.finishing:
        line += f" (Ctrl-C leaves them to 'sweep sync {sweep}')"
    return line


class Waiting:
    """A line that says what a command waits for, and for how long: redrawn in place every
    second on a terminal, a line every ``every`` seconds otherwise. Use as a context manager;
    :meth:`update` changes the text (``""``: done)."""

    def __init__(self, text: str, *, stream: TextIO | None = None, every: float = 10.0) -> None:
        self.text, self.stream, self.every = text, stream or sys.stderr, every
        self.tty = self.stream.isatty()
        self.started = self._last = time.monotonic()
        self._shown = False

    def __enter__(self) -> Waiting:
        self._show()
        return self

    def update(self, text: str) -> None:
        self.text = text
        now = time.monotonic()
        if text and (self.tty and now - self._last >= 1.0 or now - self._last >= self.every):
            self._show()

    def _show(self) -> None:
        self._last = time.monotonic()
        line = f"{self.text} ({self._last - self.started:.0f} s)" if self._last - self.started >= 1 else self.text
        self.stream.write(f"\r\x1b[K{line}" if self.tty else line + "\n")
        self.stream.flush()
        self._shown = True

    def __exit__(self, *exc: object) -> None:
        if self.tty and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


@contextlib.contextmanager
def file_progress(*, stream: TextIO | None = None, every: float = 5.0) -> Iterator[None]:
    """While inside, a large CSV file that loads shows a line that moves, e.g. ``reading
    'big.csv': 120000 rows, 35% of 73.2 MiB (4 s)`` (engine.reading says which files are large)."""
    from engine import reading
    from engine.limits import human_bytes

    shown: dict[str, Waiting] = {}

    def watch(path: str, rows: int, done: int, size: int) -> None:
        text = f"reading {path!r}: {rows} rows, {100 * done // max(size, 1)}% of {human_bytes(size)}"
        if path in shown:
            shown[path].update(text)
        else:
            shown[path] = Waiting(text, stream=stream, every=every).__enter__()

    try:
        with reading(watch):
            yield
    finally:
        for waiting in shown.values():
            waiting.__exit__(None, None, None)


class Progress:
    """What a run shows as it goes (it is the run's ``RunEvents``): live progress on stderr,
    redrawn in place on a terminal, a line now and then otherwise; warnings and notes as lines.

    Args:
        stream: where to draw (default stderr).
        every: seconds between lines when the stream is not a terminal.
        sweep: the sweep's name (the MLflow line names 'sweep sync NAME').
    """

    def __init__(self, stream: TextIO | None = None, *, every: float = 10.0, sweep: str = "NAME") -> None:
        self.sweep = sweep
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = every
        self._drawn = 0
        self._last = 0.0
        self._last_text = ""
        self._summaries: list[StudySummary] = []
        self._mlflow: MlflowStatus | None = None
        self.started = time.monotonic()
        self._paces: dict[str, Pace] = {}
        self._overall = Pace()

    def mlflow(self, status: MlflowStatus) -> None:
        """How far MLflow is behind: shown under the studies while it is behind."""
        self._mlflow = status
        self.progress(self._summaries)

    def warn(self, message: str) -> None:
        click.echo(f"Warning: {message}", err=True)

    def note(self, message: str) -> None:
        click.echo(message, err=True)

    def lines(self, summaries: list[StudySummary], *, now: float, wall: float | None = None) -> list[str]:
        """The overall line (elapsed time, pace, ETA, the time budget left) and one line per study
        (``now``: the monotonic clock; ``wall``: Unix time, for a budget's deadline)."""
        width = max(len(s.dataset) for s in summaries)
        busy = any(s.counts.get("running", 0) for s in summaries)
        out = []
        for s in summaries:
            running = s.counts.get("running", 0)
            pace = self._paces.setdefault(s.dataset, Pace())
            pace.see(s.finished, bool(running), now)
            ended = _ended(s, wall) if not running else None
            out.append(_line(s, width, ended or _timing(pace, s.finished, s.total, running, now, busy=busy)))
        finished = sum(min(s.finished, s.total) for s in summaries)
        # a study that asks for no more trials (stopped, the budget ended) counts as far as it got
        total = sum(min(s.finished, s.total) if _ended(s, wall) else s.total for s in summaries)
        running = sum(s.counts.get("running", 0) for s in summaries)
        self._overall.see(finished, bool(running), now)
        head = f"elapsed {format_duration(now - self.started)}, {finished}/{total} trials"
        rate = self._overall.per_minute(finished, now)
        if rate is not None and finished < total:
            head += f", {rate:.1f}/min, ETA {format_duration(self._overall.eta(finished, total, now) or 0.0)}"
        deadline = next((s.budget.get("deadline") for s in summaries if s.budget), None)
        if isinstance(deadline, (int, float)):  # the sweep's time budget, kept in the storage
            left = deadline - (time.time() if wall is None else wall)
            head += f", budget left {format_duration(left)}" if left > 0 else ", budget ended"
        return [head, *out]

    def progress(self, summaries: list[StudySummary]) -> None:
        """The studies' lines (and MLflow's, while it is behind), redrawn."""
        if not summaries:
            return
        self._summaries = summaries
        lines = self.lines(summaries, now=time.monotonic())
        m = self._mlflow
        extra = mlflow_line(m, self.sweep) if m is not None else None
        if extra is not None:
            lines.append(extra)
        text = "\n".join(lines)
        # Without a terminal, a line when something changed (the clock alone does not count).
        key = repr([(s.dataset, s.finished, s.counts, s.best_value) for s in summaries]) + (extra or "")
        # Without a terminal, a line now and then; while the end waits for MLflow, more often.
        every = min(self.every, 2.0) if m is not None and m.finishing else self.every
        if self.tty:
            if self._drawn:
                self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self.stream.write(text + "\n")
            self._drawn = len(lines)
        elif key != self._last_text and time.monotonic() - self._last >= every:
            self.stream.write(text + "\n")
            self._last = time.monotonic()
            self._last_text = key
        self.stream.flush()


def next_steps(sweep: str, storage: str | None) -> str:
    """Where to look once a run has ended: the report and the status (MLflow's links follow)."""
    from shlex import quote

    where = f" --storage {quote(storage)}" if storage else ""
    report, status = f"sweep report {quote(sweep)}{where}", f"sweep status {quote(sweep)}{where}"
    width = max(len(report), len(status))
    return (
        f"Next: {report:<{width}}  # the report: reports/{sweep}/ (figures, test scores, trials.csv)\n"
        f"      {status:<{width}}  # this table again"
    )


def summary_table(summaries: list[StudySummary], *, objective: str | tuple[str, ...]) -> str:
    """The per-dataset table: best value, counts by outcome, best parameters; with several
    objectives, the Pareto front's size and the best value of each objective (its trial)."""
    if not summaries:
        return "(no studies)"
    if not isinstance(objective, str):
        if len(objective) > 1:
            return _front_table(summaries, tuple(objective))
        objective = objective[0]
    width = max(7, *(len(s.dataset) for s in summaries))
    # Classification: the best trial's validation accuracy beside its cost.
    acc = objective != "val_accuracy" and any(s.best_accuracy is not None for s in summaries)
    head = (
        f"{'dataset':<{width}}  {'finished':>9}  {'best ' + objective:>16}  "
        + (f"{'val accuracy':>12}  " if acc else "")
        + f"{'complete':>8}  {'pruned':>6}  {'diverged':>8}  {'failed':>6}  best parameters"
    )
    rows = [head, "-" * len(head)]
    for s in summaries:
        c = s.counts
        rows.append(
            f"{s.dataset:<{width}}  {f'{s.finished}/{s.total}':>9}  {format_value(s.best_value):>16}  "
            + (f"{format_value(s.best_accuracy):>12}  " if acc else "")
            + f"{c.get('complete', 0):>8}  {c.get('pruned', 0):>6}  {c.get('diverged', 0):>8}  "
            f"{c.get('failed', 0):>6}  {_params(s.best_params)}"
        )
    return "\n".join(rows + _notes(summaries) + limits_lines(summaries))


def _notes(summaries: list[StudySummary]) -> list[str]:
    """A line per study with repeated seeds (the best's std) or constraints (the infeasible count)."""
    lines = []
    for s in summaries:
        said = []
        if s.best_std:
            said.append(f"best {format_value(s.best_value)} ± {format_value(s.best_std[0])} (std over its seeds)")
        if s.infeasible is not None:
            said.append(f"{s.infeasible} infeasible trial(s) kept apart; the best is the feasible best")
        if said:
            lines.append(f"{s.dataset}: {'; '.join(said)}")
    return [""] + lines if lines else []


def _front_table(summaries: list[StudySummary], objectives: tuple[str, ...]) -> str:
    width = max(7, *(len(s.dataset) for s in summaries))
    cols = [f"best {name}" for name in objectives]
    widths = [max(len(c), 16) for c in cols]
    head = (
        f"{'dataset':<{width}}  {'finished':>9}  {'front':>5}  "
        + "  ".join(f"{c:>{w}}" for c, w in zip(cols, widths))
        + f"  {'complete':>8}  {'pruned':>6}  {'diverged':>8}  {'failed':>6}"
    )
    rows = [head, "-" * len(head)]
    for s in summaries:
        c = s.counts
        bests = []
        for i, name in enumerate(objectives):
            f = s.best_of(name)
            bests.append("-" if f is None else f"{format_value(f.values[i])} (t{f.number})")
        rows.append(
            f"{s.dataset:<{width}}  {f'{s.finished}/{s.total}':>9}  {len(s.front or ()):>5}  "
            + "  ".join(f"{b:>{w}}" for b, w in zip(bests, widths))
            + f"  {c.get('complete', 0):>8}  {c.get('pruned', 0):>6}  {c.get('diverged', 0):>8}  "
            f"{c.get('failed', 0):>6}"
        )
    rows.append("front: the complete trials no other beats in every objective ('sweep status NAME --json' lists them)")
    return "\n".join(rows + limits_lines(summaries))


def _clock(t: object) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(float(t))) if isinstance(t, (int, float)) else "?"


def limits_lines(summaries: list[StudySummary], *, now: float | None = None) -> list[str]:
    """What stopped the sweep short: its time budget (when it ends or ended, the trials it cut)
    and the studies stopped on convergence (at which trial, when)."""
    from studies.sweep import format_duration

    lines = []
    budget = next((s.budget for s in summaries if s.budget), None)
    cut = {s.dataset: s.cuts for s in summaries if s.cuts}
    if budget is not None:
        deadline = budget.get("deadline")
        over = isinstance(deadline, (int, float)) and (time.time() if now is None else now) >= deadline
        lines.append(
            f"budget {format_duration(float(budget.get('seconds', 0)))} from {str(budget.get('set', '?'))[11:19]} UTC: "
            f"{'ended' if over else 'ends'} at {_clock(deadline)}"
        )
    if cut:
        lines.append(
            "cut short: "
            + ", ".join(
                f"{d} {sum(n.values())} ({', '.join(f'{k} {v}' for k, v in n.items())})" for d, n in cut.items()
            )
        )
    for s in summaries:
        if s.stopped:
            st = s.stopped
            lines.append(
                f"{s.dataset}: stopped on convergence at trial {st.get('trial')} ({str(st.get('at', '?'))[:19]} UTC; "
                f"no improvement > {st.get('min_delta')} in {st.get('patience')} finished trials)"
            )
    return lines


def mlflow_links(
    sweep: str, experiment_id: str, tracking_uri: str | None, *, port: int = UI_PORT, served: bool = False
) -> list[str]:
    """The links that open a sweep's studies and best trials in MLflow's UI: on the tracking
    server itself, or on 'sweep ui' for a local store (``served``: it is up now)."""
    from studies.tracking import link_lines, server_base

    base = server_base(tracking_uri)
    lines = link_lines(base or f"http://{UI_HOST}:{port}", experiment_id, sweep)
    if base is None and not served:
        lines.append(f"  (served on {UI_HOST}:{port} by: {_ui_command(tracking_uri)})")
    return lines


def _ui_command(tracking_uri: str | None) -> str:
    """The ``sweep ui`` that serves the local store ``tracking_uri``: a store other than this
    folder's ``mlflow.db`` is named (its password masked: never printed)."""
    import os
    import shlex

    from studies.storage import redact

    here = ("sqlite:///mlflow.db", f"sqlite:///{os.path.abspath('mlflow.db')}")
    if tracking_uri is None or tracking_uri in here:
        return "sweep ui"
    return f"sweep ui --tracking-uri {shlex.quote(redact(tracking_uri))}"


def mlflow_end(sweep: str, status: MlflowStatus | None) -> int:
    """Print the sweep's MLflow links and what MLflow lacks; returns the command's exit code
    (:data:`EXIT_MLFLOW_INCOMPLETE` when MLflow did not get every run this process should write)."""
    if status is None:
        return 0
    if status.experiment_id is not None:
        click.echo("\n".join(mlflow_links(sweep, status.experiment_id, status.tracking_uri)))
    if status.incomplete:
        if status.failing and status.failure and status.stopped is None:
            click.echo(f"Warning: {status.failure}", err=True)  # the cause, and the 'sweep sync' to run
            return EXIT_MLFLOW_INCOMPLETE
        why = status.stopped or ("MLflow failed" if status.failing else "not written in time")
        missing = f"{status.mine} run(s)" if status.mine and not status.failing else "runs"
        click.echo(
            f"Warning: MLflow is missing {missing} of this sweep ({why}); the storage has every trial. "
            f"Run 'sweep sync {sweep}' to write them.",
            err=True,
        )
        return EXIT_MLFLOW_INCOMPLETE
    if status.stale_figures:
        click.echo(
            f"MLflow: the summary figures of {status.stale_figures} stud"
            f"{'y were' if status.stale_figures == 1 else 'ies were'} drawn before their last trials "
            f"finished; 'sweep sync {sweep}' redraws them.",
            err=True,
        )
    return 0
