"""Gradient-descent optimizers, keyed by the names users type.

Each optimizer is written once, for one network and for a stack of K networks
(:class:`engine.Stack`): ``params`` and ``grad`` are one flat vector (a network keeps every
parameter in one array), or a (K, n) array whose rows are the stack's networks. The
learning rate is a number, or one per row ((K, 1)); a stack's ``mask`` ((K, n) of 1 and 0)
says which parameters move (a shallower member's identity layers never do). A step is a
few NumPy calls whatever the depth of the network or the size of the stack; it consumes
``grad`` (it works in it), and each row's arithmetic is that of the row alone.
"""

from __future__ import annotations

import numpy as np

from engine.checks import check
from engine.errors import SweepsError

__all__ = ["OPTIMIZERS", "Optimizer", "SGD", "Momentum", "Adam", "check_momentum", "check_optimizer", "make_optimizer"]


class Optimizer:
    """Base class: ``step(grad)`` updates ``params`` in place.

    Args:
        params: the parameters, a flat vector or a (K, n) stack.
        learning_rate: a number, or an array of one rate per row ((K, 1)).
        mask: (a stack's) 1 where a parameter moves, 0 where it never does; ``None``: all move.
        state: the optimizer's state arrays by name (``state_names``), e.g. a stack's rows
            gathered again after members joined or left; ``None``: zeros.
    """

    state_names: tuple[str, ...] = ()

    def __init__(
        self,
        params: np.ndarray,
        *,
        learning_rate: float | np.ndarray,
        mask: np.ndarray | None = None,
        state: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.params = params
        # A Python number stays one: NumPy rounds it to the parameters' dtype (a float64 0-d
        # array would make float32 arithmetic float64).
        self.learning_rate = learning_rate if isinstance(learning_rate, np.ndarray) else float(learning_rate)
        self.mask = mask
        self.state = {name: np.zeros_like(params) if state is None else state[name] for name in self.state_names}

    def step(self, grad: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _rate(self) -> float | np.ndarray:
        """Each parameter's rate: the number, or the rows' rates in full with 0 where masked (a
        same-shape product is cheaper than a broadcast one, step after step)."""
        if not isinstance(self.learning_rate, np.ndarray):
            return self.learning_rate
        rate = np.ascontiguousarray(np.broadcast_to(self.learning_rate, self.params.shape))
        if self.mask is not None:
            rate *= self.mask
        return rate


class SGD(Optimizer):
    """Plain gradient descent: ``w -= learning_rate * g``."""

    def __init__(
        self,
        params: np.ndarray,
        *,
        learning_rate: float | np.ndarray,
        mask: np.ndarray | None = None,
        state: dict[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__(params, learning_rate=learning_rate, mask=mask, state=state)
        self.rate = self._rate()

    def step(self, grad: np.ndarray) -> None:
        grad *= self.rate
        self.params -= grad


def check_momentum(momentum: float) -> float:
    """Return ``momentum`` as a float if it lies in [0, 1), else raise ``ValueError``."""
    return float(check("momentum", momentum))


class Momentum(Optimizer):
    """Gradient descent with (optionally Nesterov) momentum, as scikit-learn's SGD:
    ``v = momentum * v - rate * g``, then ``w += v`` (Nesterov: ``w += momentum * v - rate * g``)."""

    state_names = ("velocity",)

    def __init__(
        self,
        params: np.ndarray,
        *,
        learning_rate: float | np.ndarray,
        momentum: float = 0.9,
        nesterov: bool = False,
        mask: np.ndarray | None = None,
        state: dict[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__(params, learning_rate=learning_rate, mask=mask, state=state)
        self.momentum = check_momentum(momentum)
        self.nesterov = bool(nesterov)
        self.rate = self._rate()
        self.velocity = self.state["velocity"]

    def step(self, grad: np.ndarray) -> None:
        grad *= self.rate
        v = self.velocity
        v *= self.momentum
        v -= grad
        if self.nesterov:
            np.subtract(self.momentum * v, grad, out=grad)
            self.params += grad
        else:
            self.params += v


class Adam(Optimizer):
    """Adam (Kingma & Ba), with the bias correction folded into the step size.

    ``scale_first`` chooses how the squared gradient enters the second moment:
    ``(g * g) * (1 - beta2)`` (the default, a network's) or ``((1 - beta2) * g) * g`` (a
    stack's). The two round differently; each engine keeps the order it has always had,
    so that every trial recorded so far retrains bit for bit.
    """

    state_names = ("m", "v")

    def __init__(
        self,
        params: np.ndarray,
        *,
        learning_rate: float | np.ndarray,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        mask: np.ndarray | None = None,
        state: dict[str, np.ndarray] | None = None,
        scale_first: bool = False,
    ) -> None:
        super().__init__(params, learning_rate=learning_rate, mask=mask, state=state)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self.scale_first = bool(scale_first)
        self.m, self.v = self.state["m"], self.state["v"]
        self._tmp = np.zeros_like(params)
        self.t = 0

    def corrections(self, first_steps: np.ndarray, steps: int, dtype: np.dtype) -> np.ndarray:
        """The bias corrections ``sqrt(1 - beta2**t) / (1 - beta1**t)`` of each row's steps
        ``t = first + 1 .. first + steps`` (K x steps): a stack draws them once per epoch
        (a power per row and step would cost a call each)."""
        t = (first_steps[:, None] + np.arange(1, steps + 1)).astype(np.float64)
        return (np.sqrt(1 - self.beta2**t) / (1 - self.beta1**t)).astype(dtype)

    def step(self, grad: np.ndarray, *, step_size: float | np.ndarray | None = None) -> None:
        """One step; ``step_size`` is a stack's rates times their corrections ((K, 1)); by
        default the learning rate times the correction of the next step, in float64."""
        b1, b2, tmp = self.beta1, self.beta2, self._tmp
        if step_size is None:
            self.t += 1
            step_size = self.learning_rate * np.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        if self.scale_first:
            np.multiply(grad, 1.0 - b2, out=tmp)
            tmp *= grad
        else:
            np.multiply(grad, grad, out=tmp)
            tmp *= 1.0 - b2
        self.v *= b2
        self.v += tmp
        grad *= 1.0 - b1
        self.m *= b1
        self.m += grad
        np.sqrt(self.v, out=tmp)
        tmp += self.epsilon
        np.divide(self.m, tmp, out=tmp)
        if self.mask is not None:
            tmp *= self.mask
        tmp *= step_size
        self.params -= tmp


OPTIMIZERS: dict[str, type[Optimizer]] = {"adam": Adam, "momentum": Momentum, "sgd": SGD}


def check_optimizer(name: object) -> str:
    """Return ``name`` if it is a known optimizer, else raise ``ValueError``."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise SweepsError(f"'optimizer' must be one of {sorted(OPTIMIZERS)}, but got {name!r}.")
    return name


def make_optimizer(
    name: str,
    params: np.ndarray,
    *,
    learning_rate: float | np.ndarray,
    momentum: float = 0.9,
    nesterov: bool = False,
    mask: np.ndarray | None = None,
    state: dict[str, np.ndarray] | None = None,
    scale_first: bool = False,
) -> Optimizer:
    """The optimizer ``name`` (one of :data:`OPTIMIZERS`) over ``params``, with the options it takes:
    ``momentum`` and ``nesterov`` (momentum), ``scale_first`` (Adam)."""
    cls = OPTIMIZERS[check_optimizer(name)]
    if cls is Momentum:
        return Momentum(
            params, learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, mask=mask, state=state
        )
    if cls is Adam:
        return Adam(params, learning_rate=learning_rate, mask=mask, state=state, scale_first=scale_first)
    return cls(params, learning_rate=learning_rate, mask=mask, state=state)
