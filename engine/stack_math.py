"""The numerics of a stack's layers (see :mod:`engine.batched`): which rows get which activation,
the activations and their derivatives applied run by run, and the cost of K members at once.

Every function here works on arrays whose first axis is the stack's rows (one per member).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.activations import SLICE_FORMS, sigmoid_from_half_tanh

__all__ = ["row_order", "plan_layers", "activate", "derive"]


_GROUP = {"sigmoid": 1, "tanh": 2}


def row_order(activation: str, depth: int) -> tuple:
    """A member's place in the stack: rows are grouped by activation (sigmoid, then tanh, last);
    sigmoid rows sort by rising depth and the others by falling depth, so that at every layer
    the sigmoid and tanh rows that have it are side by side."""
    return _GROUP.get(activation, 0), activation, depth if activation == "sigmoid" else -depth


def plan_layers(rows: Sequence[tuple[str, int]], depth: int) -> list[list[tuple]]:
    """For each hidden layer, given each row's (activation, depth) in stack order: the runs of
    rows that really have the layer, one per activation ``(fns, s, e, e, whole)``, except that
    sigmoid rows followed by tanh rows make one run ``(None, s, m, e, whole)``: rows s:m
    sigmoid, m:e tanh (the sigmoid is computed as (1 + tanh(z / 2)) / 2)."""
    plan = []
    K = len(rows)
    for layer in range(depth):
        runs: list[list] = []
        for r, (act, d) in enumerate(rows):
            if d > layer:
                if runs and runs[-1][2] == act and runs[-1][1] == r:
                    runs[-1][1] = r + 1
                else:
                    runs.append([r, r + 1, act])
        steps: list[tuple] = []
        for st, e, a in runs:
            if a == "tanh" and steps and steps[-1][0] is None and steps[-1][3] == st:
                s0 = steps.pop()[1]
                steps.append((None, s0, st, e, s0 == 0 and e == K))  # sigmoid s0:st, tanh st:e
            elif a in ("sigmoid", "tanh"):
                m = e if a == "sigmoid" else st
                steps.append((None, st, m, e, st == 0 and e == K))
            elif a != "linear":
                steps.append((SLICE_FORMS[a], st, e, e, st == 0 and e == K))
        plan.append(steps)
    return plan


def activate(z: np.ndarray, steps: list[tuple]) -> None:
    """Apply a layer's activations to its pre-activations ``z`` in place (``steps`` from :func:`plan_layers`)."""
    for fns, s, m, e, whole in steps:
        if fns is not None:
            fns[0](z if whole else z[s:e])
            continue
        if m > s:
            sg = z[s:m]
            sg *= 0.5
        np.tanh(z if whole else z[s:e], out=z if whole else z[s:e])
        if m > s:
            sigmoid_from_half_tanh(sg)


def derive(a: np.ndarray, delta: np.ndarray, steps: list[tuple]) -> None:
    """Multiply ``delta`` in place by the derivative of a layer's activations, from their outputs ``a``."""
    for fns, s, m, e, whole in steps:
        aa = a if whole else a[s:e]
        if fns is not None:
            fns[1](aa, delta if whole else delta[s:e])
            continue
        t = aa * aa
        if m > s:  # sigmoid: a (1 - a) = a - a^2
            np.subtract(aa[: m - s], t[: m - s], out=t[: m - s])
        if e > m:  # tanh: 1 - a^2
            np.subtract(1.0, t[m - s :], out=t[m - s :])
        if whole:
            delta *= t
        else:
            delta[s:e] *= t
