"""Hidden-layer activations, as tables keyed by the names users type.

Each forward function works in place on the pre-activation array and returns it;
each derivative is written in terms of the activation's *output* ``a``, and
multiplies the incoming gradient ``delta`` in place (like scikit-learn's
``neural_network._base.DERIVATIVES``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.errors import SweepsError

__all__ = ["ACTIVATIONS", "DERIVATIVES", "SLICE_FORMS", "check_activation", "sigmoid", "sigmoid_from_half_tanh"]


def _identity(z: np.ndarray) -> np.ndarray:
    return z


def sigmoid(z: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """The logistic function as ``0.5 * (1 + tanh(z / 2))``, without exp overflow (in place if ``out`` is ``z``)."""
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    return sigmoid_from_half_tanh(out)


def sigmoid_from_half_tanh(t: np.ndarray) -> np.ndarray:
    """``sigmoid(z)`` from ``t = tanh(z / 2)``, in place (a stack takes one tanh of its sigmoid and tanh rows)."""
    t += 1.0
    t *= 0.5
    return t


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return sigmoid(z, out=z)


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


def _relu_one_call(z: np.ndarray) -> np.ndarray:
    # On a stack's small slices the call, not NaN handling, is what costs.
    return np.maximum(z, 0.0, out=z)


def _d_relu_sign(a: np.ndarray, delta: np.ndarray) -> None:
    delta *= np.sign(a)  # a >= 0: its sign is the derivative; a float product is faster than a mask's


# Each activation and its derivative as a stack applies them to its rows' slices: the same
# functions, in the fewest calls (engine.stack.kernels applies sigmoid and tanh rows together).
SLICE_FORMS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, np.ndarray], None]]] = {
    **{name: (ACTIVATIONS[name], DERIVATIVES[name]) for name in ACTIVATIONS},
    "relu": (_relu_one_call, _d_relu_sign),
}


def check_activation(name: object) -> str:
    """Return ``name`` if it is a known hidden activation, else raise ``ValueError``."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise SweepsError(f"'activation' must be one of {sorted(ACTIVATIONS)}, but got {name!r}.")
    return name
