"""The divergence rule, one for the single network and the stack: a cost diverged when it is
not below ``divergence_factor`` times the untrained network's cost (NaN is below nothing)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["DIVERGENCE_CAUSES", "Divergence", "divergence_limit"]

DIVERGENCE_CAUSES = ("exploding", "inf", "nan")


def divergence_limit(initial_cost: float, factor: float) -> float:
    """The cost from which training has diverged: ``cost < limit`` is healthy (``False`` for NaN).

    An untrained cost that is not finite sets no limit beyond infinity itself.
    """
    return factor * initial_cost if math.isfinite(initial_cost) else math.inf


@dataclass(frozen=True)
class Divergence:
    """The first sign that training diverged.

    Attributes:
        epoch: the epoch (from 1) in which it happened.
        step: the optimizer step (from 1, counted over all epochs) whose cost gave it away.
        cause: ``"nan"``, ``"inf"``, or ``"exploding"`` (the cost passed ``divergence_factor``
            times the untrained network's cost).
        last_finite_cost: the last healthy cost seen before it (the untrained cost if none).
        cost: the offending cost (NaN, inf or the exploding value).
        curve: the curve that cost belongs to: ``"train_cost"`` (a mini-batch's cost) or
            ``"val_cost"`` (the validation split's, after the epoch).
    """

    epoch: int
    step: int
    cause: str
    last_finite_cost: float
    cost: float
    curve: str = "train_cost"

    @classmethod
    def at(cls, epoch: int, step: int, cost: float, last_good: float, *, curve: str = "train_cost") -> Divergence:
        """The divergence that ``cost`` (not below the limit) shows at ``step``, named by its cause."""
        cause = "nan" if math.isnan(cost) else "inf" if math.isinf(cost) else "exploding"
        return cls(
            epoch=epoch, step=step, cause=cause, last_finite_cost=float(last_good), cost=float(cost), curve=curve
        )

    def to_dict(self) -> dict[str, float | int | str]:
        d = asdict(self)
        # JSON has no inf/nan: say it in words.
        d["cost"] = self.cost if math.isfinite(self.cost) else repr(self.cost)
        return d
