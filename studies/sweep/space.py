"""The search space: fixed training arguments and what Optuna searches, as engine arguments.

Every trainable setting has a name (the sweep file's key) and is either fixed or
searched (a range or a list of choices). ``hidden_units`` is suggested once per
layer (``hidden_units_1``, ``hidden_units_2``, ...), or fixed as one width for every layer or
a list of widths, one per layer (the list sets the depth too) and ``regularization_rate``
only when ``regularization`` is not ``"none"``: conditional parameters appear
only when they apply. ``features`` (the input feature families, see
:mod:`engine.data.features`) is a list when fixed, and searched as :class:`Subsets`: one
yes/no parameter per family (``features_linear``, ``features_sines``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import CategoricalChoiceType

from engine import check_features
from engine.data.features import n_columns
from studies.errors import SweepsError

__all__ = [
    "Range",
    "Choice",
    "Subsets",
    "TrainArgs",
    "SearchSpace",
    "SETTINGS",
    "INT_SETTINGS",
    "REGULARIZATIONS",
    "CHOICE_SETTINGS",
]

REGULARIZATIONS = ("l1", "l2", "none")

# Every setting, with its default when it is neither fixed nor searched.
SETTINGS: dict[str, object] = {
    "learning_rate": 0.03,
    "hidden_layers": 1,
    "hidden_units": 8,
    "activation": "tanh",
    "regularization": "none",
    "regularization_rate": 0.0,
    "optimizer": "sgd",
    "epochs": 100,
    "batch_size": 10,
    "momentum": 0.9,
    "nesterov": False,
    "features": ("linear",),
}
INT_SETTINGS = ("batch_size", "epochs", "hidden_layers", "hidden_units")
CHOICE_SETTINGS = ("activation", "nesterov", "optimizer", "regularization")


@dataclass(frozen=True)
class Range:
    """A numeric range searched by ``suggest_int`` or ``suggest_float``."""

    low: float
    high: float
    log: bool = False
    step: float | None = None
    integer: bool = False

    def suggest(self, trial: optuna.trial.BaseTrial, name: str) -> float | int:
        if self.integer:
            return trial.suggest_int(name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list[float | int] | None:
        """The values of a finite range, or ``None`` for a continuous one."""
        if self.integer:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            return None
        n = int(math.floor((self.high - self.low) / self.step + 1e-9))
        return [self.low + i * self.step for i in range(n + 1)]

    def count(self) -> int | None:
        """How many values :meth:`grid` holds, counted without building them (``None``: continuous)."""
        if self.integer:
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1
        if self.step is None:
            return None
        return int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"low": self.low, "high": self.high}
        if self.log:
            d["log"] = True
        if self.step is not None:
            d["step"] = self.step
        return d


@dataclass(frozen=True)
class Choice:
    """A list of choices searched by ``suggest_categorical``."""

    choices: tuple[CategoricalChoiceType, ...]

    def suggest(self, trial: optuna.trial.BaseTrial, name: str) -> CategoricalChoiceType:
        return trial.suggest_categorical(name, list(self.choices))

    def grid(self) -> list[CategoricalChoiceType]:
        return list(self.choices)

    def count(self) -> int:
        return len(self.choices)

    def to_dict(self) -> list[object]:
        return list(self.choices)


@dataclass(frozen=True)
class Subsets:
    """Feature families searched as subsets: one yes/no parameter per family, named
    ``features_<family>`` (``suggest_categorical`` of ``[False, True]``), at least one on.

    When the sampler turns every family off, the trial uses the first family of
    ``families`` (in the table's order: ``linear`` when it is listed). This is a function of
    the parameters alone, so a trial rebuilt from its recorded parameters gets it too.
    """

    families: tuple[str, ...]  # in engine.FEATURES' order

    def params(self, name: str = "features") -> list[str]:
        """The Optuna parameters, one per family."""
        return [f"{name}_{f}" for f in self.families]

    def suggest(self, trial: optuna.trial.BaseTrial, name: str) -> tuple[str, ...]:
        on = tuple(f for f, p in zip(self.families, self.params(name)) if trial.suggest_categorical(p, [False, True]))
        return on or self.families[:1]

    def grid(self) -> list[bool]:
        """Each family parameter's values."""
        return [False, True]

    def count(self) -> int:
        return 2

    def to_dict(self) -> dict[str, list[str]]:
        return {"subsets": list(self.families)}


Searched = Range | Choice | Subsets


@dataclass(frozen=True)
class TrainArgs:
    """One trial's engine arguments, whether fixed or sampled."""

    learning_rate: float
    hidden: tuple[int, ...]
    activation: str
    regularization: str
    regularization_rate: float
    optimizer: str
    epochs: int
    batch_size: int
    momentum: float
    nesterov: bool
    features: tuple[str, ...] = ("linear",)

    @property
    def l1(self) -> float:
        return self.regularization_rate if self.regularization == "l1" else 0.0

    @property
    def l2(self) -> float:
        return self.regularization_rate if self.regularization == "l2" else 0.0

    def label(self, number: int) -> str:
        """A run name that says what the trial is, e.g. ``t12 relu 2x16 lr=0.03``."""
        h = self.hidden
        if not h:
            arch = "linear-model"
        elif len(set(h)) == 1:
            arch = f"{len(h)}x{h[0]}"
        else:
            arch = "-".join(map(str, h))
        reg = "" if self.regularization == "none" else f" {self.regularization}={self.regularization_rate:.2g}"
        inputs = "" if self.features == ("linear",) else f" in={'+'.join(self.features)}"
        return f"t{number} {self.activation} {arch} lr={self.learning_rate:.2g}{reg}{inputs}"


@dataclass(frozen=True)
class SearchSpace:
    """Fixed settings and searched ones; ``suggest`` turns a trial into :class:`TrainArgs`."""

    fixed: dict[str, Any] = field(default_factory=dict)  # each setting's value, of the setting's type
    searched: dict[str, Searched] = field(default_factory=dict)

    def _value(self, trial: optuna.trial.BaseTrial, name: str, param: str | None = None) -> Any:
        if name in self.searched:
            return self.searched[name].suggest(trial, param or name)
        return self.fixed.get(name, SETTINGS[name])

    def _hidden(self, trial: optuna.trial.BaseTrial) -> tuple[int, ...]:
        fixed = self.fixed.get("hidden_units")
        if isinstance(fixed, (list, tuple)):  # one width per layer, fixed (what 'sweep best' writes)
            return tuple(int(w) for w in fixed)
        layers = int(self._value(trial, "hidden_layers"))
        return tuple(int(self._value(trial, "hidden_units", f"hidden_units_{i + 1}")) for i in range(layers))

    def suggest(self, trial: optuna.trial.BaseTrial) -> TrainArgs:
        hidden = self._hidden(trial)
        regularization = str(self._value(trial, "regularization"))
        rate = float(self._value(trial, "regularization_rate")) if regularization != "none" else 0.0
        optimizer = str(self._value(trial, "optimizer"))
        return TrainArgs(
            learning_rate=float(self._value(trial, "learning_rate")),
            hidden=hidden,
            activation=str(self._value(trial, "activation")),
            regularization=regularization,
            regularization_rate=rate,
            optimizer=optimizer,
            epochs=int(self._value(trial, "epochs")),
            batch_size=int(self._value(trial, "batch_size")),
            momentum=float(self._value(trial, "momentum")) if optimizer == "momentum" else 0.9,
            nesterov=bool(self._value(trial, "nesterov")) if optimizer == "momentum" else False,
            features=check_features(tuple(self._value(trial, "features"))),
        )

    def from_params(self, params: dict[str, object]) -> TrainArgs:
        """Rebuild a trial's arguments from its recorded parameters (for reproduce and reports)."""
        return self.suggest(optuna.trial.FixedTrial(params))

    def _bounds(self, name: str) -> tuple[int, int]:
        """The lowest and highest value an integer setting takes, fixed or searched."""
        s = self.searched.get(name)
        widths = self.fixed.get("hidden_units")
        if s is None and isinstance(widths, (list, tuple)):  # fixed widths, one per layer
            if name == "hidden_layers":
                return len(widths), len(widths)
            if name == "hidden_units":
                return min(widths, default=0), max(widths, default=0)
        if s is None:
            v = int(self.fixed.get(name, SETTINGS[name]))
            return v, v
        if isinstance(s, Range):
            return int(s.low), int(s.high)
        assert isinstance(s, Choice)  # only the features are searched as subsets
        values = [int(c) for c in s.choices if c is not None]  # an integer setting's choices: ints
        return min(values), max(values)

    def max_layers(self) -> int:
        return self._bounds("hidden_layers")[1]

    def max_epochs(self) -> int:
        """The most epochs any trial of this space trains."""
        return self._bounds("epochs")[1]

    def stack_shape(self, n_features: int) -> tuple[int, int]:
        """(layers, width) of a stack that holds any network of this space (as deep as the
        deepest, as wide as the widest; identity layers of a network without hidden layers
        carry the inputs)."""
        fewest, most = self._bounds("hidden_layers")
        return most, max(self._bounds("hidden_units")[1], n_features if fewest == 0 else 0)

    def stack_widths(self, n_features: int) -> list[int]:
        """The hidden widths of :meth:`stack_shape`, one per layer."""
        layers, width = self.stack_shape(n_features)
        return [width] * layers

    def grid(self) -> dict[str, Sequence[CategoricalChoiceType]]:
        """Optuna parameter name -> values, for the grid sampler; raises if a range is continuous."""
        out: dict[str, Sequence[CategoricalChoiceType]] = {}
        for name, searched in sorted(self.searched.items()):
            values = searched.grid()
            if values is None:
                raise _continuous(name)
            if name == "hidden_units":
                for i in range(self.max_layers()):
                    out[f"hidden_units_{i + 1}"] = values
            elif isinstance(searched, Subsets):
                for param in searched.params(name):
                    out[param] = values
            else:
                out[name] = values
        return out

    def families(self) -> tuple[str, ...]:
        """Every feature family a trial of this space may use."""
        s = self.searched.get("features")
        if isinstance(s, Subsets):
            return s.families
        return check_features(tuple(self.fixed.get("features", SETTINGS["features"])))

    def input_width(self, n_raw: int) -> int:
        """The most input columns a trial's network may have on data of ``n_raw`` raw features:
        the width of a stack that holds every trial (narrower inputs are padded with zeros)."""
        return n_columns(n_raw, self.families())

    def describe_features(self) -> str:
        """The inputs in words, e.g. ``linear+sines`` or ``searched: linear, squares on or off``."""
        s = self.searched.get("features")
        if isinstance(s, Subsets):
            return f"searched: each of {', '.join(s.families)} on or off (at least one)"
        return "+".join(self.families())

    def grid_size(self) -> int:
        """The grid sampler's points, counted without building them (a range of 10**12 steps is
        a number here, not a list); raises as :meth:`grid` does if a range is continuous."""
        size = 1
        for name, searched in sorted(self.searched.items()):
            n = searched.count()
            if n is None:
                raise _continuous(name)
            if name == "hidden_units":
                size *= n ** self.max_layers()
            elif isinstance(searched, Subsets):
                size *= n ** len(searched.params(name))
            else:
                size *= n
        return size

    def grid_params(self) -> int:
        """How many parameters each grid point holds (one per grid dimension)."""
        return sum(
            self.max_layers() if name == "hidden_units" else len(s.params(name)) if isinstance(s, Subsets) else 1
            for name, s in self.searched.items()
        )

    def to_dict(self) -> dict[str, dict[str, object]]:
        return {
            "train": dict(sorted(self.fixed.items())),
            "search": {k: v.to_dict() for k, v in sorted(self.searched.items())},
        }


def _continuous(name: str) -> SweepsError:
    return SweepsError(
        f"sampler 'grid' needs every [search] entry to be a list or a range with a 'step', "
        f"but 'search.{name}' is a continuous range."
    )
