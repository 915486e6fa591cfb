"""The rules on numeric parameters, in one table keyed by the names users type.

In the spirit of scikit-learn's ``_parameter_constraints``: each rule says a number's type
and bounds, and says it in words for the error. The engine's entry points
(:func:`engine.train`, :class:`engine.MLP`, :class:`engine.Stack`), the sweep file
(``sweeps.spec``) and the command line check the same rules from this table.

Example:
    >>> check("learning_rate", 0.1)
    0.1
    >>> check("momentum", 1.0)
    Traceback (most recent call last):
    ...
    ValueError: 'momentum' must be a number in [0, 1), but got 1.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import cast

import numpy as np

from engine.errors import SweepsError

__all__ = ["Interval", "MAX_EPOCHS", "RULES", "check", "check_number"]

# The most epochs a sweep's trial may train: a trial keeps a curve point per epoch (in memory,
# in the storage, in MLflow). The engine alone trains any number (it keeps no table per epoch).
MAX_EPOCHS = 100_000


@dataclass(frozen=True)
class Interval:
    """A rule on a number: integer or real, finite, between ``low`` and ``high`` (either may
    be ``None``: unbounded), each bound included unless ``low_open``/``high_open``."""

    integer: bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: object) -> bool:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral if self.integer else Real):
            return False
        number = cast("float", value)  # a Real: numbers.Real declares no comparisons to type-check
        if not math.isfinite(number):
            return False
        if self.low is not None and not (number > self.low if self.low_open else number >= self.low):
            return False
        return self.high is None or (number < self.high if self.high_open else number <= self.high)

    @property
    def words(self) -> str:
        """The rule as the error says it: ``an integer >= 1``, ``a number in [0, 1)``."""
        kind = "an integer" if self.integer else "a number"
        fmt = (lambda v: f"{int(v)}") if self.integer else (lambda v: f"{v:g}")
        if self.low is not None and self.high is not None:
            return (
                f"{kind} in {'(' if self.low_open else '['}{fmt(self.low)}, "
                f"{fmt(self.high)}{')' if self.high_open else ']'}"
            )
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {fmt(self.low)}"
        if self.high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {fmt(self.high)}"
        return f"a finite {'integer' if self.integer else 'number'}"

    def check(self, name: str, value: object) -> float | int:
        """``value`` if it holds (an ``int`` for an integer rule, else a ``float``); else a
        ``ValueError`` naming ``name``, the rule and the value."""
        if not self.holds(value):
            raise SweepsError(f"'{name}' must be {self.words}, but got {value!r}.")
        number = cast("float", value)  # holds() checked that it is a finite Real
        return int(number) if self.integer else float(number)


# Every numeric setting of a network and its training, by the name users type.
RULES: dict[str, Interval] = {
    "learning_rate": Interval(False, 0.0, low_open=True),
    "regularization_rate": Interval(False, 0.0),
    "l1": Interval(False, 0.0),
    "l2": Interval(False, 0.0),
    "momentum": Interval(False, 0.0, 1.0, high_open=True),
    "hidden_layers": Interval(True, 0),
    "hidden_units": Interval(True, 1),
    "epochs": Interval(True, 1),
    "batch_size": Interval(True, 1),
    "divergence_factor": Interval(False, 1.0, low_open=True),
    "n_inputs": Interval(True, 1),
    "n_outputs": Interval(True, 1),
}


def check(name: str, value: object, *, key: str | None = None) -> float | int:
    """Check ``value`` against the rule of setting ``name`` (see :data:`RULES`); the error
    names ``key`` (default ``name``). Returns the value as an ``int`` or a ``float``."""
    if name not in RULES:
        raise KeyError(f"no rule for {name!r}; the rules are {sorted(RULES)}")
    return RULES[name].check(key or name, value)


def check_number(name: str, value: object, *, low: float, low_open: bool = False, integer: bool = False) -> None:
    """A rule made on the spot (a bound that depends on other arguments), said as the table's are."""
    Interval(integer, low, low_open=low_open).check(name, value)
