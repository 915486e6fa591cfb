"""Constraints on a trial (``[constraints]`` in the sweep file) and repeated seeds (``repeats``).

A constraint bounds one measure of a trained trial, keyed by the names users type
(:data:`CONSTRAINTS`): ``parameters = { max = 200 }``, ``val_accuracy = { min = 0.9 }``.
Each bound gives one value in Optuna's convention, ``<= 0`` feasible: ``value - max`` or
``min - value``. A trial keeps them in its user attribute ``"constraints"`` (key -> value)
and its verdict in ``"feasible"``, and gives them to Optuna with ``Trial.set_constraint``
(system attributes ``constraints:<key>``), which Optuna 5's TPE and NSGA-II read, as
they read what a ``constraints_func`` returned (deprecated in Optuna 5.0, to be removed in
7.0); the summaries pick the feasible best with any sampler.

With ``repeats = K`` a trial trains K seeds of one configuration as members of one stack;
its curves are the seeds' mean (:func:`mean_history`), what the pruner and the objectives
see.

Example:
    >>> Constraint("parameters", high=200).violations(150.0)
    {'parameters.max': -50.0}
    >>> is_feasible({"parameters.max": -50.0, "val_accuracy.min": 0.01})
    False
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from optuna.trial import FrozenTrial

from engine import History
from studies.sweep.objectives import OBJECTIVES, Trained

__all__ = [
    "CONSTRAINTS",
    "MAX_REPEATS",
    "Constraint",
    "constraint_keys",
    "constraint_values",
    "is_feasible",
    "feasible",
    "mean_history",
    "repeat_seeds",
]

# At most this many seeds per configuration (each is a member of the trial's stack).
MAX_REPEATS = 64
# What a violated constraint counts when its measure is not a number (a diverged trial's cost).
UNMEASURED = 1.0e9


def _last(metric: str) -> Callable[[Trained], float]:
    def measure(t: Trained) -> float:
        curve = getattr(t.history, metric)
        return float(curve[-1]) if curve else math.nan

    return measure


# Name -> how it is measured on a trained trial (the last epoch's value of a curve).
CONSTRAINTS: dict[str, Callable[[Trained], float]] = {
    "parameters": OBJECTIVES["parameters"].measure,
    "train_seconds": OBJECTIVES["train_seconds"].measure,
    "train_cost": _last("train_cost"),
    "val_accuracy": _last("val_accuracy"),
    "val_cost": _last("val_cost"),
    "val_r2": _last("val_r2"),
}


@dataclass(frozen=True)
class Constraint:
    """Bounds on one measure of :data:`CONSTRAINTS`: ``low <= value <= high`` (either may be ``None``)."""

    name: str
    low: float | None = None
    high: float | None = None

    def violations(self, value: float) -> dict[str, float]:
        """Optuna's constraint values (``<= 0`` feasible), one per bound, keyed ``name.min``/``name.max``."""
        out: dict[str, float] = {}
        for bound, limit, sign in (("min", self.low, -1.0), ("max", self.high, 1.0)):
            if limit is not None:
                v = sign * (value - limit)
                out[f"{self.name}.{bound}"] = float(v) if math.isfinite(v) else UNMEASURED
        return out

    def to_dict(self) -> dict[str, float]:
        d = {}
        if self.low is not None:
            d["min"] = self.low
        if self.high is not None:
            d["max"] = self.high
        return d


def constraint_values(constraints: Sequence[Constraint], trained: Trained) -> dict[str, float]:
    """Every bound's value for a trained trial (``<= 0`` feasible), by key."""
    out: dict[str, float] = {}
    for c in constraints:
        out.update(c.violations(CONSTRAINTS[c.name](trained)))
    return out


def is_feasible(values: dict[str, float]) -> bool:
    return all(v <= 0.0 for v in values.values())


def feasible(trial: FrozenTrial) -> bool:
    """Whether a stored trial met the sweep's constraints (a sweep without constraints: always)."""
    return trial.user_attrs.get("feasible", True) is not False


def constraint_keys(constraints: Sequence[Constraint]) -> list[str]:
    return [k for c in constraints for k in c.violations(0.0)]


def repeat_seeds(seed: int, repeats: int) -> list[int]:
    """The seeds of a configuration's repeats: the sweep's seed first (``repeats = 1`` trains as before)."""
    return [seed + j for j in range(repeats)]


def mean_history(histories: Sequence[History], *, last: bool = False) -> History:
    """The seeds' mean curves, epoch by epoch (they train in step, so their curves are as long),
    the first divergence among them, and the first seed's epoch times (the stack's).
    ``last``: only the latest epoch's means (what a report to the pruner needs, every epoch)."""
    first = histories[0]
    n = min(h.epochs for h in histories)
    if last:
        return _last_means(histories, n)

    def mean(metric: str) -> list[float]:
        curves = [getattr(h, metric)[:n] for h in histories]
        if not all(len(c) == n for c in curves) or not n:
            return []
        return [_mean(epoch) for epoch in zip(*curves)]

    return History(
        task=first.task,
        initial_cost=_mean([h.initial_cost for h in histories]),
        train_cost=mean("train_cost"),
        val_cost=mean("val_cost"),
        val_accuracy=mean("val_accuracy"),
        val_r2=mean("val_r2"),
        epoch_time=list(first.epoch_time[:n]),
        divergence=next((h.divergence for h in histories if h.divergence is not None), None),
        stopped_early=any(h.stopped_early for h in histories),
    )


def _mean(values: Sequence[float]) -> float:
    """The mean of a few floats: their sum in order, then one division. One definition for a
    whole curve and for its latest epoch alone (the pruner's report, every epoch of every
    trial), without NumPy's cost per call; ``np.mean`` sums 8 values or more pairwise."""
    total = float(values[0])
    for v in values[1:]:
        total += float(v)
    return total / len(values)


def _last_means(histories: Sequence[History], n: int) -> History:
    """:func:`mean_history` with ``last``: the means of epoch ``n`` (counted from 1) alone."""
    first = histories[0]

    def mean(metric: str) -> list[float]:
        curves = [getattr(h, metric) for h in histories]
        if not n or not all(len(c) >= n for c in curves):
            return []
        return [_mean([c[n - 1] for c in curves])]

    return History(
        task=first.task,
        initial_cost=_mean([h.initial_cost for h in histories]),
        train_cost=mean("train_cost"),
        val_cost=mean("val_cost"),
        val_accuracy=mean("val_accuracy"),
        val_r2=mean("val_r2"),
        epoch_time=list(first.epoch_time[n - 1 : n]) if n else [],
        divergence=next((h.divergence for h in histories if h.divergence is not None), None),
        stopped_early=any(h.stopped_early for h in histories),
    )
