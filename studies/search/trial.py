"""One trial: sample the arguments, train, report for pruning, record the outcome.

With several objectives nothing is reported (Optuna's pruners, and ``Trial.report``,
support one objective); a trial whose cost diverges still stops at once, as the trainer
stops it, and is recorded as diverged (PRUNED, without values: never on the Pareto front).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from engine import MLP, Dataset, History, train, with_features
from studies.sweep import (
    SweepConfig,
    TrainArgs,
    Trained,
    constraint_values,
    is_feasible,
    measure,
    repeat_seeds,
)

__all__ = ["run_trial", "record", "tell", "TrialResult", "Reporter"]


class TrialResult:
    """What a trial ended as: its state for Optuna, its value (a list of values with several
    objectives), and its outcome name."""

    __slots__ = ("state", "value", "outcome")

    def __init__(self, state: TrialState, value: float | list[float] | None, outcome: str) -> None:
        self.state, self.value, self.outcome = state, value, outcome


def tell(study: optuna.Study, trial: optuna.Trial, result: TrialResult) -> None:
    """Tell Optuna how the trial ended (the storage view writes it with the next flush)."""
    value = result.value if result.state == TrialState.COMPLETE else None
    study.tell(trial, value, state=result.state)


def _curves(history: History) -> dict[str, list[float]]:
    d = {"train_cost": history.train_cost, "val_cost": history.val_cost}
    if history.val_accuracy:
        d["val_accuracy"] = history.val_accuracy
    if history.val_r2:
        d["val_r2"] = history.val_r2
    return {k: [float(x) for x in v] for k, v in d.items()}


class Reporter:
    """Reports a trial's objective to Optuna every ``report_every`` epochs and asks the pruner
    (never with several objectives: there is no pruner then).

    ``cut``, asked after every epoch but the last, says why the trial must stop now (a deadline
    passed, its own limit, its study stopped: :class:`~studies.search.quota.Limits`) or ``None``.
    """

    def __init__(
        self,
        trial: optuna.Trial,
        config: SweepConfig,
        epochs: int,
        on_epoch: Callable[[], None] | None = None,
        *,
        cut: Callable[[], str | None] | None = None,
    ) -> None:
        self.trial, self.metric, self.every, self.epochs = trial, config.objectives[0], config.report_every, epochs
        self.reports = not config.multi
        self.pruned = False
        self.cut: str | None = None  # why the trial was cut short (studies.sweep.CUTS)
        self.seconds = 0.0  # time in Optuna's report/should_prune, kept apart from training
        self.on_epoch = on_epoch
        self._cut = cut

    def __call__(self, epoch: int, history: History) -> bool:
        if self.on_epoch is not None:
            self.on_epoch()
        if self._cut is not None and epoch < self.epochs:
            self.cut = self._cut()
            if self.cut is not None:
                return False
        if not self.reports or (epoch % self.every and epoch != self.epochs):
            return True
        t = time.perf_counter()
        self.trial.report(getattr(history, self.metric)[-1], epoch)
        self.pruned = epoch < self.epochs and self.trial.should_prune()
        self.seconds += time.perf_counter() - t
        return not self.pruned


def record(
    trial: optuna.Trial,
    args: TrainArgs,
    history: History,
    config: SweepConfig,
    *,
    pruned: bool,
    train_seconds: float,
    cut: str | None = None,
    report_seconds: float,
    inputs: int,
    outputs: int,
    stack: dict[str, object] | None = None,
    seeds: list[History] | None = None,
) -> TrialResult:
    """Store what the trial did (one attribute, plus the divergence's own) and say how it ended.

    ``inputs`` and ``outputs`` are its network's (for the ``parameters`` objective); ``cut``: why
    it was cut short (recorded as the outcome ``cut``, PRUNED for Optuna, its curves kept). With
    repeated seeds, ``history`` is their mean (:func:`studies.sweep.mean_history`) and
    ``seeds`` each seed's own, in the order of :func:`studies.sweep.repeat_seeds`; the trial's
    values are the mean of the seeds' values."""
    attrs: dict[str, Any] = {
        "run": {
            "curves": _curves(history),
            "epoch_time": [round(t, 6) for t in history.epoch_time],
            "train_seconds": train_seconds,
            "report_seconds": report_seconds,
            "initial_cost": history.initial_cost,
            "label": args.label(trial.number),
            "seed": config.seed,
        },
    }
    if stack is not None:  # trained in a stack: reproduce it in a stack of the same widths
        attrs["run"]["stack"] = stack
    trained = Trained(history, args, inputs, outputs, train_seconds)
    if config.constraints:
        limits = constraint_values(config.constraints, trained)
        attrs["constraints"], attrs["feasible"] = limits, is_feasible(limits)
    if seeds is not None and len(seeds) > 1:
        attrs["repeats"] = _repeats(seeds, args, config, inputs=inputs, outputs=outputs, seconds=train_seconds)
    d = history.divergence
    if d is not None:
        attrs["diverged"] = True
        attrs["divergence"] = {
            "epoch": d.epoch,
            "step": d.step,
            "cause": d.cause,
            "learning_rate": args.learning_rate,
            "last_finite_cost": d.last_finite_cost,
            # the value that crossed the threshold, and its curve (JSON has no inf/nan: in words)
            "cost": d.cost if math.isfinite(d.cost) else repr(d.cost),
            "curve": d.curve,
        }
        outcome, state, value = "diverged", TrialState.PRUNED, None
    elif cut is not None:
        attrs["cut"] = cut
        outcome, state, value = "cut", TrialState.PRUNED, None
    elif pruned:
        outcome, state, value = "pruned", TrialState.PRUNED, None
    else:
        # The trainer stops at any non-finite cost, so the last values are finite.
        if "repeats" in attrs:
            values = [float(v) for v in attrs["repeats"]["mean"]]
        else:
            values = measure(config.objectives, trained)
        value = values if config.multi else values[0]
        outcome, state = "complete", TrialState.COMPLETE
    for key, val in attrs.items():
        trial.set_user_attr(key, val)
    for key, val in dict(attrs.get("constraints") or {}).items():  # what Optuna 5's TPE and NSGA-II read
        trial.set_constraint(key, val)
    return TrialResult(state, value, outcome)


def _repeats(
    seeds: list[History], args: TrainArgs, config: SweepConfig, *, inputs: int, outputs: int, seconds: float
) -> dict[str, object]:
    """What the storage keeps of a trial's seeds: each seed, its curves and objective values,
    and the values' mean and standard deviation (population, over the seeds). Each curve is
    as long as the trial's own (K times the single curves' size: mind ``repeats`` with many epochs)."""
    kept: dict[str, object] = {
        "seeds": repeat_seeds(config.seed, len(seeds)),
        "curves": [_curves(h) for h in seeds],
        "diverged": [h.divergence is not None for h in seeds],
    }
    if any(kept["diverged"]):  # type: ignore[arg-type]
        return kept  # the trial diverged: no values
    share = seconds / len(seeds)
    per_seed = [measure(config.objectives, Trained(h, args, inputs, outputs, share)) for h in seeds]
    if "train_seconds" in config.objectives:  # one stack for all: the trial's time is the seeds' total
        i = config.objectives.index("train_seconds")
        per_seed = [[*v[:i], seconds, *v[i + 1 :]] for v in per_seed]
    table = np.asarray(per_seed, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        mean, std = table.mean(axis=0), table.std(axis=0)
    return {
        **kept,
        "values": [[float(x) for x in row] for row in per_seed],
        "mean": [float(x) for x in mean],
        "std": [float(x) for x in std],
    }


def run_trial(
    trial: optuna.Trial,
    dataset: Dataset,
    config: SweepConfig,
    *,
    on_sampled: Callable[[], None] | None = None,
    on_epoch: Callable[[], None] | None = None,
    cut: Callable[[], str | None] | None = None,
) -> TrialResult:
    """Train one network for ``trial``; the caller tells Optuna the returned state and value.

    ``on_sampled`` is called once the parameters are sampled, ``on_epoch`` after each epoch
    (the worker writes its queued records then), ``cut`` too (see :class:`Reporter`).
    """
    args = config.space.suggest(trial)
    if on_sampled is not None:
        on_sampled()
    dataset = with_features(dataset, args.features)  # its inputs: the raw features unless the trial says otherwise
    model = MLP(dataset.n_features, args.hidden, dataset.n_outputs, activation=args.activation, seed=config.seed)
    reporter = Reporter(trial, config, args.epochs, on_epoch, cut=cut)
    t0 = time.perf_counter()
    history = train(
        model,
        dataset,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        l2=args.l2,
        l1=args.l1,
        seed=config.seed,
        momentum=args.momentum,
        nesterov=args.nesterov,
        divergence_factor=config.divergence_factor,
        on_epoch=reporter,
    )
    return record(
        trial,
        args,
        history,
        config,
        pruned=reporter.pruned,
        cut=reporter.cut,
        train_seconds=time.perf_counter() - t0 - reporter.seconds,
        report_seconds=reporter.seconds,
        inputs=dataset.n_features,
        outputs=dataset.n_outputs,
    )
