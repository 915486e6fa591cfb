"""Gradient-descent optimizers, keyed by the names users type.

Each optimizer updates one flat parameter buffer in place from one flat
gradient buffer (the model keeps every parameter in one array), so a step is a
few NumPy calls whatever the depth of the network.
"""

from __future__ import annotations

import numpy as np

__all__ = ["OPTIMIZERS", "Optimizer", "SGD", "Momentum", "Adam", "check_optimizer"]


class Optimizer:
    """Base class: ``step(grad)`` updates ``params`` in place."""

    def __init__(self, params: np.ndarray, *, learning_rate: float) -> None:
        self.params = params
        self.learning_rate = float(learning_rate)

    def step(self, grad: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    """Plain gradient descent: ``w -= learning_rate * g``."""

    def step(self, grad: np.ndarray) -> None:
        grad *= -self.learning_rate
        self.params += grad


class Momentum(Optimizer):
    """Gradient descent with (optionally Nesterov) momentum, as scikit-learn's SGD."""

    def __init__(self, params: np.ndarray, *, learning_rate: float, momentum: float = 0.9, nesterov: bool = False) -> None:
        super().__init__(params, learning_rate=learning_rate)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"'momentum' must lie in [0, 1), but got {momentum!r}.")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.velocity = np.zeros_like(params)

    def step(self, grad: np.ndarray) -> None:
        grad *= -self.learning_rate
        self.velocity *= self.momentum
        self.velocity += grad
        if self.nesterov:
            grad += self.momentum * self.velocity
            self.params += grad
        else:
            self.params += self.velocity


class Adam(Optimizer):
    """Adam (Kingma & Ba), with the bias correction folded into the step size."""

    def __init__(
        self,
        params: np.ndarray,
        *,
        learning_rate: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
    ) -> None:
        super().__init__(params, learning_rate=learning_rate)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)
        self._tmp = np.zeros_like(params)
        self.t = 0

    def step(self, grad: np.ndarray) -> None:
        self.t += 1
        b1, b2, tmp = self.beta1, self.beta2, self._tmp
        np.multiply(grad, grad, out=tmp)
        tmp *= 1.0 - b2
        self.v *= b2
        self.v += tmp
        grad *= 1.0 - b1
        self.m *= b1
        self.m += grad
        step = self.learning_rate * np.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        np.sqrt(self.v, out=tmp)
        tmp += self.epsilon
        np.divide(self.m, tmp, out=tmp)
        tmp *= -step
        self.params += tmp


OPTIMIZERS: dict[str, type[Optimizer]] = {"adam": Adam, "momentum": Momentum, "sgd": SGD}


def check_optimizer(name: object) -> str:
    """Return ``name`` if it is a known optimizer, else raise ``ValueError``."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"'optimizer' must be one of {sorted(OPTIMIZERS)}, but got {name!r}.")
    return name
