"""Retraining a recorded trial from what the storage holds, and checking its curve."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from engine import MLP, Dataset, History, Member, train, train_stacked, with_features
from studies.errors import ParameterError
from studies.sweep import SweepStudy, require_sweep

__all__ = [
    "Retrained",
    "retrain",
    "retrain_seeds",
    "seed_difference",
    "find_trial",
    "first_difference",
    "recorded_data",
]


@dataclass(frozen=True)
class Retrained:
    """A trial trained again from scratch: the model, its dataset (with the trial's input
    features) and its history."""

    model: MLP
    dataset: Dataset
    history: History
    epochs: int


def find_trial(
    storage: optuna.storages.BaseStorage, name: str, dataset: str, trial: int
) -> tuple[SweepStudy, FrozenTrial]:
    """The study of ``dataset`` in sweep ``name`` and its trial number ``trial``; a
    ``ValueError`` naming what exists if absent."""
    studies = {s.dataset: s for s in require_sweep(storage, name)}
    if dataset not in studies:
        raise ParameterError("dataset", f" must be one of {sorted(studies)}, but got {dataset!r}.")
    study = studies[dataset]
    trials = {t.number: t for t in storage.get_all_trials(study.study_id, deepcopy=False)}
    found = trials.get(trial)
    if found is None or "run" not in found.user_attrs:
        finished = sorted(n for n, t in trials.items() if "run" in t.user_attrs)
        shown = f"{finished[:5]}...{finished[-3:]}" if len(finished) > 8 else f"{finished}"
        raise ParameterError("trial", f" must be a trained trial of {study.name!r} (one of {shown}), but got {trial}.")
    return study, found


def recorded_data(storage: optuna.storages.BaseStorage, study: SweepStudy, trial: FrozenTrial) -> Dataset | None:
    """The trial's dataset loaded here, after checking it is the data its study was created
    with (a ``ValueError`` naming the dataset if not: retraining on other data would report a
    difference, or a test score, that says nothing about the trial); ``None`` when the trial
    was trained with another seed than the sweep's (its signature covers the sweep's split)."""
    from studies.sweep import check_data

    config = study.sweep
    if int(trial.user_attrs.get("run", {}).get("seed", config.seed)) != config.seed:
        return None
    ref = next(r for r in config.datasets if r.name == study.dataset)
    ds = ref.load(seed=config.seed)
    check_data(storage, config, [(study.dataset, study.study_id)], {study.dataset: ds.signature})
    return ds


def retrain(study: SweepStudy, trial: FrozenTrial, *, dataset: Dataset | None = None) -> Retrained:
    """Train the trial's network again, with its recorded parameters and seed, for as many
    epochs as it trained (a pruned trial stops where it was pruned)."""
    from threadpoolctl import threadpool_limits

    config = study.sweep
    ref = next(r for r in config.datasets if r.name == study.dataset)
    run = trial.user_attrs["run"]
    seed = int(run.get("seed", config.seed))
    args = config.space.from_params(dict(trial.params))
    ds = with_features(dataset if dataset is not None else ref.load(seed=seed), args.features)
    recorded = len(run["curves"]["train_cost"])
    diverged = bool(trial.user_attrs.get("diverged"))
    epochs = args.epochs if diverged else max(1, recorded)
    # The workers train with one BLAS thread; so does the retraining, for the same sums.
    with threadpool_limits(1):
        if "stack" in run:  # trained stacked: alone in a stack of the same widths, depth and inputs: the same sums
            ((model, history),) = _in_stack(args, ds, config, run["stack"], epochs=epochs, seeds=[seed])
        else:
            model = MLP(ds.n_features, args.hidden, ds.n_outputs, activation=args.activation, seed=seed)
            history = train(
                model,
                ds,
                learning_rate=args.learning_rate,
                epochs=epochs,
                batch_size=args.batch_size,
                optimizer=args.optimizer,
                l2=args.l2,
                l1=args.l1,
                seed=seed,
                momentum=args.momentum,
                nesterov=args.nesterov,
                divergence_factor=config.divergence_factor,
            )
    return Retrained(model=model, dataset=ds, history=history, epochs=epochs)


def retrain_seeds(study: SweepStudy, trial: FrozenTrial, *, dataset: Dataset | None = None) -> list[Retrained]:
    """A trial with repeated seeds (``repeats``) trained again: every seed at once, as members of
    one stack of its recorded widths (a member's sums do not depend on its stack-mates), in the
    order of its recorded seeds. A trial without repeats: :func:`retrain` alone."""
    from threadpoolctl import threadpool_limits

    rep = trial.user_attrs.get("repeats")
    if not isinstance(rep, dict):
        return [retrain(study, trial, dataset=dataset)]
    config = study.sweep
    ref = next(r for r in config.datasets if r.name == study.dataset)
    run = trial.user_attrs["run"]
    args = config.space.from_params(dict(trial.params))
    ds = with_features(dataset if dataset is not None else ref.load(seed=config.seed), args.features)
    # The seeds train in step and leave together (when one diverges, at that epoch): as long as the longest.
    div = trial.user_attrs.get("divergence") or {}
    epochs = max([1, *(len(c.get("train_cost", [])) for c in rep["curves"]), int(div.get("epoch", 0))])
    with threadpool_limits(1):
        out = _in_stack(args, ds, config, run["stack"], epochs=epochs, seeds=[int(s) for s in rep["seeds"]])
    return [Retrained(model=m, dataset=ds, history=h, epochs=epochs) for m, h in out]


def _in_stack(args, ds: Dataset, config, stack: dict, *, epochs: int, seeds: list[int]) -> list:  # noqa: ANN001
    """The trial's configuration trained again with each of ``seeds`` as members of one stack of
    its recorded widths and inputs (the same sums as in the sweep's stack, whatever its mates)."""
    members = [
        Member(args.hidden, args.learning_rate, l2=args.l2, l1=args.l1, seed=seed, activation=args.activation)
        for seed in seeds
    ]
    return train_stacked(
        members,
        ds,
        epochs=epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        momentum=args.momentum,
        nesterov=args.nesterov,
        divergence_factor=config.divergence_factor,
        widths=stack["widths"],
        inputs=stack.get("inputs"),
    )


def seed_difference(trial: FrozenTrial, seed: int, history: History) -> tuple[int, str, float, float] | None:
    """:func:`first_difference` for the ``seed``-th seed of a trial with repeats (its own curves;
    a diverged seed's divergence is the trial's, compared by :func:`first_difference`)."""
    curves = trial.user_attrs["repeats"]["curves"][seed]
    now: dict[str, Any] = history.to_dict()
    for metric in ("train_cost", "val_cost", "val_accuracy", "val_r2"):
        old, new = curves.get(metric, []), now.get(metric, [])
        for epoch, (a, b) in enumerate(zip(old, new), start=1):
            if a != b:
                return epoch, metric, a, b
        if len(old) != len(new):
            epoch = min(len(old), len(new)) + 1
            return epoch, f"{metric} (epochs)", float(len(old)), float(len(new))
    return None


def first_difference(trial: FrozenTrial, history: History) -> tuple[int, str, float, float] | None:
    """The first epoch whose recorded value differs from the retrained one, or ``None``.

    Returns ``(epoch, metric, recorded, now)``; the divergence epoch counts as a value too.
    """
    curves = trial.user_attrs["run"]["curves"]
    now: dict[str, Any] = history.to_dict()
    for metric in ("train_cost", "val_cost", "val_accuracy", "val_r2"):
        old, new = curves.get(metric, []), now.get(metric, [])
        for epoch, (a, b) in enumerate(zip(old, new), start=1):
            if a != b:
                return epoch, metric, a, b
        if len(old) != len(new):
            epoch = min(len(old), len(new)) + 1
            return epoch, f"{metric} (epochs)", float(len(old)), float(len(new))
    recorded = trial.user_attrs.get("divergence")
    diverged = history.divergence
    if recorded and diverged is None:
        return recorded["epoch"], "divergence", 1.0, 0.0
    if not recorded and diverged is not None:
        return diverged.epoch, "divergence", 0.0, 1.0
    if recorded and diverged is not None and recorded["epoch"] != diverged.epoch:
        return recorded["epoch"], "divergence epoch", float(recorded["epoch"]), float(diverged.epoch)
    return None
