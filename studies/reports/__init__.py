"""``build_report``: a sweep's research report (HTML, Markdown with PNGs, CSV), from the storage."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass

import optuna
import tomli_w

from studies.files import prepare_folder, write_atomic
from studies.outcomes import outcome_of
from studies.reports import figures
from studies.reports.data import DatasetReport, SweepReport, gather, trial_rows
from studies.reports.render import Code, Heading, Image, Table, Text, to_html, to_markdown

__all__ = ["ReportFiles", "build_report"]


@dataclass(frozen=True)
class ReportFiles:
    html: str
    markdown: str
    csv: str
    figures: tuple[str, ...]


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


def _dataset_blocks(i: int, d: DatasetReport, objective: str) -> list:
    s, blocks = d.summary, []
    blocks.append(Heading(2, f"Dataset {s.dataset} (study {s.study})"))
    if d.retrained is not None:
        ds = d.retrained.dataset
        inputs = "" if ds.features == ("linear",) else f" (the best trial's feature families {'+'.join(ds.features)})"
        blocks.append(Text(f"{ds.task} task, {ds.n_features} input features{inputs} ({', '.join(ds.feature_names)}), "
                           f"{len(ds.y_train)}/{len(ds.y_val)}/{len(ds.y_test)} train/validation/test rows."))
    blocks.append(Table(["outcome", "trials"], [[o, n] for o, n in s.counts.items()] + [["total wanted", s.total]]))
    if d.best is None:
        blocks.append(Text("No complete trial yet."))
    else:
        run = d.best.user_attrs.get("run", {})
        blocks.append(Heading(3, f"Best trial: {run.get('label', d.best.number)} ({objective} {_fmt(s.best_value)})"))
        blocks.append(Table(["hyperparameter", "value"], [[k, v] for k, v in d.best.params.items()]))
        blocks.append(Image(f"{i}-best-curves.png", figures.curves([d.best], "Best trial: cost per epoch"),
                            f"cost curves of the best trial of {s.dataset}"))
        if d.test_score:
            extra = ", ".join(f"{k} {v:.4g}" for k, v in d.test_score.items())
            blocks.append(Text(f"Held-out test score of the best configuration, retrained from scratch with its "
                               f"recorded seed (the test split's only use): {extra}."))
    blocks.append(Image(f"{i}-history.png", figures.history(d.trials, s.direction, objective),
                        f"optimization history of {s.dataset}"))
    if d.importances:
        blocks.append(Image(f"{i}-importances.png", figures.importances(d.importances),
                            f"hyperparameter importances of {s.dataset}"))
    else:
        blocks.append(Text(f"Hyperparameter importances: {d.importance_note}"))
    params = sorted({p for t in d.trials for p in t.params})
    if params:
        blocks.append(Image(f"{i}-slices.png", figures.slices(d.trials, params, objective), f"slice plot of {s.dataset}"))
    sign = -1 if s.direction == "maximize" else 1
    top = sorted((t for t in d.trials if outcome_of(t) == "complete" and t.value is not None),
                 key=lambda t: sign * t.value)[:3]
    if top:
        blocks.append(Image(f"{i}-top-curves.png", figures.curves(top, "Top trials: train (dashed) and validation cost"),
                            f"cost curves of the top trials of {s.dataset}"))
    diverged = [t for t in d.trials if outcome_of(t) == "diverged"][:3]
    if diverged:
        blocks.append(Image(f"{i}-diverged-curves.png",
                            figures.curves(diverged, "Diverged trials (dotted line: where they diverged)"),
                            f"cost curves of diverged trials of {s.dataset}"))
    if any("learning_rate" in t.params for t in d.trials):
        blocks.append(Image(f"{i}-divergence-map.png", figures.divergence_map(d.trials, d.stable_lr),
                            f"divergence map of {s.dataset}"))
    if d.lowest_diverged_lr is None:
        blocks.append(Text("No trial diverged."))
    else:
        stable = "none" if d.stable_lr is None else f"{d.stable_lr:.4g}"
        blocks.append(Text(f"The lowest learning rate that diverged: {d.lowest_diverged_lr:.4g}; the largest "
                           f"learning rate below it that trained without diverging: {stable}."))
    r = d.retrained
    if (r is not None and r.dataset.n_raw_features == 2 and r.dataset.task != "regression"
            and r.history.divergence is None):
        blocks.append(Image(f"{i}-decision-boundary.png", figures.decision_boundary(r.model, r.dataset),
                            f"decision boundary of the best network on {s.dataset}"))
    return blocks


def _blocks(report: SweepReport) -> list:
    cfg = report.config
    objective = str(cfg.get("objective", "val_cost"))
    blocks: list = [Text(f"Objective: {objective} ({report.datasets[0].summary.direction if report.datasets else '-'}), "
                         f"{len(report.datasets)} dataset(s), sampler {cfg.get('sampler', {}).get('name')}, "
                         f"pruner {cfg.get('pruner', {}).get('name')}.")]
    blocks.append(Heading(2, "Across datasets"))
    blocks.append(Table(
        ["dataset", "finished", f"best {objective}", "test score (best, retrained)", "winning settings"],
        [[d.summary.dataset, f"{d.summary.finished}/{d.summary.total}", d.summary.best_value, _test(d),
          _params(d.summary.best_params)] for d in report.datasets],
    ))
    for i, d in enumerate(report.datasets):
        blocks += _dataset_blocks(i, d, objective)
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
    md_path = write_atomic(os.path.join(out_dir, "report.md"), md)
    html_path = write_atomic(os.path.join(out_dir, "report.html"), to_html(title, blocks))
    return ReportFiles(html=html_path, markdown=md_path, csv=csv_path, figures=tuple(written))
