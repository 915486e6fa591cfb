"""What a report shows, gathered from the storage (plus one retraining of each best trial)."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from typing import cast

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from studies.search import Retrained, recorded_data, retrain_seeds
from studies.sweep import (
    CURVE_OBJECTIVES,
    Direction,
    StudySummary,
    SweepStudy,
    last_accuracy,
    outcome_of,
    pareto_front,
    require_sweep,
    summarize_study,
)

__all__ = [
    "DatasetReport",
    "SweepReport",
    "gather",
    "environment",
    "source_of",
    "trial_rows",
    "divergence_boundary",
    "importances_of",
    "score_on_test",
]


@dataclass
class DatasetReport:
    study: SweepStudy
    summary: StudySummary
    trials: list[FrozenTrial]
    best: FrozenTrial | None
    retrained: Retrained | None = None
    test_score: dict[str, float] = field(default_factory=dict)
    importances: dict[str, float] = field(default_factory=dict)
    importance_note: str = ""
    stable_lr: float | None = None  # largest learning rate below every diverged one that trained
    lowest_diverged_lr: float | None = None
    front: list[FrozenTrial] = field(default_factory=list)  # several objectives: the Pareto front
    primary: int = 0  # the objective the best trial, history and slices are about (the first learned one)
    sources: dict[int, str] = field(default_factory=dict)  # warm-started trial -> where its parameters came from

    @property
    def objectives(self) -> tuple[str, ...]:
        return self.study.objectives

    def value(self, trial: FrozenTrial) -> float | None:
        """The trial's value of the primary objective (``None`` unless complete and finite)."""
        values = trial.values
        if trial.state != optuna.trial.TrialState.COMPLETE or not values or len(values) <= self.primary:
            return None
        v = float(values[self.primary])
        return v if math.isfinite(v) else None


@dataclass
class SweepReport:
    name: str
    config: dict[str, object]
    datasets: list[DatasetReport]
    env: dict[str, str]


def environment(config: dict[str, object]) -> dict[str, str]:
    """Versions, BLAS, CPUs, the project's commit, and every seed."""
    env = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("numpy", "optuna", "mlflow", "joblib", "scikit-learn", "matplotlib", "sweeps"):
        try:
            env[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            env[pkg] = "not installed"
    try:
        from threadpoolctl import threadpool_info

        env["BLAS"] = (
            "; ".join(
                f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
                for i in threadpool_info()
                if i.get("user_api") == "blas"
            )
            or "unknown"
        )
    except ImportError:  # pragma: no cover
        env["BLAS"] = "unknown"
    env["CPUs"] = str(os.cpu_count())
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(
            ["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    env["git commit"] = commit or "none (not a git checkout)"
    seed = config.get("seed", 0)
    env["seeds"] = (
        f"sweep seed {seed}: data split, initial weights and shuffling of every trial; samplers "
        f"seeded from SeedSequence([{seed}, worker, dataset index]) (grid and qmc: {seed})"
    )
    return env


def divergence_boundary(trials: list[FrozenTrial]) -> tuple[float | None, float | None]:
    """(the largest learning rate below every diverged one that trained, the lowest that diverged)."""
    found = [(t.params.get("learning_rate"), outcome_of(t)) for t in trials]
    lrs = [(lr, o) for lr, o in found if lr is not None and o in ("complete", "pruned", "diverged")]
    diverged = [lr for lr, o in lrs if o == "diverged"]
    lowest = min(diverged) if diverged else None
    stable = [lr for lr, o in lrs if o != "diverged" and (lowest is None or lr < lowest)]
    return (max(stable) if stable else None), lowest


def importances_of(
    study: SweepStudy, trials: list[FrozenTrial], primary: int = 0, *, n_trees: int = 64
) -> tuple[dict[str, float], str]:
    """fANOVA importances of the parameters for objective ``primary`` (``{}`` and why, if none),
    from a forest of ``n_trees`` (Optuna's default, 64, in the report; fewer for a quick look)."""
    complete = [t for t in trials if outcome_of(t) == "complete"]
    if len(complete) < 4:
        return {}, f"fANOVA needs at least 4 complete trials; this study has {len(complete)}."
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "a new study created in memory" each time
    try:
        # A single objective's direction is "minimize" or "maximize" (several: their directions).
        loaded = optuna.create_study(directions=list(study.directions) or [cast("Direction", study.direction)])
    finally:
        optuna.logging.set_verbosity(level)
    loaded.add_trials(complete)
    # Several objectives: the importances for the primary one (fANOVA explains one value).
    target = (lambda t: t.values[primary]) if study.multi else None
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=n_trees, seed=0)
        return dict(optuna.importance.get_param_importances(loaded, evaluator=evaluator, target=target)), ""
    except (ValueError, RuntimeError) as exc:
        return {}, f"fANOVA could not run: {exc}"


def _test_score(r: Retrained) -> dict[str, float]:
    ds, model = r.dataset, r.model
    if r.history.divergence is not None:
        return {}
    with np.errstate(all="ignore"):
        logits = model.decision_function(ds.X_test)
    from engine.costs import OUTPUTS

    out = OUTPUTS[model._require_output()]
    y = ds.y_test.astype(np.intp) if out.classification else ds.y_test.astype(model.dtype)
    cost = out.cost_grad(logits.copy(), y, grad=False)[0]
    if out.classification:
        return {"test_cost": float(cost), "test_accuracy": float(np.mean(out.predict(logits) == ds.y_test))}
    pred = logits[:, 0]
    ss_tot = float(np.sum((ds.y_test - ds.y_test.mean()) ** 2))
    return {
        "test_cost": float(cost),
        "test_r2": 1.0 - float(np.sum((ds.y_test - pred) ** 2)) / ss_tot if ss_tot else 0.0,
    }


score_on_test = _test_score  # the held-out test score of a retrained trial (empty if it diverged)


def _mean_score(scores: list[dict[str, float]]) -> dict[str, float]:
    """One seed's test score, or the seeds' mean with each score's std (``<name>_std``)."""
    if len(scores) == 1 or not all(scores):
        return scores[0]
    out: dict[str, float] = {}
    for key in scores[0]:
        values = np.array([s[key] for s in scores])
        out[key], out[f"{key}_std"] = float(values.mean()), float(values.std())
    return out


def source_of(trial: FrozenTrial) -> str:
    """Where a warm-started trial's parameters came from (``sweep/dataset #trial``), or ''."""
    w = trial.user_attrs.get("warm_start")
    if not isinstance(w, dict) or "study" not in w or "trial" not in w:
        return ""
    return f"{w['study']} #{w['trial']}"


def gather(storage: optuna.storages.BaseStorage, name: str) -> SweepReport:
    """Everything the report needs; the best trial of each study is retrained once (the only
    use of the test split)."""
    studies = require_sweep(storage, name)
    reports = []
    for study in studies:
        trials = storage.get_all_trials(study.study_id, deepcopy=False)
        summary = summarize_study(study, trials)
        primary, front, number = 0, [], summary.best_trial
        if summary.front is not None:  # several objectives: the front's best in the first learned objective
            primary = next(i for i, name in enumerate(study.objectives) if name in CURVE_OBJECTIVES)
            front = pareto_front(trials, study.directions)
            chosen = summary.best_of(study.objectives[primary])
            number = None if chosen is None else chosen.number
        best = next((t for t in trials if t.number == number), None)
        dr = DatasetReport(study=study, summary=summary, trials=trials, best=best, front=front, primary=primary)
        if best is not None and "run" in best.user_attrs:
            seeds = retrain_seeds(study, best, dataset=recorded_data(storage, study, best))
            dr.retrained = seeds[0]
            dr.test_score = _mean_score([_test_score(r) for r in seeds])
        dr.sources = {t.number: source_of(t) for t in trials if source_of(t)}
        dr.importances, dr.importance_note = importances_of(study, trials, primary)
        dr.stable_lr, dr.lowest_diverged_lr = divergence_boundary(trials)
        reports.append(dr)
    return SweepReport(name=name, config=studies[0].config, datasets=reports, env=environment(studies[0].config))


def trial_rows(report: SweepReport) -> tuple[list[str], list[dict[str, object]]]:
    """The CSV: one row per trial (surplus withdrawals left out)."""
    params = sorted({p for d in report.datasets for t in d.trials for p in t.params})
    objectives = report.datasets[0].objectives if report.datasets else ("val_cost",)
    multi = len(objectives) > 1
    # One value column ('value'), or one per objective and whether the trial is on the front.
    values = [f"value.{name}" for name in objectives] + ["pareto"] if multi else ["value"]
    warm = any(d.sources for d in report.datasets)
    # Classification: each trial's last validation accuracy beside its value (unless it is the value).
    acc = "val_accuracy" not in objectives and any(
        last_accuracy(t) is not None for d in report.datasets for t in d.trials
    )
    accuracy = ["val_accuracy"] if acc else []
    constrained = any(d.summary.infeasible is not None for d in report.datasets)
    repeated = any("repeats" in t.user_attrs for d in report.datasets for t in d.trials)
    rows = []
    for d in report.datasets:
        front = {t.number for t in d.front}
        for t in d.trials:
            outcome = outcome_of(t)
            if outcome is None:
                continue
            div = t.user_attrs.get("divergence") or {}
            duration = (
                (t.datetime_complete - t.datetime_start).total_seconds()
                if t.datetime_complete and t.datetime_start
                else None
            )
            got = [float(v) if math.isfinite(v) else None for v in t.values or ()] or [None] * len(objectives)
            row = dict(zip(values, got)) if multi else {"value": got[0]}
            if multi:
                row["pareto"] = t.number in front
            rows.append(
                {
                    "number": t.number,
                    "dataset": d.study.dataset,
                    "outcome": outcome,
                    **row,
                    **({"val_accuracy": last_accuracy(t)} if acc else {}),
                    **{p: t.params.get(p) for p in params},
                    "divergence_epoch": div.get("epoch"),
                    "divergence_cause": div.get("cause"),
                    "duration_s": None if duration is None else round(duration, 4),
                    **({"warm_start": d.sources.get(t.number, "")} if warm else {}),
                    **({"feasible": t.user_attrs.get("feasible")} if constrained else {}),
                    **({"value_std": _first_std(t)} if repeated else {}),
                }
            )
    header = [
        "number",
        "dataset",
        "outcome",
        *values,
        *accuracy,
        *params,
        "divergence_epoch",
        "divergence_cause",
        "duration_s",
        *(["warm_start"] if warm else []),
        *(["feasible"] if constrained else []),
        *(["value_std"] if repeated else []),
    ]
    return header, rows


def _first_std(trial: FrozenTrial) -> float | None:
    """The std over a trial's seeds of its (first) objective, when it has repeats and values."""
    std = (trial.user_attrs.get("repeats") or {}).get("std")
    return float(std[0]) if std else None
