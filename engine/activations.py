"""Hidden-layer activations, as tables keyed by the names users type.

Each forward function works in place on the pre-activation array and returns it;
each derivative is written in terms of the activation's *output* ``a``, and
multiplies the incoming gradient ``delta`` in place (like scikit-learn's
``neural_network._base.DERIVATIVES``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["ACTIVATIONS", "DERIVATIVES", "check_activation"]


def _identity(z: np.ndarray) -> np.ndarray:
    return z


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # 0.5 * (1 + tanh(z / 2)) is the logistic function without exp overflow.
    z *= 0.5
    np.tanh(z, out=z)
    z += 1.0
    z *= 0.5
    return z


def _tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(z, out=z)


def _relu(z: np.ndarray) -> np.ndarray:
    # (z + |z|) / 2 is max(z, 0) for every finite z, and about twice as fast as
    # np.maximum, whose NaN handling costs more than the arithmetic here.
    tmp = np.abs(z)
    z += tmp
    z *= 0.5
    return z


def _d_identity(a: np.ndarray, delta: np.ndarray) -> None:
    return None


def _d_sigmoid(a: np.ndarray, delta: np.ndarray) -> None:
    delta *= a
    delta *= 1.0 - a


def _d_tanh(a: np.ndarray, delta: np.ndarray) -> None:
    delta *= 1.0 - a * a


def _d_relu(a: np.ndarray, delta: np.ndarray) -> None:
    delta *= a > 0


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": _identity,
    "relu": _relu,
    "sigmoid": _sigmoid,
    "tanh": _tanh,
}

DERIVATIVES: dict[str, Callable[[np.ndarray, np.ndarray], None]] = {
    "linear": _d_identity,
    "relu": _d_relu,
    "sigmoid": _d_sigmoid,
    "tanh": _d_tanh,
}


def check_activation(name: object) -> str:
    """Return ``name`` if it is a known hidden activation, else raise ``ValueError``."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(
            f"'activation' must be one of {sorted(ACTIVATIONS)}, but got {name!r}."
        )
    return name
