"""What a study's parent run says in MLflow's UI: its description (the study's summary, as
Markdown in ``mlflow.note.content``), its summary figures (artifacts under ``figures/``), and
the experiment's two shared views (the studies, the best trials) that the printed links open.

Builders only, plus :class:`FigureSchedule`; :mod:`studies.tracking.tracker` writes through MLflow's client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from optuna.trial import FrozenTrial

from studies.sweep import CURVE_OBJECTIVES, StudySummary, SweepStudy
from studies.tracking import _ui_compat as ui
from studies.tracking.runs import KIND

__all__ = [
    "NOTE",
    "BEST",
    "SHARE_TAG",
    "STUDIES_VIEW",
    "BEST_VIEW",
    "FIGURE_SECONDS",
    "md_escape",
    "describe",
    "best_params",
    "best_trial",
    "figure",
    "figure_names",
    "views",
    "view_params",
    "FigureSchedule",
    "Links",
    "links",
    "link_lines",
]

NOTE = "mlflow.note.content"  # the run's description, rendered as Markdown by the UI
BEST = "sweeps.best"  # 'true' on the child run of its study's best trial, 'false' once it is no longer
SHARE_TAG = ui.SHARE_TAG  # + a view's key: the experiment tag holding that shared view
STUDIES_VIEW, BEST_VIEW = "sweeps-studies", "sweeps-best-trials"  # shared views' keys
FIGURE_SECONDS = 120.0  # a running study's figures are drawn again at most this often
DASHBOARD_TREES = 16  # fANOVA's forest for the parent runs' importances figure
_VIEW_PARAMS = 100  # columns at most: a view is an experiment tag (MLflow keeps up to 20,000 characters)
_NOTE_LIMIT = 7900  # MLflow keeps a tag's value up to 8000 characters
_MD_SPECIAL = set("\\`*_{}[]()<>#+!|~&$")


def md_escape(text: object) -> str:
    """A user's string as literal Markdown text: special characters as HTML entities (safe in
    table cells and inline), newlines as spaces."""
    s = " ".join(str(text).splitlines())
    return "".join(f"&#{ord(c)};" if c in _MD_SPECIAL else c for c in s)


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def best_trial(study: SweepStudy, summary: StudySummary) -> tuple[int | None, str, float | None]:
    """(trial number, objective, value) of the study's best: with several objectives, the front's
    best in the first learned objective (as in the report)."""
    if summary.front is None:
        return summary.best_trial, study.objectives[0], summary.best_value
    name = next((n for n in study.objectives if n in CURVE_OBJECTIVES), study.objectives[0])
    f = summary.best_of(name)
    return (None, name, None) if f is None else (f.number, name, f.values[study.objectives.index(name)])


def best_params(study: SweepStudy, summary: StudySummary) -> dict[str, object]:
    """The parameters of :func:`best_trial`'s trial (``{}`` if none)."""
    if summary.front is None:
        return dict(summary.best_params)
    number = best_trial(study, summary)[0]
    return next((dict(f.params) for f in summary.front if f.number == number), {})


def describe(
    study: SweepStudy,
    summary: StudySummary,
    trials: list[FrozenTrial],
    *,
    sweep: str,
    figures: int | None = None,
    stride: int = 1,
) -> str:
    """The parent run's description: best value and parameters, counts by outcome, divergence
    boundary, where the figures (drawn with ``figures`` finished trials), the curves (every
    ``stride``-th epoch in the child runs, all in a file) and the report are. User strings are escaped."""
    lines = [
        f"**Study {md_escape(study.name)}**: {summary.finished} of {summary.total} trials finished "
        f"(objective {md_escape(', '.join(study.objectives))}, {md_escape(study.direction)}).",
        "",
    ]
    number, name, value = best_trial(study, summary)
    params = best_params(study, summary)
    if number is None:
        lines += ["**Best**: no complete trial yet.", ""]
    else:
        lines += [
            f"**Best {md_escape(name)}: {md_escape(_fmt(value))}** (trial {number}, its run tagged `{BEST}=true`)",
            "",
            "| parameter | value |",
            "|---|---|",
        ]
        lines += [f"| {md_escape(k)} | {md_escape(_fmt(v))} |" for k, v in params.items()]
        lines.append("")
    if summary.front is not None:
        lines += [
            f"**Pareto front**: {len(summary.front)} trial(s) (`pareto_front.json`, runs tagged `pareto=true`).",
            "",
        ]
    counts = ", ".join(f"{o} {summary.counts.get(o, 0)}" for o in ("complete", "pruned", "diverged", "failed"))
    if summary.counts.get("cut"):  # by a time budget or the study's stop (its tag 'cut' says which)
        counts += f", cut {summary.counts['cut']}"
    running = summary.counts.get("running", 0)
    lines += [f"**Outcomes**: {counts}" + (f" (running {running})" if running else "") + ".", ""]
    if summary.stopped is not None:
        lines += [f"**Stopped on convergence** at trial {md_escape(str(summary.stopped.get('trial')))}.", ""]
    from studies.reports import divergence_boundary

    stable, lowest = divergence_boundary(trials)
    if lowest is None:
        lines += ["**Divergence boundary**: no trial diverged.", ""]
    else:
        below = "none" if stable is None else f"{stable:.4g}"
        lines += [
            f"**Divergence boundary**: the lowest learning rate that diverged is {lowest:.4g}; the largest "
            f"below it that trained without diverging is {below}.",
            "",
        ]
    sync = f"`sweep sync {md_escape(sweep)}`"
    if figures is None:
        when = f"not drawn by this writer yet; {sync} draws them"
    elif figures < summary.finished:
        when = f"drawn with {figures} of the {summary.finished} finished trials; {sync} draws them with all"
    else:
        when = f"drawn with all {figures} finished trials"
    lines += [
        "**Figures**: the Artifacts tab, `figures/` (history, importances, parallel coordinates, divergence map"
        + (", Pareto front" if summary.front is not None else "")
        + f"), {when}.",
        "",
        f"**Curves**: each trial's child run holds its curves at chart resolution (every "
        f"{'epoch' if stride == 1 else f'{stride} epochs'}, plus its first, last and best epochs); every "
        f"epoch of every finished "
        f"trial is in `curves.parquet` (Artifacts tab) once the study has finished, and in the storage.",
        "",
        f"**Report**: `sweep report {md_escape(sweep)}` writes the full report and attaches it to this "
        f"run as `report/report.html` (Artifacts tab).",
    ]
    text = "\n".join(lines)
    return text if len(text) <= _NOTE_LIMIT else text[: _NOTE_LIMIT - 20].rsplit("\n", 1)[0] + "\n\n(cut short)"


def figure_names(trials: list[FrozenTrial], summary: StudySummary, *, importances: bool) -> list[str]:
    """The summary figures a study gets now (file names, drawn one at a time by :func:`figure`);
    ``importances``: with fANOVA's (drawn once a study closes or finishes)."""
    names = ["history.png"]
    if importances:
        names.append("importances.png")
    if any(t.params for t in trials):
        names.append("parallel_coordinates.png")
    if any("learning_rate" in t.params for t in trials):
        names.append("divergence_map.png")
    if summary.front is not None:
        names.append("pareto_front.png")
    return names


def figure(name: str, study: SweepStudy, trials: list[FrozenTrial], summary: StudySummary) -> bytes | None:
    """One summary figure (:func:`figure_names`) as PNG, drawn by the report's code (``None``:
    nothing to draw, e.g. no importances from fewer than 4 complete trials)."""
    from studies.reports import divergence_boundary, importances_of
    from studies.reports import figures as fig
    from studies.sweep import pareto_front

    _, objective, _ = best_trial(study, summary)
    index = study.objectives.index(objective)
    if name == "history.png":
        direction = study.directions[index] if study.directions else study.direction
        return fig.history(trials, direction, objective, index=index)
    if name == "importances.png":
        # A quick look: 16 trees instead of the report's 64 (a quarter of the CPU; 'sweep report' has the full one).
        values = importances_of(study, trials, index, n_trees=DASHBOARD_TREES)[0]
        return fig.importances(values) if values else None
    if name == "parallel_coordinates.png":
        direction = study.directions[index] if study.directions else study.direction
        params = sorted({p for t in trials for p in t.params})
        return fig.parallel_coordinates(trials, params, objective, direction, index=index)
    if name == "divergence_map.png":
        return fig.divergence_map(trials, divergence_boundary(trials)[0])
    if name == "pareto_front.png":
        return fig.pareto(trials, pareto_front(trials, study.directions), study.objectives, study.directions)
    raise KeyError(name)


@dataclass
class FigureSchedule:
    """When a study's figures are drawn: once it has finished (and at a last sync, if it has new
    trials), and while it runs every ``seconds`` at most, the first time ``seconds`` after the
    writer first saw it: a sweep shorter than that draws each study's figures once, at its end.

    ``cost`` is what drawing one figure took last time (seconds): a run's last sync draws only
    those that fit before its deadline (:meth:`studies.tracking.parents.ParentRuns.draw_next`).
    """

    seconds: float = FIGURE_SECONDS
    cost: float = 0.3
    _drawn: dict[str, tuple[int, float]] = field(default_factory=dict)  # study -> (finished, when)
    _seen: dict[str, float] = field(default_factory=dict)  # study -> when first seen with trials
    _closing: set[str] = field(default_factory=set)  # studies drawn when their last trials were running

    def drawn_with(self, study: str) -> int | None:
        """The finished trials the study's figures were last drawn with (``None``: not by this writer)."""
        last = self._drawn.get(study)
        return None if last is None else last[0]

    def due(
        self, study: str, finished: int, total: int, *, final: bool, running: int = 0, now: float | None = None
    ) -> bool:
        """Whether to draw now: a study that finished, a last sync, a study whose last trials are
        all running (closing: drawn then once, so that a run's end need not wait for them), else
        every ``seconds``."""
        now = time.monotonic() if now is None else now
        if finished == 0:
            return False
        last = self._drawn.get(study)
        if last is not None and last[0] == finished:
            return False
        if final or finished >= total:
            return True
        if finished + running >= total and study not in self._closing:
            self._closing.add(study)
            return True
        since = last[1] if last is not None else self._seen.setdefault(study, now)
        return now - since >= self.seconds

    def drawn(self, study: str, finished: int, *, now: float | None = None, seconds: float | None = None) -> None:
        self._drawn[study] = (finished, time.monotonic() if now is None else now)
        if seconds is not None:
            self.cost = seconds


def views(params: list[str], objectives: tuple[str, ...]) -> dict[str, str]:
    """The experiment's two shared views (key -> JSON): the studies' parent runs with their
    best value and parameters, and the best trials' child runs with theirs. The table groups
    its columns (metrics, parameters, tags): the counts by outcome, metrics too, would stand
    between the best value and the parameters, so they are left to the description."""
    multi = len(objectives) > 1
    parent = [f"best_{o}" for o in objectives] + ["front_size"] if multi else ["best_value"]
    child = [f"value.{o}" for o in objectives] if multi else ["value"]
    studies = ui.view_state(
        search=f"tags.`{KIND}` = 'study'",
        order_by=ui.column("attributes", "start_time"),
        ascending=True,
        columns=[
            *[ui.column("metrics", m) for m in parent],
            *[ui.column("tags", f"best.{p}") for p in params],
            ui.column("tags", "best_trial"),
        ],
    )
    best = ui.view_state(
        search=f"tags.`{BEST}` = 'true'",
        order_by=ui.column("attributes", "start_time"),
        ascending=True,
        columns=[
            ui.column("tags", "dataset"),
            ui.column("tags", "trial_number"),
            *[ui.column("metrics", m) for m in child],
            *[ui.column("params", p) for p in params],
        ],
    )
    return {STUDIES_VIEW: studies, BEST_VIEW: best}


def view_params(best_params: list[dict[str, object]]) -> list[str]:
    """The parameters shown as columns: those of every study's best trial, in first-seen order."""
    seen: dict[str, None] = {}
    for params in best_params:
        for k in params:
            seen.setdefault(k, None)
    return list(seen)[:_VIEW_PARAMS]


@dataclass(frozen=True)
class Links:
    studies: str
    best: str


def links(base: str, experiment_id: str) -> Links:
    """The two links: the studies' parent runs, and their best trials, with the useful columns."""
    return Links(ui.runs_url(base, experiment_id, STUDIES_VIEW), ui.runs_url(base, experiment_id, BEST_VIEW))


def link_lines(base: str, experiment_id: str, sweep: str) -> list[str]:
    """What ``sweep run`` and ``sweep ui`` print: the sweep's two links."""
    found = links(base, experiment_id)
    return [f"MLflow, sweep {sweep!r}:", f"  studies:     {found.studies}", f"  best trials: {found.best}"]
