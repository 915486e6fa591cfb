"""A sweep's parent runs in MLflow, one per study: created once, kept current (best value,
counts, the Pareto front), and, with the dashboard on, their descriptions, the best trials'
tags, the summary figures and the experiment's shared views (:mod:`studies.tracking.dashboard`).

Written only by the holder of the parents' lease (:class:`studies.tracking.tracker.Tracker`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, overload

from optuna.trial import FrozenTrial

from studies.sweep import FINISHED, StudySummary, SweepStudy, curve_rows, curve_stride, outcome_of, summarize_study
from studies.tracking import dashboard as dash
from studies.tracking.connection import MlflowConnection
from studies.tracking.runs import KIND, STUDY, TRIAL, parent_content

__all__ = ["ParentRuns", "CURVES_FILE", "CURVES_TAG", "FIGURES_TAG"]

CURVES_FILE = "curves.parquet"  # a parent run's artifact: every epoch of its study's finished trials
CURVES_TAG = "sweeps.curves"  # on the parent run: how many finished trials that file holds
# On the parent run: how many finished trials its summary figures were last drawn with (by any
# writer: a later run or 'sweep sync' knows they are current, and neither redraws nor warns).
FIGURES_TAG = "sweeps.figures"
# A figure waits at most this long for a sync with no run to write (runs go first: MLflow keeps
# pace); then one is drawn anyway, so that a writer never idle still draws them.
FIGURE_WAIT_SECONDS = 10.0


class ParentRuns:
    """The parent runs of one sweep's studies, and what is kept current on them.

    Args:
        mlflow: the connection (its client and experiment).
        sweep: the sweep's name.
        warn: called with a one-line warning (a figure that could not be drawn, once).
        dashboard: keep descriptions, best-trial tags, figures and shared views current.
    """

    def __init__(
        self, mlflow: MlflowConnection, sweep: str, *, warn: Callable[[str], None], dashboard: bool = True
    ) -> None:
        self.mlflow = mlflow
        self.sweep = sweep
        self.dashboard = dashboard
        self._warn = warn
        self._figures_warned = False  # once per writer
        self.forget()

    def forget(self) -> None:
        """Drop what was learned of MLflow (a new store, or the parents' lease lost)."""
        self._parents: dict[str, str] = {}  # study -> its parent run
        self._curves: dict[str, int] = {}  # study -> finished trials in its parent's curves file
        self._finished: dict[str, int] = {}  # study -> its finished trials at the last update
        self._pending: dict[str, _Drawing] = {}  # study -> its figures queued, not drawn yet
        self._best: dict[str, tuple[int | None, int, int | None]] = {}
        self._fronts: dict[str, tuple[tuple, dict[int, str]]] = {}  # study -> (front's key, trial -> run tagged on it)
        self._best_runs: dict[str, dict[int, str]] = {}  # study -> trial -> its run, tagged sweeps.best=true
        self._views: dict[str, str] = {}  # shared view key -> the JSON last written
        self._figures = dash.FigureSchedule()

    def stale_figures(self) -> int:
        """Studies whose figures (drawn by this writer) miss some of their finished trials."""
        return sum(
            1
            for study, finished in self._finished.items()
            if self.dashboard and (self._figures.drawn_with(study) or 0) < finished
        )

    def known(self, study: str, run_id: str, tags: dict[str, str] | None = None) -> None:
        """A parent run found while reading the study's runs (``tags``: its tags)."""
        self._parents.setdefault(study, run_id)
        written = (tags or {}).get(CURVES_TAG, "")
        if written.isdigit():
            self._curves.setdefault(study, int(written))
        drawn = (tags or {}).get(FIGURES_TAG, "")
        if drawn.isdigit() and self._figures.drawn_with(study) is None:
            self._figures.drawn(study, int(drawn))

    @overload
    def get(self, study: SweepStudy, *, create: Literal[True]) -> str: ...

    @overload
    def get(self, study: SweepStudy, *, create: bool) -> str | None: ...

    def get(self, study: SweepStudy, *, create: bool) -> str | None:
        """The study's parent run (created, with its parameters and sweep.json, if ``create``)."""
        run_id = self._parents.get(study.name)
        if run_id is not None:
            return run_id
        for run in self._find_runs(study.name, f"tags.`{KIND}` = 'study'"):
            self.known(study.name, run.info.run_id, run.data.tags)
            return self._parents[study.name]
        if not create:
            return None
        from mlflow.entities import Param

        client, cfg = self.mlflow.client, study.sweep
        run = client.create_run(
            self.mlflow.experiment,
            run_name=study.dataset,
            tags={KIND: "study", STUDY: study.name, "dataset": study.dataset, "sweep": self.sweep},
        )
        run_id = self._parents[study.name] = run.info.run_id
        params = {
            "dataset": study.dataset,
            "seed": cfg.seed,
            "objective": cfg.objective,
            "direction": study.direction,
            "sampler": cfg.sampler.name,
            "pruner": cfg.pruner.name,
        }
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        client.log_dict(run_id, study.config, "sweep.json")
        return run_id

    def update(self, study: SweepStudy, trials: list[FrozenTrial], *, final: bool) -> dict[str, object]:
        """Bring the parent run up to date (its figures are queued: :meth:`draw_next`); returns
        its best trial's parameters. ``final``: a last sync (the figures brought up to date)."""
        from mlflow.entities import RunTag

        parent = self.get(study, create=True)
        summary = summarize_study(study, trials)
        self._finished[study.name] = summary.finished
        if summary.front is not None:
            self._update_front(study, parent, summary)
        if summary.done() and self._curves.get(study.name) != summary.finished:
            self._log_curves(study, parent, trials, summary.finished)
        if self.dashboard:
            self._mark_best(study, summary)
            self._schedule(study, parent, trials, summary, final=final)
        best = dash.best_params(study, summary)
        drawn = self._figures.drawn_with(study.name)
        key = (summary.best_trial, summary.finished, drawn)
        if self._best.get(study.name) == key and not final:
            return best
        metrics, tags = parent_content(summary)
        if self.dashboard:
            stride = curve_stride(study.sweep.space.max_epochs(), study.sweep.curve_points)
            tags.append(
                RunTag(dash.NOTE, dash.describe(study, summary, trials, sweep=self.sweep, figures=drawn, stride=stride))
            )
        self.mlflow.client.log_batch(parent, metrics=metrics, tags=tags)
        if summary.done():  # its total, its stop on convergence, or the sweep's deadline
            self.mlflow.client.set_terminated(parent, status="FINISHED")
        self._best[study.name] = key
        return best

    def _mark_best(self, study: SweepStudy, summary: StudySummary) -> None:
        """Tag the child run of the study's best trial ``sweeps.best=true``, and any run that was
        the best ``false`` (a best trial whose run is not written yet is tagged at a later update)."""
        number = dash.best_trial(study, summary)[0]
        tagged = self._best_runs.get(study.name)
        if tagged is None:
            tagged = self._tagged(study.name, dash.BEST)
        self._best_runs[study.name] = self._move_tag(
            study.name, dash.BEST, set() if number is None else {number}, tagged
        )

    def _tagged(self, study: str, tag: str) -> dict[int, str]:
        """What an earlier writer tagged ``tag=true``: trial number -> its child run."""
        return {
            int(r.data.tags[TRIAL]): r.info.run_id
            for r in self._find_runs(study, f"tags.`{KIND}` = 'trial' and tags.`{tag}` = 'true'")
        }

    def _move_tag(self, study: str, tag: str, wanted: set[int], tagged: dict[int, str]) -> dict[int, str]:
        """Tag the child runs of the trials ``wanted`` ``tag=true``, and those in ``tagged`` (trial
        number -> run, tagged true) that are no longer wanted ``false``; returns the runs tagged
        true now. A wanted trial whose run is not written yet is tagged at a later call."""
        for number in sorted(set(tagged) - wanted):
            self.mlflow.client.set_tag(tagged.pop(number), tag, "false")
        for number in sorted(wanted - set(tagged)):
            run = next(iter(self._find_runs(study, f"tags.`{KIND}` = 'trial' and tags.`{TRIAL}` = '{number}'")), None)
            if run is not None:
                self.mlflow.client.set_tag(run.info.run_id, tag, "true")
                tagged[number] = run.info.run_id
        return tagged

    def log_model(self, parent: str, path: str) -> None:
        """The study's best network, retrained by the report (an ``engine`` model file), as the
        parent run's artifact ``model/<file>``."""
        self.mlflow.client.log_artifact(parent, path, "model")

    def _log_curves(self, study: SweepStudy, parent: str, trials: list[FrozenTrial], finished: int) -> None:
        """Every epoch of every finished trial's curves as one Parquet file, ``curves.parquet``
        (MLflow's runs hold them at chart resolution): logged when the study finishes."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        from mlflow.entities import RunTag

        rows = curve_rows(
            (study.dataset, t.number, t.user_attrs.get("run", {}).get("curves", {}), t.user_attrs.get("divergence"))
            for t in sorted(trials, key=lambda t: t.number)
            if outcome_of(t) in FINISHED
        )
        with tempfile.TemporaryDirectory(prefix="sweeps-curves-") as folder:
            path = os.path.join(folder, CURVES_FILE)
            pq.write_table(pa.table(rows), path, compression="zstd")
            self.mlflow.client.log_artifact(parent, path)
        self.mlflow.client.log_batch(parent, tags=[RunTag(CURVES_TAG, str(finished))])
        self._curves[study.name] = finished

    def _schedule(
        self, study: SweepStudy, parent: str, trials: list[FrozenTrial], summary: StudySummary, *, final: bool
    ) -> None:
        """Queue the study's summary figures when they are due (not at every sync: when it closes
        or finishes, at a last sync, else at most every ``FIGURE_SECONDS``); :meth:`draw_next`
        draws them one at a time, when the writer has no run to write."""
        pending = self._pending.get(study.name)
        if pending is not None and pending.summary.finished == summary.finished:
            return
        # stopped, or past the deadline, and its last trials (cut at their next epoch) ended: finished
        ended = summary.done() and not summary.counts.get("running")
        total = summary.finished if ended else summary.total
        if not self._figures.due(
            study.name, summary.finished, total, final=final, running=summary.counts.get("running", 0)
        ):
            return
        closing = summary.finished + summary.counts.get("running", 0) >= total
        names = dash.figure_names(trials, summary, importances=final or closing)
        queued = pending.queued if pending is not None else time.monotonic()
        self._pending[study.name] = _Drawing(study, parent, list(trials), summary, names, queued)

    def drawn_with(self, study: str) -> int | None:
        """The finished trials the study's figures were last drawn with (``None``: not by this writer)."""
        return self._figures.drawn_with(study)

    @property
    def figures_pending(self) -> bool:
        """Figures are queued (:meth:`draw_next` has work)."""
        return bool(self._pending)

    def figures_overdue(self, now: float | None = None) -> bool:
        """Figures have waited ``FIGURE_WAIT_SECONDS`` for a sync with no run to write: a writer
        that is never idle draws one anyway, now and then."""
        now = time.monotonic() if now is None else now
        return any(now - job.queued >= FIGURE_WAIT_SECONDS for job in self._pending.values())

    def draw_next(self, *, until: float | None = None) -> bool:
        """Draw and log one queued figure under ``figures/``, if one fits before the
        ``time.monotonic()`` ``until``; returns whether one was drawn."""
        if not self._pending or (until is not None and time.monotonic() + self._figures.cost > until):
            return False
        study_name, job = next(iter(self._pending.items()))
        name = job.names.pop(0)
        started = time.monotonic()
        try:
            png = dash.figure(name, job.study, job.trials, job.summary)
        except Exception as exc:  # noqa: BLE001 - a figure is a convenience: it never stops the tracking
            png, job.names = None, []  # not again until there are new trials
            if not self._figures_warned:
                self._figures_warned = True
                self._warn(
                    f"the summary figures of study {study_name!r} could not be drawn ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); its runs are written as usual."
                )
        if png is not None:
            with tempfile.TemporaryDirectory(prefix="sweeps-figures-") as folder:
                with open(os.path.join(folder, name), "wb") as f:
                    f.write(png)
                self.mlflow.client.log_artifact(job.parent, os.path.join(folder, name), "figures")
        self._figures.cost = time.monotonic() - started
        if not job.names:
            del self._pending[study_name]
            self._figures.drawn(study_name, job.summary.finished)
            if png is not None:  # all drawn (a figure that failed is not: the next trials try again)
                from mlflow.entities import RunTag

                self.mlflow.client.log_batch(job.parent, tags=[RunTag(FIGURES_TAG, str(job.summary.finished))])
        return True

    def update_views(self, studies: list[SweepStudy], best: list[dict[str, object]]) -> None:
        """Keep the experiment's shared views (what the printed links open) current."""
        for key, state in dash.views(dash.view_params(best), studies[0].objectives).items():
            if self._views.get(key) != state:
                self.mlflow.client.set_experiment_tag(self.mlflow.experiment, dash.SHARE_TAG + key, state)
                self._views[key] = state

    def _update_front(self, study: SweepStudy, parent: str, summary: StudySummary) -> None:
        """Several objectives: keep the Pareto front current on the parent run (``pareto_front.json``,
        the metrics ``front_size`` and ``best_<objective>``, the tag ``pareto_front``), and tag the
        child runs of the trials on it ``pareto=true`` (``false`` once a trial leaves it).

        A front trial whose run is not in MLflow yet is tagged at a later update (the last sync
        of a run writes every run first)."""
        from mlflow.entities import Metric, RunTag

        client = self.mlflow.client
        front = {f.number: f for f in summary.front or ()}
        key, tagged = self._fronts.get(study.name, (None, None))
        if tagged is None:
            tagged = self._tagged(study.name, "pareto")
        if key == (tuple(sorted(front)), tuple(sorted(tagged))):
            return
        tagged = self._move_tag(study.name, "pareto", set(front), tagged)
        self._fronts[study.name] = ((tuple(sorted(front)), tuple(sorted(tagged))), tagged)
        ts = int(time.time() * 1000)
        metrics = [Metric("front_size", float(len(front)), ts, summary.finished)]
        for i, name in enumerate(summary.objectives):
            best = summary.best_of(name)
            if best is not None:
                metrics.append(Metric(f"best_{name}", best.values[i], ts, summary.finished))
        numbers = ", ".join(map(str, sorted(front)))
        client.log_batch(parent, metrics=metrics, tags=[RunTag("pareto_front", numbers[:4900] or "-")])
        d = summary.to_dict()
        client.log_dict(parent, {k: d[k] for k in ("study", "objectives", "directions", "front")}, "pareto_front.json")

    def _find_runs(self, study: str, where: str):
        """The runs of ``study`` that also match ``where``, page by page."""
        token = None
        while True:
            page = self.mlflow.client.search_runs(
                [self.mlflow.experiment],
                filter_string=f"tags.`{STUDY}` = '{study}' and {where}",
                max_results=5000,
                page_token=token,
            )
            yield from page
            token = page.token
            if not token:
                return


@dataclass
class _Drawing:
    """A study's figures queued for drawing, from the trials of one update."""

    study: SweepStudy
    parent: str
    trials: list[FrozenTrial]
    summary: StudySummary
    names: list[str]
    queued: float  # time.monotonic() when the study's figures were first queued
