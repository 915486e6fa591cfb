"""``build_report``: a sweep's research report (HTML, Markdown with PNGs, CSV), from the storage."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from typing import Any

import optuna
import tomli_w

from engine import model_bytes
from studies.reports import figures
from studies.reports.data import DatasetReport, SweepReport, gather, trial_rows
from studies.reports.files import prepare_folder, write_atomic
from studies.reports.render import Code, Heading, Image, Table, Text, to_html, to_markdown
from studies.sweep import FINISHED, curve_rows, feasible, outcome_of

__all__ = ["MODEL_FILE", "ReportFiles", "build_report"]


@dataclass(frozen=True)
class ReportFiles:
    html: str
    markdown: str
    csv: str
    figures: tuple[str, ...]
    curves: str = ""  # every epoch of every finished trial's curves
    models: dict[str, str] = field(default_factory=dict)  # dataset -> its best network, retrained (.npz)


MODEL_FILE = "model-{dataset}.npz"  # the best network of a dataset, in the report's folder


_FRONT_ROWS = 50  # rows of a front's table in the report


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _params(params: dict[str, object]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items()) or "-"


def _test(d: DatasetReport) -> str:
    t = d.test_score
    if "test_accuracy" in t:
        return f"accuracy {t['test_accuracy']:.4f}"
    if "test_r2" in t:
        return f"R^2 {t['test_r2']:.4f}"
    return "-"


def _front_blocks(i: int, d: DatasetReport) -> list:
    """Several objectives: the Pareto figure and the front's table."""
    s, names = d.summary, d.objectives
    blocks: list = [Heading(3, f"Pareto front: {len(d.front)} trial(s)")]
    blocks.append(
        Image(f"{i}-pareto.png", figures.pareto(d.trials, d.front, names, s.directions), f"Pareto front of {s.dataset}")
    )
    shown = d.front[:_FRONT_ROWS]
    warm = bool(d.sources)
    rows = [
        [
            t.user_attrs.get("run", {}).get("label", f"t{t.number}"),
            *t.values,
            _params(t.params),
            *([d.sources.get(t.number, "-")] if warm else []),
        ]
        for t in shown
    ]
    blocks.append(Table(["trial", *names, "hyperparameters", *(["warm start from"] if warm else [])], rows))
    if len(d.front) > len(shown):
        blocks.append(
            Text(f"The first {len(shown)} of {len(d.front)} trials on the front (trials.csv has all, column 'pareto').")
        )
    return blocks


def _limit_blocks(d: DatasetReport) -> list:
    """What stopped the study short: the sweep's time budget (and the trials it cut, whose curves
    so far are in the figures and curves.csv), and its stop on convergence."""
    from studies.sweep import format_duration

    s, lines = d.summary, []
    if s.budget is not None:
        lines.append(
            f"Time budget {format_duration(float(s.budget.get('seconds', 0)))} from {s.budget.get('set')} "
            "(each run with a budget starts it again)."
        )
    if s.cuts:
        why = {"budget": "the budget ended", "trial_budget": "their own time limit", "stop": "the study stopped"}
        lines.append(
            "Trials cut short (state PRUNED, user attribute 'cut'): "
            + ", ".join(f"{n} by {why.get(k, k)}" for k, n in s.cuts.items())
            + "."
        )
    if s.stopped is not None:
        st = s.stopped
        lines.append(
            f"Stopped on convergence at trial {st.get('trial')} ({st.get('at')}): no improvement of the best value "
            f"by more than {st.get('min_delta')} in {st.get('patience')} finished trials."
        )
    return [Text(line) for line in lines]


def _dataset_blocks(i: int, d: DatasetReport) -> list:
    """One dataset's section: what it is, the counts, the front, the best trial, the figures,
    the divergence boundary, the warm start and the decision boundary."""
    s = d.summary
    blocks: list = [Heading(2, f"Dataset {s.dataset} (study {s.study})")]
    if d.retrained is not None:
        ds = d.retrained.dataset
        inputs = "" if ds.features == ("linear",) else f" (the best trial's feature families {'+'.join(ds.features)})"
        blocks.append(
            Text(
                f"{ds.task} task, {ds.n_features} input features{inputs} ({', '.join(ds.feature_names)}), "
                f"{len(ds.y_train)}/{len(ds.y_val)}/{len(ds.y_test)} train/validation/test rows."
            )
        )
    blocks.append(Table(["outcome", "trials"], [[o, n] for o, n in s.counts.items()] + [["total wanted", s.total]]))
    blocks += _limit_blocks(d)
    if s.front is not None:
        blocks += _front_blocks(i, d)
    blocks += _best_blocks(i, d)
    blocks += _figure_blocks(i, d)
    blocks += _divergence_blocks(i, d)
    blocks += _infeasible_blocks(d)
    if d.sources:
        blocks += _warm_blocks(d)
    r = d.retrained
    if (
        r is not None
        and r.dataset.n_raw_features == 2
        and r.dataset.task != "regression"
        and r.history.divergence is None
    ):
        blocks.append(
            Image(
                f"{i}-decision-boundary.png",
                figures.decision_boundary(r.model, r.dataset),
                f"decision boundary of the best network on {s.dataset}",
            )
        )
    return blocks


def _best_blocks(i: int, d: DatasetReport) -> list:
    """The best trial: its hyperparameters, its curves and the test score of its configuration."""
    if d.best is None:
        return [Text("No complete trial yet.")]
    objective = d.objectives[d.primary]
    run = d.best.user_attrs.get("run", {})
    which = f"Best trial by {objective}" if d.summary.front is not None else "Best trial"
    if d.summary.infeasible is not None:
        which = f"{which} among the feasible"
    rep = d.best.user_attrs.get("repeats") or {}
    spread = ""
    if rep.get("std"):
        spread = f" ± {_fmt(float(rep['std'][d.primary]))}, mean ± std over {len(rep['seeds'])} seeds"
    blocks: list = [
        Heading(3, f"{which}: {run.get('label', d.best.number)} ({objective} {_fmt(d.value(d.best))}{spread})")
    ]
    if rep.get("values"):
        per_seed = ", ".join(f"seed {s}: {_fmt(float(v[d.primary]))}" for s, v in zip(rep["seeds"], rep["values"]))
        blocks.append(Text(f"Each seed's {objective}: {per_seed}. The curves below: the mean, and each seed thin."))
    if d.best.number in d.sources:
        blocks.append(Text(f"Its configuration came from the warm start: {d.sources[d.best.number]}."))
    blocks.append(Table(["hyperparameter", "value"], [[k, v] for k, v in d.best.params.items()]))
    blocks.append(
        Image(
            f"{i}-best-curves.png",
            figures.curves([d.best], "Best trial: cost per epoch"),
            f"cost curves of the best trial of {d.summary.dataset}",
        )
    )
    if d.test_score:
        extra = ", ".join(f"{k} {v:.4g}" for k, v in d.test_score.items())
        blocks.append(
            Text(
                f"Held-out test score of the best configuration, retrained from scratch with its "
                f"recorded {'seeds (their mean and std)' if rep else 'seed'} (the test split's only use): {extra}. "
                f"This network is kept as {MODEL_FILE.format(dataset=d.summary.dataset)} beside the report "
                "(sweep predict uses it)."
            )
        )
    return blocks


def _figure_blocks(i: int, d: DatasetReport) -> list:
    """The optimization history, the importances, the slices, the parallel coordinates and the
    top trials' curves."""
    s, objective = d.summary, d.objectives[d.primary]
    direction = s.directions[d.primary] if s.directions else s.direction
    blocks: list = [
        Image(
            f"{i}-history.png",
            figures.history(d.trials, direction, objective, index=d.primary),
            f"optimization history of {s.dataset}",
        )
    ]
    if d.importances:
        blocks.append(
            Image(
                f"{i}-importances.png", figures.importances(d.importances), f"hyperparameter importances of {s.dataset}"
            )
        )
    else:
        blocks.append(Text(f"Hyperparameter importances: {d.importance_note}"))
    params = sorted({p for t in d.trials for p in t.params})
    if params:
        blocks.append(
            Image(
                f"{i}-slices.png",
                figures.slices(d.trials, params, objective, index=d.primary),
                f"slice plot of {s.dataset}",
            )
        )
        blocks.append(
            Image(
                f"{i}-parallel-coordinates.png",
                figures.parallel_coordinates(d.trials, params, objective, direction, index=d.primary),
                f"parallel coordinates of {s.dataset}",
            )
        )
    sign = -1 if direction == "maximize" else 1
    valued = [(v, t) for t in d.trials if (v := d.value(t)) is not None and feasible(t)]
    top = [t for _, t in sorted(valued, key=lambda vt: (sign * vt[0], vt[1].number))][:3]
    if top:
        blocks.append(
            Image(
                f"{i}-top-curves.png",
                figures.curves(top, "Top trials: train (dashed) and validation cost"),
                f"cost curves of the top trials of {s.dataset}",
            )
        )
    return blocks


_INFEASIBLE_ROWS = 20  # rows of the infeasible trials' table


def _infeasible_blocks(d: DatasetReport) -> list:
    """With constraints: the infeasible trials, apart (the best and the front are the feasible
    trials'), each with the bounds it broke."""
    if d.summary.infeasible is None:
        return []
    bad = [t for t in d.trials if t.user_attrs.get("feasible") is False and outcome_of(t) in FINISHED]
    bounds = ", ".join(f"{c.name} {c.to_dict()}" for c in d.study.sweep.constraints)
    blocks: list = [
        Heading(3, f"Constraints: {len(bad)} infeasible trial(s)"),
        Text(f"The sweep's bounds: {bounds}. The best trial and the front above are the feasible trials'."),
    ]
    if bad:
        rows = [
            [
                t.user_attrs.get("run", {}).get("label", f"t{t.number}"),
                outcome_of(t),
                ", ".join(f"{k} by {_fmt(v)}" for k, v in t.user_attrs.get("constraints", {}).items() if v > 0),
            ]
            for t in bad[:_INFEASIBLE_ROWS]
        ]
        blocks.append(Table(["trial", "outcome", "broken bounds"], rows))
        if len(bad) > len(rows):
            blocks.append(Text(f"The first {len(rows)} of {len(bad)} (trials.csv has all, column 'feasible')."))
    return blocks


def _divergence_blocks(i: int, d: DatasetReport) -> list:
    """The diverged trials' curves, the divergence map and the boundary in words."""
    s = d.summary
    blocks: list = []
    diverged = [t for t in d.trials if outcome_of(t) == "diverged"][:3]
    if diverged:
        blocks.append(
            Image(
                f"{i}-diverged-curves.png",
                figures.curves(diverged, "Diverged trials (dotted line: where they diverged)"),
                f"cost curves of diverged trials of {s.dataset}",
            )
        )
    if any("learning_rate" in t.params for t in d.trials):
        blocks.append(
            Image(
                f"{i}-divergence-map.png",
                figures.divergence_map(d.trials, d.stable_lr),
                f"divergence map of {s.dataset}",
            )
        )
    if d.lowest_diverged_lr is None:
        blocks.append(Text("No trial diverged."))
    else:
        stable = "none" if d.stable_lr is None else f"{d.stable_lr:.4g}"
        blocks.append(
            Text(
                f"The lowest learning rate that diverged: {d.lowest_diverged_lr:.4g}; the largest "
                f"learning rate below it that trained without diverging: {stable}."
            )
        )
    return blocks


def _warm_blocks(d: DatasetReport) -> list:
    """Which trials a warm start enqueued, where from, and how they ended."""
    rows = []
    for t in d.trials:
        if t.number in d.sources:
            values = ", ".join(_fmt(v) for v in t.values) if t.values and outcome_of(t) == "complete" else "-"
            rows.append([t.number, d.sources[t.number], outcome_of(t) or "withdrawn", values])
    return [
        Heading(3, "Warm start"),
        Text(
            f"{len(rows)} trial(s) started from the configurations of another sweep's study (enqueued before "
            f"any trial was sampled); the others were sampled."
        ),
        Table(["trial", "from (study #trial)", "outcome", "value(s)"], rows),
    ]


def _warm_summary(report: SweepReport) -> list:
    """The warm start as the sweep file gave it, and per dataset how many trials came from it."""
    ws = report.config.get("warm_start")
    if not isinstance(ws, dict):
        return []
    where = f" in {ws['storage']}" if ws.get("storage") else " (the same storage)"
    counts = ", ".join(f"{d.summary.dataset} {len(d.sources)}" for d in report.datasets)
    return [
        Text(
            f"Warm start: the top {ws.get('top')} configurations of each dataset's study of sweep "
            f"{ws.get('sweep')!r}{where}, enqueued before sampling; trials from it per dataset: {counts} "
            f"(a dataset with none started cold)."
        )
    ]


def _blocks(report: SweepReport) -> list:
    cfg: dict[str, Any] = report.config  # the sweep file, as stored
    objective = cfg.get("objective", "val_cost")
    names = (objective,) if isinstance(objective, str) else tuple(objective)
    directions = report.datasets[0].summary.directions if report.datasets else ()
    blocks: list = [
        Text(
            f"Objective{'s' if len(names) > 1 else ''}: "
            f"{', '.join(f'{n} ({d})' for n, d in zip(names, directions)) or names[0]}, "
            f"{len(report.datasets)} dataset(s), sampler {cfg.get('sampler', {}).get('name')}, "
            f"pruner {cfg.get('pruner', {}).get('name')}."
        )
    ]
    blocks += _warm_summary(report)
    blocks.append(Heading(2, "Across datasets"))
    if len(names) == 1:
        # Classification: the best trial's validation accuracy beside its cost.
        acc = objective != "val_accuracy" and any(d.summary.best_accuracy is not None for d in report.datasets)
        blocks.append(
            Table(
                [
                    "dataset",
                    "finished",
                    f"best {objective}",
                    *(["its val accuracy"] if acc else []),
                    "test score (best, retrained)",
                    "winning settings",
                ],
                [
                    [
                        d.summary.dataset,
                        f"{d.summary.finished}/{d.summary.total}",
                        d.summary.best_value,
                        *([d.summary.best_accuracy] if acc else []),
                        _test(d),
                        _params(d.summary.best_params),
                    ]
                    for d in report.datasets
                ],
            )
        )
    else:
        rows = []
        for d in report.datasets:
            bests = []
            for k, name in enumerate(names):
                f = d.summary.best_of(name)
                bests.append("-" if f is None else f"{_fmt(f.values[k])} (t{f.number})")
            rows.append(
                [
                    d.summary.dataset,
                    f"{d.summary.finished}/{d.summary.total}",
                    len(d.front),
                    *bests,
                    _test(d),
                    _params(d.best.params) if d.best is not None else "-",
                ]
            )
        primary = names[report.datasets[0].primary] if report.datasets else names[0]
        blocks.append(
            Table(
                [
                    "dataset",
                    "finished",
                    "front size",
                    *[f"best {n}" for n in names],
                    f"test score (best {primary}, retrained)",
                    f"settings of the best {primary}",
                ],
                rows,
            )
        )
    for i, d in enumerate(report.datasets):
        blocks += _dataset_blocks(i, d)
    blocks.append(Heading(2, "Environment"))
    blocks.append(Table(["", ""], [[k, v] for k, v in report.env.items()]))
    blocks.append(Heading(2, "The sweep file as it was run"))
    blocks.append(Code(tomli_w.dumps(cfg)))
    return blocks


def build_report(storage: optuna.storages.BaseStorage, name: str, *, out_dir: str) -> ReportFiles:
    """Write ``report.html`` (self-contained), ``report.md`` with ``figures/*.png``, and
    ``trials.csv`` into ``out_dir``; returns their paths."""
    prepare_folder(out_dir, subfolders=("figures",), create=False)  # a bad '--out' is refused before the work
    report = gather(storage, name)
    blocks = _blocks(report)
    title = f"Sweep {name}"
    md, files = to_markdown(title, blocks, "figures")
    header, rows = trial_rows(report)
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=header)
    writer.writeheader()
    writer.writerows(rows)
    prepare_folder(out_dir, subfolders=("figures",))
    written = [write_atomic(os.path.join(out_dir, rel), png) for rel, png in files.items()]
    csv_path = write_atomic(os.path.join(out_dir, "trials.csv"), table.getvalue())
    curves_path = write_atomic(os.path.join(out_dir, "curves.csv"), _curves_csv(report))
    models = _write_models(report, out_dir)
    md_path = write_atomic(os.path.join(out_dir, "report.md"), md)
    html_path = write_atomic(os.path.join(out_dir, "report.html"), to_html(title, blocks))
    return ReportFiles(
        html=html_path, markdown=md_path, csv=csv_path, figures=tuple(written), curves=curves_path, models=models
    )


def _write_models(report: SweepReport, out_dir: str) -> dict[str, str]:
    """Each dataset's retrained best network (unless it diverged) as ``model-<dataset>.npz``
    (``engine.load_model`` reads it; ``sweep predict`` predicts with it)."""
    models = {}
    for d in report.datasets:
        r = d.retrained
        if r is None or r.history.divergence is not None:
            continue
        name = MODEL_FILE.format(dataset=d.study.dataset)
        if os.path.basename(name) != name or name.startswith("."):  # a dataset's name is plain; never a path
            continue
        models[d.study.dataset] = write_atomic(os.path.join(out_dir, name), model_bytes(r.model, r.dataset))
    return models


def _curves_csv(report: SweepReport) -> str:
    """``curves.csv``: every epoch of every finished trial, one row per trial and epoch (a
    diverged trial's last row: the epoch that diverged and the value that crossed the threshold)."""
    columns = curve_rows(
        (d.summary.dataset, t.number, t.user_attrs.get("run", {}).get("curves", {}), t.user_attrs.get("divergence"))
        for d in report.datasets
        for t in sorted(d.trials, key=lambda t: t.number)
        if outcome_of(t) in FINISHED
    )
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(list(columns))
    writer.writerows(zip(*columns.values()))
    return out.getvalue()
