"""Output layers and their cost functions, computed from the logits.

Each entry of :data:`OUTPUTS` pairs an output activation with its matching cost:
``sigmoid`` with binary cross-entropy, ``softmax`` with categorical
cross-entropy, ``identity`` with mean squared error. The cost is computed from
the logits (softplus / log-sum-exp), so it is finite for every finite logit,
and its gradient with respect to the logits has the simple form
``prediction - target``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["OUTPUTS", "OUTPUT_FOR_TASK", "Output", "check_output"]


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
    d = _stable_sigmoid(z)
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


def _stable_sigmoid(z: np.ndarray) -> np.ndarray:
    out = z * 0.5
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    out = z - _shift(z)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def _binary_proba(z: np.ndarray) -> np.ndarray:
    p = _stable_sigmoid(z)
    return np.hstack([1.0 - p, p])


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
    "sigmoid": Output("sigmoid", "binary_cross_entropy", _bce_cost_grad, _binary_proba, _binary_predict, True),
    "softmax": Output("softmax", "categorical_cross_entropy", _softmax_cost_grad, _softmax, _multiclass_predict, True),
    "identity": Output("identity", "mean_squared_error", _mse_cost_grad, None, _regression_predict, False),
}

OUTPUT_FOR_TASK: dict[str, str] = {"binary": "sigmoid", "multiclass": "softmax", "regression": "identity"}


def check_output(name: object) -> str:
    """Return ``name`` if it is a known output layer, else raise ``ValueError``."""
    if not isinstance(name, str) or name not in OUTPUTS:
        raise ValueError(f"'output' must be one of {sorted(OUTPUTS)}, but got {name!r}.")
    return name
