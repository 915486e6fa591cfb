"""Output layers and their cost functions, computed from the logits.

Each entry of :data:`OUTPUTS` pairs an output activation with its matching cost:
``sigmoid`` with binary cross-entropy, ``softmax`` with categorical
cross-entropy, ``identity`` with mean squared error. The cost is computed from
the logits (softplus / log-sum-exp), so it is finite for every finite logit,
and its gradient with respect to the logits has the simple form
``prediction - target``.

Each cost has two forms: one network's (its logits (n, k)), and a stack's (the logits of K
networks at once, (K, n, k), written for few calls per step; see :mod:`engine.stack.trainer`).
The two round differently, and each engine keeps its own, so that what either trained
retrains bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.activations import sigmoid
from engine.errors import SweepsError

__all__ = ["OUTPUTS", "OUTPUT_FOR_TASK", "Output", "add_penalty_gradient", "check_output"]


def _bce_cost_grad(z: np.ndarray, y: np.ndarray, *, grad: bool) -> tuple[float, np.ndarray | None]:
    # z: (n, 1) logits, y: (n,) labels in {0, 1}. The cost of a row is softplus(-z) when
    # y = 1 and softplus(z) when y = 0: one logaddexp, never negative, finite for any logit
    # (softplus(z) - z*y would cancel to tiny negatives in float32).
    n = z.shape[0]
    zf = z[:, 0]
    yf = y.astype(z.dtype, copy=False)
    cost = float(np.logaddexp(0.0, zf * (1.0 - 2.0 * yf)).sum()) / n
    if not grad:
        return cost, None
    d = sigmoid(z)
    d[:, 0] -= yf
    d *= 1.0 / n
    return cost, d


_ROWS: dict[int, np.ndarray] = {}
# Below this spread of the logits, one shift for the whole batch keeps every exp()
# within float32's normal range, so the per-row maxima are not needed.
_SAFE_SPREAD = 60.0


def _rows(n: int) -> np.ndarray:
    rows = _ROWS.get(n)
    if rows is None:
        rows = _ROWS[n] = np.arange(n)
    return rows


def _shift(z: np.ndarray) -> np.ndarray | float:
    """A per-row (or, when safe, one) value to subtract before exp(): the row maxima."""
    hi, lo = float(z.max()), float(z.min())
    if hi - lo < _SAFE_SPREAD:
        return hi
    return z.max(axis=1, keepdims=True)


def _softmax_cost_grad(z: np.ndarray, y: np.ndarray, *, grad: bool) -> tuple[float, np.ndarray | None]:
    # log-sum-exp with the maxima taken out: finite for any finite logits.
    # Works in place on z, which the caller hands over.
    n, k = z.shape
    rows = _rows(n)
    z -= _shift(z)
    picked = z[rows, y]
    np.exp(z, out=z)
    norm = z @ np.ones(k, dtype=z.dtype)
    cost = float(np.log(norm).sum() - picked.sum()) / n
    if not grad:
        return cost, None
    z /= norm[:, None]
    z[rows, y] -= 1.0
    z *= 1.0 / n
    return cost, z


def _mse_cost_grad(z: np.ndarray, y: np.ndarray, *, grad: bool) -> tuple[float, np.ndarray | None]:
    n = z.shape[0]
    diff = z - y.reshape(n, -1)
    cost = float(np.vdot(diff, diff)) / n
    if not grad:
        return cost, None
    diff *= 2.0 / n
    return cost, diff


def _softmax(z: np.ndarray) -> np.ndarray:
    out = z - _shift(z)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def _binary_proba(z: np.ndarray) -> np.ndarray:
    p = sigmoid(z)
    return np.hstack([1.0 - p, p])


# A stack's forms: per-member summed costs (K,) from logits (K, B, k), and the gradient of
# their mean. ``y`` is (B,) or (K, B), as the stack's targets give it (see Output.stacked_targets).
def _bce_stacked(
    z: np.ndarray, y: np.ndarray, sign: np.ndarray | None, *, grad: bool, scale: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    # y is float and sign is 1 - 2y; scale (if given) is -sign / B. c = softplus(z (1 - 2y))
    # is the cost of each row (as _bce_cost_grad: never negative), and sigmoid(z) - y =
    # (2y - 1) expm1(-c): the gradient from the same array.
    n = z.shape[1]
    c = np.logaddexp(0.0, z[..., 0] * sign)
    cost = c.sum(axis=1)
    if not grad:
        return cost, None
    np.negative(c, out=c)
    d = np.expm1(c, out=c)
    d *= sign * (-1.0 / n) if scale is None else scale
    return cost, d[..., None]


def _softmax_stacked(
    z: np.ndarray, y: np.ndarray, sign: np.ndarray | None, *, grad: bool, scale: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    n = z.shape[1]
    shifted = z - z.max(axis=2, keepdims=True)
    yk = np.broadcast_to(y, z.shape[:2])[..., None]
    picked = np.take_along_axis(shifted, yk, axis=2)[..., 0]
    e = np.exp(shifted)
    norm = e.sum(axis=2)
    cost = (np.log(norm) - picked).sum(axis=1)
    if not grad:
        return cost, None
    e /= norm[..., None]
    np.put_along_axis(e, yk, np.take_along_axis(e, yk, axis=2) - 1.0, axis=2)
    return cost, e * (1.0 / n)


def _mse_stacked(
    z: np.ndarray, y: np.ndarray, sign: np.ndarray | None, *, grad: bool, scale: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    n = z.shape[1]
    diff = z - y[..., None]
    cost = (diff * diff).sum(axis=(1, 2))
    return cost, (diff * (2.0 / n) if grad else None)


def _labels(y: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, None]:
    return y, None


def _signed_labels(y: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    yf = y.astype(dtype)
    return yf, 1.0 - 2.0 * yf


# Class predictions take any leading axes: a stack's (K, n, k) logits give (K, n) labels.
def _binary_predict(z: np.ndarray) -> np.ndarray:
    return (z[..., 0] > 0).astype(np.int64)


def _multiclass_predict(z: np.ndarray) -> np.ndarray:
    return z.argmax(axis=-1)


def _regression_predict(z: np.ndarray) -> np.ndarray:
    return z[:, 0].copy() if z.shape[1] == 1 else z.copy()


@dataclass(frozen=True)
class Output:
    """An output layer: its cost, its probabilities and its predictions, from logits."""

    name: str
    cost_name: str
    cost_grad: Callable[..., tuple[float, np.ndarray | None]]
    proba: Callable[[np.ndarray], np.ndarray] | None
    predict: Callable[[np.ndarray], np.ndarray]
    classification: bool
    # A stack's form of the cost: (logits (K, B, k), targets, sign, *, grad, scale) -> (costs (K,), gradient).
    stacked_cost_grad: Callable[..., tuple[np.ndarray, np.ndarray | None]]
    # Labels as stacked_cost_grad takes them: (labels, sign or None).
    stacked_targets: Callable[[np.ndarray, np.dtype], tuple[np.ndarray, np.ndarray | None]]

    def score(self, logits: np.ndarray, y: np.ndarray) -> float | np.ndarray:
        """Accuracy (classification) or R² (regression) of ``logits`` against the labels ``y``.

        Accuracy takes any leading axes (a stack's (K, n, k) logits give K accuracies); R² one
        network's (n, 1) logits.
        """
        if self.classification:
            return (self.predict(logits) == y).mean(axis=-1)
        pred = logits[:, 0]
        ss_res = float(np.sum((y - pred) ** 2))
        ss_tot = float(np.sum((y - y.mean()) ** 2))
        return 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0


OUTPUTS: dict[str, Output] = {
    "sigmoid": Output(
        "sigmoid",
        "binary_cross_entropy",
        _bce_cost_grad,
        _binary_proba,
        _binary_predict,
        True,
        stacked_cost_grad=_bce_stacked,
        stacked_targets=_signed_labels,
    ),
    "softmax": Output(
        "softmax",
        "categorical_cross_entropy",
        _softmax_cost_grad,
        _softmax,
        _multiclass_predict,
        True,
        stacked_cost_grad=_softmax_stacked,
        stacked_targets=_labels,
    ),
    "identity": Output(
        "identity",
        "mean_squared_error",
        _mse_cost_grad,
        None,
        _regression_predict,
        False,
        stacked_cost_grad=_mse_stacked,
        stacked_targets=_labels,
    ),
}

OUTPUT_FOR_TASK: dict[str, str] = {"binary": "sigmoid", "multiclass": "softmax", "regression": "identity"}


def add_penalty_gradient(
    grad_w: np.ndarray, w: np.ndarray, *, l2: float | np.ndarray | None, l1: float | np.ndarray | None
) -> None:
    """Add the gradient of ``l2/2 * sum(w**2) + l1 * sum(|w|)`` to ``grad_w`` in place, for one
    network's weights or a stack's rows (rates (K, 1)); a rate of ``None`` adds nothing."""
    if l2 is not None:
        grad_w += l2 * w
    if l1 is not None:
        grad_w += l1 * np.sign(w)


def check_output(name: object) -> str:
    """Return ``name`` if it is a known output layer, else raise ``ValueError``."""
    if not isinstance(name, str) or name not in OUTPUTS:
        raise SweepsError(f"'output' must be one of {sorted(OUTPUTS)}, but got {name!r}.")
    return name
