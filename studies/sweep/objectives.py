"""The objectives a sweep can optimize, in a table keyed by the names users type.

A sweep's ``objective`` is one name (a single-objective study, as always) or a list of two
or more (a multi-objective study: Optuna keeps the Pareto front). Each objective has its
direction and says how a finished trial's value is computed from what it trained.

Example:
    >>> OBJECTIVES["parameters"].direction
    'minimize'
    >>> parameter_count(2, (8, 8), 1)  # (2+1)*8 + (8+1)*8 + (8+1)*1
    105
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from engine import History
from studies.sweep.space import TrainArgs

__all__ = [
    "OBJECTIVES",
    "CURVE_OBJECTIVES",
    "Direction",
    "Objective",
    "Trained",
    "parameter_count",
    "measure",
    "directions_of",
]


@dataclass(frozen=True)
class Trained:
    """What a finished trial's objectives are computed from.

    Attributes:
        history: its curves (the last epoch's values are its costs and accuracy).
        args: its training arguments (the network's hidden widths).
        inputs: the columns its network sees (its input features, before any stack padding).
        outputs: its network's outputs.
        train_seconds: its training time (its share of a stack's time when stacked).
    """

    history: History
    args: TrainArgs
    inputs: int
    outputs: int
    train_seconds: float


# Optuna's name of an objective's direction.
Direction = Literal["minimize", "maximize"]


@dataclass(frozen=True)
class Objective:
    """One objective: its direction, how to compute it, and whether it has a per-epoch curve
    (only those can be reported to a pruner, or be a sweep's single objective)."""

    direction: Direction
    measure: Callable[[Trained], float]
    about: str
    curve: bool = False
    classification_only: bool = False


def parameter_count(inputs: int, hidden: Sequence[int], outputs: int) -> int:
    """The weights and biases of a network ``inputs -> hidden... -> outputs``."""
    sizes = [int(inputs), *(int(h) for h in hidden), int(outputs)]
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


OBJECTIVES: dict[str, Objective] = {
    "parameters": Objective(
        "minimize",
        lambda t: float(parameter_count(t.inputs, t.args.hidden, t.outputs)),
        "the network's weights and biases (its input features included)",
    ),
    "train_seconds": Objective(
        "minimize",
        lambda t: float(t.train_seconds),
        "the trial's training time in seconds (depends on the machine and its load)",
    ),
    "val_accuracy": Objective(
        "maximize",
        lambda t: float(t.history.val_accuracy[-1]),
        "the last epoch's validation accuracy",
        curve=True,
        classification_only=True,
    ),
    "val_cost": Objective(
        "minimize", lambda t: float(t.history.val_cost[-1]), "the last epoch's validation cost", curve=True
    ),
}
# The objectives with a per-epoch curve: a single objective is one of them.
CURVE_OBJECTIVES = tuple(sorted(name for name, o in OBJECTIVES.items() if o.curve))


def measure(names: Sequence[str], trained: Trained) -> list[float]:
    """The values of the objectives ``names`` (already checked against the table) for a trial."""
    return [OBJECTIVES[name].measure(trained) for name in names]


def directions_of(names: Sequence[str]) -> list[Direction]:
    """Optuna's directions of the objectives ``names``."""
    return [OBJECTIVES[name].direction for name in names]
