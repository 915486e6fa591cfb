"""The readers of one value, and where the values came from (``Where``, for messages): names,
integers, feature families, and the training settings' values, fixed or searched."""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

from engine import ACTIVATIONS, OPTIMIZERS, check_features
from engine.checks import MAX_EPOCHS, RULES, Interval
from studies.errors import SweepsError
from studies.sweep import REGULARIZATIONS

if TYPE_CHECKING:
    from optuna.distributions import CategoricalChoiceType


NAME_MAX = 100  # characters in a sweep's or a dataset's name
NAME_RE = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{NAME_MAX - 1}}}$")


def shown_name(value: object) -> str:
    """A name as a message quotes it: whole when it could be one, else its start and its length
    (a name of 100,000 characters is not repeated)."""
    text = repr(value)
    if isinstance(value, str) and len(value) > NAME_MAX:
        return f"{value[:40]!r}... ({len(value)} characters, at most {NAME_MAX})"
    return text if len(text) <= NAME_MAX + 2 else f"{text[:40]}... (a {type(value).__name__})"


CHOICES: dict[str, tuple[str, ...] | tuple[bool, ...]] = {
    "activation": tuple(sorted(ACTIVATIONS)),
    "optimizer": tuple(sorted(OPTIMIZERS)),
    "regularization": REGULARIZATIONS,
    "nesterov": (False, True),
}
# The engine's rules for the numeric settings, with the sweep's own limit on epochs.
SETTING_RULES = {**RULES, "epochs": Interval(True, 1, MAX_EPOCHS)}


class Where:
    """The origin of the values, for messages: a file name or a preset."""

    def __init__(self, origin: str, *, stored: bool = False) -> None:
        self.origin = origin
        self.stored = stored  # a sweep already in a storage: rules added since it was stored are not applied

    def error(self, message: str) -> ValueError:
        return SweepsError(f"{self.origin}: {message}")


def unknown_key(where: Where, key: str, allowed: tuple[str, ...] | list[str], prefix: str = "") -> ValueError:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
    return where.error(f"unknown key {prefix + key!r}{hint}; allowed keys are {sorted(allowed)}.")


def read_int(where: Where, key: str, value: object, low: int) -> int:
    try:
        return int(Interval(True, low).check(key, value))
    except ValueError as exc:
        raise where.error(str(exc)) from None


def read_families(where: Where, key: str, value: object) -> tuple[str, ...]:
    """Check a list of feature families; returns them in the columns' order."""
    try:
        return check_features(value, key=key)  # type: ignore[arg-type]  # it checks any value
    except ValueError as exc:
        raise where.error(str(exc)) from None


def setting_value(where: Where, key: str, name: str, value: object) -> CategoricalChoiceType | list[str]:
    """Check one value of a training setting (fixed, or an element of a list)."""
    if name == "features":
        return list(read_families(where, key, value))
    return choice_value(where, key, name, value)


def choice_value(where: Where, key: str, name: str, value: object) -> CategoricalChoiceType:
    """Check one value of a training setting other than the features."""
    if name in CHOICES:
        allowed = CHOICES[name]
        if name == "nesterov":
            if not isinstance(value, bool):
                raise where.error(f"{key!r} must be true or false, but got {value!r}.")
            return value
        if value not in allowed or not isinstance(value, str):
            raise where.error(f"{key!r} must be one of {sorted(allowed)}, but got {value!r}.")
        return value
    return number_value(where, key, name, value)


def number_value(where: Where, key: str, name: str, value: object) -> float | int:
    """Check one value of a numeric training setting."""
    try:
        return SETTING_RULES[name].check(key, value)
    except ValueError as exc:
        raise where.error(str(exc)) from None
