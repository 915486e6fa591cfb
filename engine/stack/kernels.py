"""The activations of a stack's layers (see :mod:`engine.stack.trainer`): which rows get which
activation, and the activations and their derivatives applied run by run.

Every function here works on arrays whose first axis is the stack's rows (one per member).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.activations import SLICE_FORMS, sigmoid_from_half_tanh

__all__ = ["Run", "row_order", "plan_layers", "activate", "derive"]


_GROUP = {"sigmoid": 1, "tanh": 2}


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive rows of the stack that have a layer and take its activation alike.

    Attributes:
        rows: the rows.
        whole: the run is every row of the stack (no slice needed).
        forms: the activation and its derivative (from ``SLICE_FORMS``); ``None`` for
            ``n_sigmoid`` sigmoid rows followed by ``n_tanh`` tanh rows, which share one tanh
            (the sigmoid is computed as ``(1 + tanh(z / 2)) / 2``).
    """

    rows: slice
    whole: bool
    forms: tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, np.ndarray], None]] | None = None
    n_sigmoid: int = 0
    n_tanh: int = 0


def row_order(activation: str, depth: int) -> tuple:
    """A member's place in the stack: rows are grouped by activation (sigmoid, then tanh, last);
    sigmoid rows sort by rising depth and the others by falling depth, so that at every layer
    the sigmoid and tanh rows that have it are side by side."""
    return _GROUP.get(activation, 0), activation, depth if activation == "sigmoid" else -depth


def plan_layers(rows: Sequence[tuple[str, int]], depth: int) -> list[list[Run]]:
    """For each hidden layer, given each row's (activation, depth) in stack order: the runs of
    rows that really have the layer, one per activation, except that sigmoid rows followed by
    tanh rows make one run (linear rows need none)."""
    plan = []
    K = len(rows)
    for layer in range(depth):
        spans: list[list] = []  # [start, end, activation] of the rows that have the layer
        for r, (act, d) in enumerate(rows):
            if d > layer:
                if spans and spans[-1][2] == act and spans[-1][1] == r:
                    spans[-1][1] = r + 1
                else:
                    spans.append([r, r + 1, act])
        runs: list[Run] = []
        for s, e, act in spans:
            if act == "tanh" and runs and runs[-1].forms is None and runs[-1].rows.stop == s:
                s0 = runs.pop().rows.start  # sigmoid rows s0:s, then tanh rows s:e
                runs.append(Run(slice(s0, e), s0 == 0 and e == K, n_sigmoid=s - s0, n_tanh=e - s))
            elif act in ("sigmoid", "tanh"):
                sig = e - s if act == "sigmoid" else 0
                runs.append(Run(slice(s, e), s == 0 and e == K, n_sigmoid=sig, n_tanh=e - s - sig))
            elif act != "linear":
                runs.append(Run(slice(s, e), s == 0 and e == K, forms=SLICE_FORMS[act]))
        plan.append(runs)
    return plan


def activate(z: np.ndarray, runs: list[Run]) -> None:
    """Apply a layer's activations to its pre-activations ``z`` in place (``runs`` from :func:`plan_layers`)."""
    for run in runs:
        zr = z if run.whole else z[run.rows]
        if run.forms is not None:
            run.forms[0](zr)
            continue
        k = run.n_sigmoid
        if k:
            sg = zr[:k]
            sg *= 0.5
        np.tanh(zr, out=zr)
        if k:
            sigmoid_from_half_tanh(sg)


def derive(a: np.ndarray, delta: np.ndarray, runs: list[Run]) -> None:
    """Multiply ``delta`` in place by the derivative of a layer's activations, from their outputs ``a``."""
    for run in runs:
        ar, dr = (a, delta) if run.whole else (a[run.rows], delta[run.rows])
        if run.forms is not None:
            run.forms[1](ar, dr)
            continue
        t = ar * ar
        k = run.n_sigmoid
        if k:  # sigmoid: a (1 - a) = a - a^2
            np.subtract(ar[:k], t[:k], out=t[:k])
        if run.n_tanh:  # tanh: 1 - a^2
            np.subtract(1.0, t[k:], out=t[k:])
        dr *= t
