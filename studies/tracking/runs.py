"""What a sweep looks like in MLflow: a parent run per study, a nested child run per trial.

Builders only (what to write); :mod:`studies.tracking.tracker` writes it through MLflow's client.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field

import numpy as np
from optuna.trial import FrozenTrial

from studies.sweep import StudySummary, SweepStudy, best_epoch, crossed, curve_stride, epochs_to_log

__all__ = ["KIND", "STUDY", "TRIAL", "HOST", "STATUS_OF", "TrialRun", "trial_run", "host_of", "parent_content"]

# Outcome -> MLflow run status.
STATUS_OF = {"complete": "FINISHED", "pruned": "KILLED", "diverged": "FAILED", "cut": "KILLED", "failed": "FAILED"}
KIND, STUDY, TRIAL, HOST = "sweeps.kind", "sweeps.study", "trial_number", "sweeps.host"


def _ms(dt) -> int:  # noqa: ANN001
    return int(dt.timestamp() * 1000) if dt is not None else int(time.time() * 1000)


def host_of(trial: FrozenTrial) -> str:
    """The host whose worker ran the trial ('' if unknown): MLflow writers split trials by it."""
    worker = trial.user_attrs.get("worker")
    return str(worker.get("host", "")) if isinstance(worker, dict) else ""


@dataclass(frozen=True)
class TrialRun:
    """A trial's child run: everything written for it, in MLflow's entities."""

    name: str
    start: int
    end: int
    status: str
    tags: dict[str, str]
    params: list = field(default_factory=list)  # mlflow.entities.Param
    metrics: list = field(default_factory=list)  # mlflow.entities.Metric, latest epoch of each curve first
    extra_tags: list = field(default_factory=list)  # mlflow.entities.RunTag
    divergence: dict | None = None


def trial_run(study: SweepStudy, t: FrozenTrial, outcome: str, *, parent: str, sweep: str) -> TrialRun:
    """The child run of trial ``t`` (finished as ``outcome``) under the parent run ``parent``."""
    from mlflow.entities import Metric, Param, RunTag

    info = t.user_attrs.get("run", {})
    cfg = study.sweep
    tags = {
        "mlflow.parentRunId": parent,
        KIND: "trial",
        STUDY: study.name,
        TRIAL: str(t.number),
        HOST: host_of(t),
        "study": study.name,
        "dataset": study.dataset,
        "outcome": outcome,
        "sweep": sweep,
    }
    if t.user_attrs.get("cut"):  # cut short by a time budget or its study's stop: why
        tags["cut"] = str(t.user_attrs["cut"])
    params = {**cfg.space.fixed, **t.params, "dataset": study.dataset, "seed": cfg.seed}
    end = _ms(t.datetime_complete)
    curves = info.get("curves", {})
    div = t.user_attrs.get("divergence")
    metrics = _curve_metrics(curves, div, cfg, study.objectives, end, Metric)
    metrics += _std_curves(t, curves, cfg, study.objectives, end, Metric)
    finals = {f"final_{k}": v[-1] for k, v in curves.items() if v and math.isfinite(v[-1])}
    values = t.values or []
    if len(values) == 1 and math.isfinite(values[0]):
        finals["value"] = values[0]
    elif len(values) > 1:  # several objectives: one metric each, 'value.parameters', ...
        finals.update({f"value.{name}": v for name, v in zip(study.objectives, values) if math.isfinite(v)})
    finals["epochs_trained"] = len(curves.get("train_cost", []))
    if "train_seconds" in info:
        finals["train_seconds"] = info["train_seconds"]
    best = best_epoch(curves, study.objectives)
    if best is not None:
        finals["best_epoch"] = best
    if div:
        finals["diverged_epoch"] = div["epoch"]
    finals.update(_seeds_and_constraints(t, study.objectives, tags, params))
    metrics += [Metric(k, float(v), end, 0) for k, v in finals.items()]
    extra = [RunTag("error", str(t.user_attrs["error"])[:5000])] if "error" in t.user_attrs else []
    return TrialRun(
        name=info.get("label", f"t{t.number}"),
        start=_ms(t.datetime_start),
        end=end,
        status=STATUS_OF[outcome],
        tags=tags,
        params=[Param(k, str(v)) for k, v in sorted(params.items())],
        metrics=metrics,
        extra_tags=extra,
        divergence={**div, "trial": t.number, "study": study.name} if div else None,
    )


def _seeds_and_constraints(
    t: FrozenTrial, objectives: tuple[str, ...], tags: dict[str, str], params: dict[str, object]
) -> dict[str, float]:
    """With ``repeats``: the seeds (a param) and the values' std over them ('value_std', or
    'value_std.<objective>'; the curves logged are the seeds' mean). With constraints: the
    'feasible' tag and each bound's value ('constraint.<key>', <= 0 feasible)."""
    out: dict[str, float] = {}
    rep = t.user_attrs.get("repeats")
    if isinstance(rep, dict):
        params["seeds"] = ",".join(str(s) for s in rep.get("seeds", []))
        std = rep.get("std") or []
        names = ["value_std"] if len(objectives) == 1 else [f"value_std.{n}" for n in objectives]
        out.update({k: v for k, v in zip(names, std) if math.isfinite(v)})
    if "feasible" in t.user_attrs:
        tags["feasible"] = "true" if t.user_attrs["feasible"] else "false"
        out.update({f"constraint.{k}": v for k, v in dict(t.user_attrs.get("constraints") or {}).items()})
    return out


def _std_curves(t: FrozenTrial, curves: dict, cfg, objectives: tuple[str, ...], end: int, Metric) -> list:  # noqa: ANN001, N803
    """With ``repeats``: each objective curve's std over the seeds ('val_cost_std', ...) at the
    epochs its mean curve is logged at."""
    seeds = (t.user_attrs.get("repeats") or {}).get("curves") or []
    if not seeds:
        return []
    stride = curve_stride(cfg.space.max_epochs(), cfg.curve_points)
    trained = max((len(v) for v in curves.values()), default=0)
    epochs = epochs_to_log(trained, stride=stride, marks=(best_epoch(curves, objectives),))
    out = []
    for key in (k for k in objectives if k in curves):
        table = [c.get(key, []) for c in seeds]
        n = min(len(c) for c in table)
        if not n:
            continue
        std = np.std(np.asarray([c[:n] for c in table], dtype=np.float64), axis=0)
        out += [
            Metric(f"{key}_std", float(std[e - 1]), end, e)
            for e in reversed(epochs)
            if e <= n and np.isfinite(std[e - 1])
        ]
    return out


def _curve_metrics(
    curves: dict[str, list[float]],
    div: dict | None,
    cfg,
    objectives: tuple[str, ...],  # noqa: ANN001
    end: int,
    Metric,
) -> list:  # noqa: ANN001, N803
    """A trial's curves at the sweep's stride (:mod:`studies.sweep.curves`), with the first, last
    and best epochs, and the value that crossed the divergence threshold at its epoch."""
    stride = curve_stride(cfg.space.max_epochs(), cfg.curve_points)
    trained = max((len(v) for v in curves.values()), default=0)
    epochs = epochs_to_log(trained, stride=stride, marks=(best_epoch(curves, objectives),))
    cross = crossed(div)
    metrics = []
    for key, values in curves.items():
        # Latest epoch first: MLflow keeps each key's latest value up to date as it inserts,
        # and the first point seen being the latest saves an update per point.
        if cross is not None and cross[0] == key:
            metrics.append(Metric(key, cross[2], end, cross[1]))
        metrics += [
            Metric(key, float(values[e - 1]), end, e)
            for e in reversed(epochs)
            if e <= len(values) and math.isfinite(values[e - 1])
        ]
    return metrics


def parent_content(summary: StudySummary) -> tuple[list, list]:
    """The metrics and tags that keep a study's parent run current (counts, best value and
    parameters; the sweep's budget, the trials it cut, and the study's stop on convergence)."""
    from mlflow.entities import Metric, RunTag

    ts = int(time.time() * 1000)
    metrics = [Metric(f"n_{o}", float(n), ts, summary.finished) for o, n in summary.counts.items()]
    if summary.infeasible is not None:
        metrics.append(Metric("n_infeasible", float(summary.infeasible), ts, summary.finished))
    limits = []
    if summary.budget is not None:
        limits.append(RunTag("budget", json.dumps(summary.budget, sort_keys=True)))
    if summary.cuts:
        limits.append(RunTag("cut", ", ".join(f"{k} {v}" for k, v in summary.cuts.items())))
    if summary.stopped is not None:
        st = summary.stopped
        limits.append(RunTag("stopped", f"converged at trial {st.get('trial')}, {st.get('at')}"))
    if summary.front is not None:  # several objectives: the front instead (studies.tracking.tracker's _update_front)
        return metrics, limits
    tags = [RunTag("best_trial", str(summary.best_trial)), *limits]
    if summary.best_value is not None:
        metrics.append(Metric("best_value", summary.best_value, ts, summary.finished))
        if summary.best_std:
            metrics.append(Metric("best_value_std", summary.best_std[0], ts, summary.finished))
        tags += [RunTag(f"best.{k}", str(v)) for k, v in summary.best_params.items()]
    return metrics, tags
