"""Checks of the numbers the engine's entry points take (:func:`engine.train`, :class:`engine.Stack`)."""

from __future__ import annotations

import math

__all__ = ["check_number"]


def check_number(name: str, value: object, *, low: float, low_open: bool = False, integer: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number (an integer if ``integer``) at least
    ``low`` (above it if ``low_open``), naming the key, the rule and the value."""
    kind = int if integer else (int, float)
    ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low)
    if not ok:
        rule = f"{'an integer' if integer else 'a number'} {'>' if low_open else '>='} {low:g}"
        raise ValueError(f"'{name}' must be {rule}, but got {value!r}.")
