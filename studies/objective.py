"""One trial: sample the arguments, train, report for pruning, record the outcome."""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState

from engine import MLP, Dataset, History, train
from studies.config import SweepConfig

__all__ = ["run_trial", "TrialResult"]


class TrialResult:
    """What a trial ended as: its state for Optuna, its value, and its outcome name."""

    __slots__ = ("state", "value", "outcome")

    def __init__(self, state: TrialState, value: float | None, outcome: str) -> None:
        self.state, self.value, self.outcome = state, value, outcome


def _curves(history: History) -> dict[str, list[float]]:
    d = {"train_cost": history.train_cost, "val_cost": history.val_cost}
    if history.val_accuracy:
        d["val_accuracy"] = history.val_accuracy
    if history.val_r2:
        d["val_r2"] = history.val_r2
    return {k: [float(x) for x in v] for k, v in d.items()}


def run_trial(trial: optuna.Trial, dataset: Dataset, config: SweepConfig) -> TrialResult:
    """Train one network for ``trial``; the caller tells Optuna the returned state and value."""
    args = config.space.suggest(trial)
    model = MLP(dataset.n_features, args.hidden, dataset.n_outputs, activation=args.activation, seed=config.seed)
    metric = config.objective
    every = config.report_every
    pruned = False
    report_seconds = 0.0  # time in Optuna's report/should_prune, kept apart from training

    def on_epoch(epoch: int, history: History) -> bool:
        nonlocal pruned, report_seconds
        if epoch % every and epoch != args.epochs:
            return True
        t = time.perf_counter()
        trial.report(getattr(history, metric)[-1], epoch)
        pruned = epoch < args.epochs and trial.should_prune()
        report_seconds += time.perf_counter() - t
        return not pruned

    t0 = time.perf_counter()
    history = train(
        model, dataset, learning_rate=args.learning_rate, epochs=args.epochs, batch_size=args.batch_size,
        optimizer=args.optimizer, l2=args.l2, l1=args.l1, seed=config.seed, momentum=args.momentum,
        nesterov=args.nesterov, divergence_factor=config.divergence_factor, on_epoch=on_epoch,
    )
    # One attribute for the record (one storage write), and the outcome's own attributes.
    attrs: dict[str, object] = {
        "run": {
            "curves": _curves(history),
            "epoch_time": [round(t, 6) for t in history.epoch_time],
            "train_seconds": time.perf_counter() - t0 - report_seconds,
            "report_seconds": report_seconds,
            "initial_cost": history.initial_cost,
            "label": args.label(trial.number),
            "seed": config.seed,
        },
    }
    d = history.divergence
    if d is not None:
        attrs["diverged"] = True
        attrs["divergence"] = {
            "epoch": d.epoch, "step": d.step, "cause": d.cause,
            "learning_rate": args.learning_rate, "last_finite_cost": d.last_finite_cost,
        }
        outcome, state, value = "diverged", TrialState.PRUNED, None
    elif pruned:
        outcome, state, value = "pruned", TrialState.PRUNED, None
    else:
        # The trainer stops at any non-finite cost, so the last value is finite.
        value = float(getattr(history, metric)[-1])
        outcome, state = "complete", TrialState.COMPLETE
    for key, val in attrs.items():
        trial.set_user_attr(key, val)
    return TrialResult(state, value, outcome)
