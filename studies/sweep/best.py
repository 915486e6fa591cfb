"""A study's best configuration, as something to run again: a sweep of one trial with every
setting fixed to the best trial's value (``sweep best``).

The sweep it makes trains the same network on the same data with the same seed, in a stack of
the same shape when the trial trained in one (``stack_shape``), or alone (``stack = 1``) when
it did not: its one trial gets the best trial's value bit for bit (on the same machine and
libraries; ``train_seconds`` is a time and never repeats).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from studies.sweep.objectives import CURVE_OBJECTIVES
from studies.sweep.space import TrainArgs
from studies.sweep.summary import SweepStudy, summarize_study

__all__ = ["BestConfig", "best_config", "one_trial_sweep", "train_settings"]

_PLAIN = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class BestConfig:
    """The best trial of a study and the sweep of one trial that trains it again.

    Attributes:
        study: the study.
        trial: its best trial (several objectives: the front's best in :attr:`chosen_by`).
        args: the trial's training arguments.
        seed: the seed it trained with.
        stack: the shape of the stack it trained in (``{"widths", "inputs"}``), or ``None``.
        chosen_by: how it was chosen, in words.
        front: several objectives: the Pareto front's trials (``None`` with one objective).
    """

    study: SweepStudy
    trial: FrozenTrial
    args: TrainArgs
    seed: int
    stack: dict[str, Any] | None  # as the trial's run record holds it (JSON)
    chosen_by: str
    front: tuple[FrozenTrial, ...] | None = None

    @property
    def values(self) -> dict[str, float]:
        return dict(zip(self.study.objectives, (float(v) for v in self.trial.values)))

    def sweep_file(self) -> dict[str, object]:
        """The sweep file (as a dict, ``tomli_w`` writes it) of one trial that trains it again."""
        return one_trial_sweep(self)


def train_settings(args: TrainArgs) -> dict[str, object]:
    """``[train]`` fixing every setting to ``args`` (the widths one per layer when they differ)."""
    hidden = list(args.hidden)
    train: dict[str, object] = {"learning_rate": args.learning_rate, "hidden_layers": len(hidden)}
    if len(set(hidden)) == 1:
        train["hidden_units"] = hidden[0]
    elif hidden:
        train["hidden_units"] = hidden
    train.update(
        activation=args.activation,
        regularization=args.regularization,
        optimizer=args.optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        features=list(args.features),
    )
    if args.regularization != "none":
        train["regularization_rate"] = args.regularization_rate
    if args.optimizer == "momentum":
        train.update(momentum=args.momentum, nesterov=args.nesterov)
    return train


def one_trial_sweep(best: BestConfig) -> dict[str, object]:
    """The sweep of one trial; see :class:`BestConfig`."""
    cfg = best.study.sweep
    ref = next(r for r in cfg.datasets if r.name == best.study.dataset)
    name = _PLAIN.sub("-", f"{cfg.name}-best-{best.study.dataset}")[:100].strip(".-") or "best"
    d: dict[str, object] = {
        "name": name,
        "datasets": [ref.to_dict()],
        "trials": 1,
        "jobs": 1,
        "seed": best.seed,
        "objective": cfg.objective if isinstance(cfg.objective, str) else list(cfg.objective),
        "report_every": cfg.report_every,
        "divergence_factor": cfg.divergence_factor,
        # Trained alone, or in a stack of the same shape: the same sums, the same bits.
        "stack": 1 if best.stack is None else max(2, cfg.stack),
    }
    if best.stack is not None:
        d["stack_shape"] = {"widths": list(best.stack["widths"]), "inputs": int(best.stack["inputs"])}
    if cfg.repeats > 1:  # the value is the mean over the same seeds, trained as one stack
        d["repeats"] = cfg.repeats
    d["train"] = train_settings(best.args)
    d["sampler"] = {"name": "random"}  # nothing is searched
    d["pruner"] = {"name": "none"}
    d["mlflow"] = {"curve_points": cfg.curve_points}
    return d


def best_config(storage: optuna.storages.BaseStorage, study: SweepStudy) -> BestConfig | None:
    """The study's best trial and what trains it again; ``None`` if no trial is complete.

    With several objectives the trial is the Pareto front's best in the first objective that
    the network learns (``val_cost`` or ``val_accuracy``), as the report's."""
    trials = storage.get_all_trials(study.study_id, deepcopy=False)
    summary = summarize_study(study, trials)
    if summary.front is None:
        number, chosen_by, front = summary.best_trial, f"the best {study.objectives[0]}", None
    else:
        first = next(name for name in study.objectives if name in CURVE_OBJECTIVES)
        chosen = summary.best_of(first)
        number = None if chosen is None else chosen.number
        chosen_by = f"the Pareto front's best in {first} (the first learned objective)"
        on_front = {f.number for f in summary.front}
        front = tuple(t for t in trials if t.number in on_front)
    trial = next((t for t in trials if t.number == number), None)
    if trial is None or "run" not in trial.user_attrs:
        return None
    run = trial.user_attrs["run"]
    cfg = study.sweep
    return BestConfig(
        study=study,
        trial=trial,
        args=cfg.space.from_params(dict(trial.params)),
        seed=int(run.get("seed", cfg.seed)),
        stack=run.get("stack"),
        chosen_by=chosen_by,
        front=front,
    )
