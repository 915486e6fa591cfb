"""What a report shows, gathered from the storage (plus one retraining of each best trial)."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from dataclasses import dataclass, field
from importlib import metadata

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from studies.outcomes import outcome_of
from studies.reproduce import Retrained, retrain
from studies.summary import StudySummary, SweepStudy, require_sweep, summarize_study

__all__ = ["DatasetReport", "SweepReport", "gather", "environment", "trial_rows"]


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

        env["BLAS"] = "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
                                for i in threadpool_info() if i.get("user_api") == "blas") or "unknown"
    except ImportError:  # pragma: no cover
        env["BLAS"] = "unknown"
    env["CPUs"] = str(os.cpu_count())
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    env["git commit"] = commit or "none (not a git checkout)"
    seed = config.get("seed", 0)
    env["seeds"] = (f"sweep seed {seed}: data split, initial weights and shuffling of every trial; samplers "
                    f"seeded from SeedSequence([{seed}, worker, dataset index]) (grid and qmc: {seed})")
    return env


def _stable_lr(trials: list[FrozenTrial]) -> tuple[float | None, float | None]:
    lrs = [(t.params.get("learning_rate"), outcome_of(t)) for t in trials]
    lrs = [(lr, o) for lr, o in lrs if lr is not None and o in ("complete", "pruned", "diverged")]
    diverged = [lr for lr, o in lrs if o == "diverged"]
    lowest = min(diverged) if diverged else None
    stable = [lr for lr, o in lrs if o != "diverged" and (lowest is None or lr < lowest)]
    return (max(stable) if stable else None), lowest


def _importances(study: SweepStudy, storage) -> tuple[dict[str, float], str]:
    loaded = optuna.load_study(study_name=study.name, storage=storage)
    complete = [t for t in loaded.get_trials(deepcopy=False) if outcome_of(t) == "complete"]
    if len(complete) < 4:
        return {}, f"fANOVA needs at least 4 complete trials; this study has {len(complete)}."
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        return dict(optuna.importance.get_param_importances(loaded, evaluator=evaluator)), ""
    except (ValueError, RuntimeError) as exc:
        return {}, f"fANOVA could not run: {exc}"


def _test_score(r: Retrained) -> dict[str, float]:
    ds, model = r.dataset, r.model
    if r.history.divergence is not None:
        return {}
    with np.errstate(all="ignore"):
        logits = model.decision_function(ds.X_test)
    from engine.costs import OUTPUTS

    out = OUTPUTS[model.output]
    y = ds.y_test.astype(np.intp) if out.classification else ds.y_test.astype(model.dtype)
    cost = out.cost_grad(logits.copy(), y, grad=False)[0]
    if out.classification:
        return {"test_cost": float(cost), "test_accuracy": float(np.mean(out.predict(logits) == ds.y_test))}
    pred = logits[:, 0]
    ss_tot = float(np.sum((ds.y_test - ds.y_test.mean()) ** 2))
    return {"test_cost": float(cost), "test_r2": 1.0 - float(np.sum((ds.y_test - pred) ** 2)) / ss_tot if ss_tot else 0.0}


def gather(storage: optuna.storages.BaseStorage, name: str) -> SweepReport:
    """Everything the report needs; the best trial of each study is retrained once (the only
    use of the test split)."""
    studies = require_sweep(storage, name)
    reports = []
    for study in studies:
        trials = storage.get_all_trials(study.study_id, deepcopy=False)
        summary = summarize_study(study, trials)
        best = next((t for t in trials if t.number == summary.best_trial), None)
        dr = DatasetReport(study=study, summary=summary, trials=trials, best=best)
        if best is not None and "run" in best.user_attrs:
            dr.retrained = retrain(study, best)
            dr.test_score = _test_score(dr.retrained)
        dr.importances, dr.importance_note = _importances(study, storage)
        dr.stable_lr, dr.lowest_diverged_lr = _stable_lr(trials)
        reports.append(dr)
    return SweepReport(name=name, config=studies[0].config, datasets=reports, env=environment(studies[0].config))


def trial_rows(report: SweepReport) -> tuple[list[str], list[dict[str, object]]]:
    """The CSV: one row per trial (surplus withdrawals left out)."""
    params = sorted({p for d in report.datasets for t in d.trials for p in t.params})
    rows = []
    for d in report.datasets:
        for t in d.trials:
            outcome = outcome_of(t)
            if outcome is None:
                continue
            div = t.user_attrs.get("divergence") or {}
            duration = (t.datetime_complete - t.datetime_start).total_seconds() \
                if t.datetime_complete and t.datetime_start else None
            value = t.value if t.value is not None and math.isfinite(t.value) else None
            rows.append({
                "number": t.number, "dataset": d.study.dataset, "outcome": outcome, "value": value,
                **{p: t.params.get(p) for p in params},
                "divergence_epoch": div.get("epoch"), "divergence_cause": div.get("cause"),
                "duration_s": None if duration is None else round(duration, 4),
            })
    header = ["number", "dataset", "outcome", "value", *params, "divergence_epoch", "divergence_cause", "duration_s"]
    return header, rows
