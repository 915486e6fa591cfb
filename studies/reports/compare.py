"""``build_comparison``: several sweeps side by side (HTML and Markdown with PNGs), from their
storages: per dataset the overlaid optimization histories, each sweep's best value with a
bootstrap interval, the trials it took to come within 5% of its best, the test score of its
best configuration, and how the sweep files differ.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass, field

import numpy as np
import optuna
import tomli_w
from optuna.trial import FrozenTrial

from studies.errors import SweepsError
from studies.reports import figures
from studies.reports.data import score_on_test
from studies.reports.files import prepare_folder, write_atomic
from studies.reports.render import Code, Heading, Image, Table, Text, to_html, to_markdown
from studies.search import recorded_data, retrain
from studies.sweep import CURVE_OBJECTIVES, FINISHED, SweepStudy, outcome_of, require_sweep

__all__ = ["CompareFiles", "SweptRef", "build_comparison", "bootstrap_best", "trials_to_within"]

WITHIN = 0.05  # "close to the best": within 5% of it
BOOTSTRAP = 2000  # resamples of a study's complete values
CONFIDENCE = 0.95


@dataclass(frozen=True)
class SweptRef:
    """A sweep to compare: how it is labelled, its storage (opened) and its name there."""

    label: str
    storage: optuna.storages.BaseStorage
    name: str


@dataclass(frozen=True)
class CompareFiles:
    html: str
    markdown: str
    figures: tuple[str, ...]


@dataclass
class _Entry:
    """One sweep's study of one dataset."""

    label: str
    study: SweepStudy
    trials: list[FrozenTrial]
    objective: str
    index: int
    direction: str
    values: list[tuple[int, float]] = field(default_factory=list)  # (trial number, value), by number
    test_score: dict[str, float] = field(default_factory=dict)


def bootstrap_best(
    values: list[float], direction: str, *, seed: int = 0, n: int = BOOTSTRAP
) -> tuple[float, float] | None:
    """A ``CONFIDENCE`` percentile interval of the best of ``len(values)`` trials, from ``n``
    resamples (with replacement) of the values, drawn from ``numpy.random.default_rng(seed)``:
    how much the best value owes to luck. ``None`` with fewer than two values."""
    if len(values) < 2:
        return None
    rng = np.random.default_rng(seed)
    arr = np.asarray(values, dtype=float)
    picks = arr[rng.integers(0, len(arr), size=(n, len(arr)))]
    best = picks.min(axis=1) if direction == "minimize" else picks.max(axis=1)
    tail = (1.0 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(best, [tail, 100 - tail])
    return float(low), float(high)


def trials_to_within(
    values: list[tuple[int, float]], finished: list[int], direction: str, *, share: float = WITHIN
) -> int | None:
    """How many finished trials (counted in trial-number order, pruned and diverged included)
    it took for the best so far to come within ``share`` of the final best (``None``: no value)."""
    if not values:
        return None
    final = min(v for _, v in values) if direction == "minimize" else max(v for _, v in values)
    margin = abs(final) * share
    first = min(n for n, v in values if abs(v - final) <= margin)
    return sum(1 for n in finished if n <= first)


def _primary(study: SweepStudy) -> int:
    """The objective compared: the only one, or the first learned one (as in the report)."""
    if not study.multi:
        return 0
    return next((i for i, name in enumerate(study.objectives) if name in CURVE_OBJECTIVES), 0)


def _entry(label: str, storage: optuna.storages.BaseStorage, study: SweepStudy, *, test: bool) -> _Entry:
    trials = storage.get_all_trials(study.study_id, deepcopy=False)
    index = _primary(study)
    direction = study.directions[index] if study.directions else study.direction
    e = _Entry(label, study, trials, study.objectives[index], index, direction)
    for t in sorted(trials, key=lambda t: t.number):
        if outcome_of(t) == "complete" and t.values and len(t.values) > index and math.isfinite(t.values[index]):
            e.values.append((t.number, float(t.values[index])))
    if test and e.values:
        sign = -1.0 if direction == "maximize" else 1.0
        number = min(e.values, key=lambda nv: (sign * nv[1], nv[0]))[0]  # the best; the first among equals
        best = next(t for t in trials if t.number == number)
        if "run" in best.user_attrs:
            e.test_score = score_on_test(retrain(study, best, dataset=recorded_data(storage, study, best)))
    return e


def _gather(refs: list[SweptRef], *, test: bool) -> tuple[dict[str, list[_Entry]], dict[str, dict[str, object]]]:
    """Per dataset (first-seen order) each sweep's entry, and each sweep's stored configuration."""
    by_dataset: dict[str, list[_Entry]] = {}
    configs: dict[str, dict[str, object]] = {}
    found = [require_sweep(ref.storage, ref.name) for ref in refs]  # every sweep there before any retraining
    for ref, studies in zip(refs, found):
        configs[ref.label] = studies[0].config
        for study in studies:
            by_dataset.setdefault(study.dataset, []).append(_entry(ref.label, ref.storage, study, test=test))
    return by_dataset, configs


def _fmt(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.4g}"


def _test(score: dict[str, float]) -> str:
    if "test_accuracy" in score:
        return f"accuracy {score['test_accuracy']:.4f} (cost {score['test_cost']:.4g})"
    if "test_r2" in score:
        return f"R^2 {score['test_r2']:.4f} (cost {score['test_cost']:.4g})"
    return "-"


def _row(e: _Entry, *, seed: int) -> list[object]:
    vals = [v for _, v in e.values]
    best = (min(vals) if e.direction == "minimize" else max(vals)) if vals else None
    interval = bootstrap_best(vals, e.direction, seed=seed)
    finished = sorted(t.number for t in e.trials if outcome_of(t) in FINISHED)
    needed = trials_to_within(e.values, finished, e.direction)
    return [
        e.label,
        f"{e.objective} ({e.direction})",
        f"{len(finished)}/{e.study.total}",
        _fmt(best),
        "-" if interval is None else f"[{_fmt(interval[0])}, {_fmt(interval[1])}]",
        "-" if needed is None else f"{needed} of {len(finished)}",
        _test(e.test_score),
    ]


def _dataset_blocks(i: int, dataset: str, entries: list[_Entry], *, seed: int) -> list:
    blocks: list = [Heading(2, f"Dataset {dataset}")]
    missing = [e.label for e in entries if not e.values]
    objectives = {(e.objective, e.direction) for e in entries}
    if len(objectives) > 1:
        blocks.append(Text("The sweeps optimize different objectives here: their values are not comparable."))
    blocks.append(
        Table(
            [
                "sweep",
                "objective",
                "finished",
                "best",
                f"best: {CONFIDENCE:.0%} bootstrap interval",
                f"trials to within {WITHIN:.0%} of its best",
                "test score (best, retrained)",
            ],
            [_row(e, seed=seed) for e in entries],
        )
    )
    if missing:
        blocks.append(Text(f"No complete trial yet: {', '.join(missing)}."))
    if len(objectives) == 1:
        objective, direction = next(iter(objectives))
        series = [(e.label, e.values) for e in entries]
        blocks.append(
            Image(
                f"{i}-histories.png",
                figures.histories(series, direction, objective),
                f"optimization histories on {dataset}",
            )
        )
    return blocks


def _diff_blocks(configs: dict[str, dict[str, object]]) -> list:
    """The stored sweep files, each against the first, as unified diffs."""
    labels = list(configs)
    first = labels[0]
    blocks: list = [Heading(2, "How the sweep files differ")]
    base = tomli_w.dumps(configs[first]).splitlines(keepends=True)
    for label in labels[1:]:
        other = tomli_w.dumps(configs[label]).splitlines(keepends=True)
        diff = "".join(difflib.unified_diff(base, other, fromfile=first, tofile=label))
        if diff:
            blocks.append(Code(diff, lang="diff"))
        else:
            blocks.append(Text(f"{label}: the same sweep file as {first}."))
    return blocks


def _blocks(refs: list[SweptRef], by_dataset: dict[str, list[_Entry]], configs: dict, *, seed: int) -> list:
    blocks: list = [
        Text(
            f"{len(refs)} sweeps: {', '.join(r.label for r in refs)}. Best: the best value of a complete trial; "
            f"its interval: the {CONFIDENCE:.0%} percentile interval of the best of as many trials drawn "
            f"with replacement from the sweep's complete values ({BOOTSTRAP} resamples, seed {seed}), "
            f"i.e. how much the best owes to luck; trials to within {WITHIN:.0%}: the finished trials, in "
            f"order, until the best so far came within {WITHIN:.0%} of the sweep's final best."
        )
    ]
    for i, (dataset, entries) in enumerate(by_dataset.items()):
        blocks += _dataset_blocks(i, dataset, entries, seed=seed)
    if len(configs) > 1:
        blocks += _diff_blocks(configs)
    return blocks


def build_comparison(refs: list[SweptRef], *, out_dir: str, seed: int = 0, test_scores: bool = True) -> CompareFiles:
    """Write ``compare.html`` (self-contained) and ``compare.md`` with ``figures/*.png`` into
    ``out_dir``; returns their paths. ``test_scores``: retrain each best configuration once to
    score it on its held-out test split (as ``sweep report`` does).

    Raises:
        SweepsError: a sweep is not in its storage, two refs share a label, or ``out_dir`` can't be
            written (before anything is written).
    """
    labels = [r.label for r in refs]
    if len(set(labels)) != len(labels):
        dup = sorted({x for x in labels if labels.count(x) > 1})
        raise SweepsError(f"each sweep may be compared once, but got {dup} twice.")
    prepare_folder(out_dir, subfolders=("figures",), create=False)
    by_dataset, configs = _gather(refs, test=test_scores)
    blocks = _blocks(refs, by_dataset, configs, seed=seed)
    title = "Comparison of " + ", ".join(labels)
    md, files = to_markdown(title, blocks, "figures")
    prepare_folder(out_dir, subfolders=("figures",))
    written = [write_atomic(os.path.join(out_dir, rel), png) for rel, png in files.items()]
    md_path = write_atomic(os.path.join(out_dir, "compare.md"), md)
    html_path = write_atomic(os.path.join(out_dir, "compare.html"), to_html(title, blocks))
    return CompareFiles(html=html_path, markdown=md_path, figures=tuple(written))
