"""A fully connected network (multi-layer perceptron) in plain NumPy.

All weights live in one contiguous buffer and all biases after them, so an
optimizer updates every parameter with a handful of NumPy calls and the
regularization term of every weight is one dot product; ``model.params`` are
views into that buffer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.activations import ACTIVATIONS, DERIVATIVES, check_activation
from engine.checks import check
from engine.costs import OUTPUTS, add_penalty_gradient, check_output
from engine.errors import SweepsError
from engine.limits import check_memory, mlp_bytes

__all__ = ["MLP", "INITS"]

INITS = ("auto", "glorot", "he")


class MLP:
    """A multi-layer perceptron: ``n_inputs -> hidden_sizes... -> n_outputs``.

    Args:
        n_inputs: number of input features.
        hidden_sizes: width of each hidden layer; ``()`` gives linear or logistic regression.
        n_outputs: 1 for a sigmoid or a single regression output, the number of classes for softmax.
        activation: hidden activation, one of ``linear``, ``relu``, ``sigmoid``, ``tanh``.
        output: ``sigmoid``, ``softmax`` or ``identity``; ``None`` picks from the task when trained.
        seed: seed of the initial weights (He for relu, Glorot otherwise).
        dtype: ``np.float32`` (fast) or ``np.float64`` (for gradient checks).
        init: ``auto`` (He for relu layers, Glorot otherwise), ``he`` or ``glorot``
            (Glorot-uniform everywhere, as scikit-learn's MLP).

    Example:
        >>> import numpy as np
        >>> model = MLP(2, (4,), 1, activation="tanh", output="sigmoid", seed=0)
        >>> model.predict(np.zeros((3, 2))).shape
        (3,)
    """

    def __init__(
        self,
        n_inputs: int,
        hidden_sizes: Sequence[int],
        n_outputs: int,
        *,
        activation: str = "relu",
        output: str | None = None,
        seed: int = 0,
        dtype: type | np.dtype = np.float32,
        init: str = "auto",
    ) -> None:
        n_inputs = int(check("n_inputs", n_inputs))
        n_outputs = int(check("n_outputs", n_outputs))
        if isinstance(hidden_sizes, (str, bytes)) or not isinstance(hidden_sizes, Sequence):
            raise SweepsError(f"'hidden_sizes' must be a sequence of integers >= 1, but got {hidden_sizes!r}.")
        hidden = tuple(int(check("hidden_units", h, key="hidden_sizes")) for h in hidden_sizes)
        self.activation = check_activation(activation)
        self.output = None if output is None else check_output(output)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise SweepsError(f"'dtype' must be one of ['float32', 'float64'], but got {self.dtype.name!r}.")
        if self.output == "sigmoid" and n_outputs != 1:
            raise SweepsError(f"a sigmoid output has one unit, but got n_outputs={n_outputs}.")
        if init not in INITS:
            raise SweepsError(f"'init' must be one of {sorted(INITS)}, but got {init!r}.")
        self.init = init
        self.seed = int(seed)
        self.sizes: tuple[int, ...] = (n_inputs, *hidden, n_outputs)
        self.hidden_sizes = hidden

        shapes = list(zip(self.sizes[:-1], self.sizes[1:]))
        check_memory(
            f"a network {'-'.join(map(str, self.sizes))}",
            mlp_bytes(self.sizes, self.dtype.itemsize),
            advice="; use fewer or narrower layers",
        )
        self.n_weights = sum(a * b for a, b in shapes)
        self.n_params = self.n_weights + sum(b for _, b in shapes)
        self._flat = np.zeros(self.n_params, dtype=self.dtype)
        self._grad_flat = np.zeros(self.n_params, dtype=self.dtype)
        self.weights, self.biases = self._views(self._flat, shapes)
        self._grad_w, self._grad_b = self._views(self._grad_flat, shapes)
        self.params: list[np.ndarray] = [p for pair in zip(self.weights, self.biases) for p in pair]
        self._grads: list[np.ndarray] = [g for pair in zip(self._grad_w, self._grad_b) for g in pair]
        self._init_weights(shapes)
        self._ones_cache: dict[int, np.ndarray] = {}
        self._act = ACTIVATIONS[self.activation]
        self._deriv = DERIVATIVES[self.activation]

    def _views(self, flat: np.ndarray, shapes: list[tuple[int, int]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        ws, bs, i = [], [], 0
        for a, b in shapes:
            ws.append(flat[i : i + a * b].reshape(a, b))
            i += a * b
        for _, b in shapes:
            bs.append(flat[i : i + b])
            i += b
        return ws, bs

    def _init_weights(self, shapes: list[tuple[int, int]]) -> None:
        # Drawn in float64 so that float32 and float64 models of one seed start alike.
        rng = np.random.default_rng(self.seed)
        last = len(shapes) - 1
        for layer, ((fan_in, fan_out), w) in enumerate(zip(shapes, self.weights)):
            he = self.init == "he" or (self.init == "auto" and self.activation == "relu")
            if he and layer < last:
                w[...] = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
            else:
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                w[...] = rng.uniform(-limit, limit, size=(fan_in, fan_out))

    # -- the computation ---------------------------------------------------------------

    def _forward(self, X: np.ndarray) -> list[np.ndarray]:
        """Activations of every layer, the input first and the logits last."""
        acts = [X]
        a = X
        last = len(self.weights) - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = np.dot(a, w)  # np.dot has less call overhead than @ on 2-D arrays
            z += b
            if layer < last:
                self._act(z)
            acts.append(z)
            a = z
        return acts

    def _backward(self, acts: list[np.ndarray], delta: np.ndarray) -> None:
        """Write the data-term gradients into the gradient buffer, from the logits' gradient."""
        for layer in range(len(self.weights) - 1, -1, -1):
            np.dot(acts[layer].T, delta, out=self._grad_w[layer])
            # A vector-matrix product sums the rows faster than np.sum(axis=0).
            np.dot(self._ones(delta.shape[0]), delta, out=self._grad_b[layer])
            if layer:
                delta = np.dot(delta, self.weights[layer].T)
                self._deriv(acts[layer], delta)

    def _ones(self, n: int) -> np.ndarray:
        ones = self._ones_cache.get(n)
        if ones is None:
            ones = self._ones_cache[n] = np.ones(n, dtype=self.dtype)
        return ones

    def _regularize(self, l2: float, l1: float) -> float:
        """Add the weights' penalty gradient to the buffer; return the penalty."""
        term = 0.0
        if l2 or l1:
            w = self._flat[: self.n_weights]
            if l2:
                term += 0.5 * l2 * float(np.dot(w, w))
            if l1:
                term += l1 * float(np.abs(w).sum())
            add_penalty_gradient(self._grad_flat[: self.n_weights], w, l2=l2 or None, l1=l1 or None)
        return term

    def _cost_and_grad(self, X: np.ndarray, y: np.ndarray, l2: float, l1: float) -> tuple[float, float]:
        """One backpropagation into the gradient buffer; returns (data cost, penalty)."""
        acts = self._forward(X)
        cost, delta = OUTPUTS[self._require_output()].cost_grad(acts[-1], y, grad=True)
        assert delta is not None  # grad=True always returns the gradient
        self._backward(acts, delta)
        return cost, self._regularize(l2, l1)

    def _cost(self, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Data cost (no penalty) and logits, without gradients."""
        logits = self._forward(X)[-1]
        return OUTPUTS[self._require_output()].cost_grad(logits.copy(), y, grad=False)[0], logits

    # -- the face a training loop uses -------------------------------------------------

    @property
    def flat_parameters(self) -> np.ndarray:
        """Every weight, then every bias, as one array; ``weights`` and ``biases`` are views of it,
        so an optimizer stepping this array trains the network."""
        return self._flat

    @property
    def flat_gradient(self) -> np.ndarray:
        """The gradient buffer that :meth:`cost_and_gradient` fills, laid out as :attr:`flat_parameters`."""
        return self._grad_flat

    def cost_and_gradient(self, X: np.ndarray, y: np.ndarray, l2: float, l1: float) -> tuple[float, float]:
        """One backpropagation of a mini-batch into :attr:`flat_gradient`; returns (data cost,
        penalty). No argument checks: the training loop's fast path (see :meth:`loss_and_grads`)."""
        return self._cost_and_grad(X, y, l2, l1)

    def cost_and_logits(self, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """The data cost (no penalty) and the logits on ``X``, without gradients; no argument checks."""
        return self._cost(X, y)

    # -- the public face -------------------------------------------------------------

    def _require_output(self) -> str:
        if self.output is None:
            raise SweepsError(
                f"the model has no output layer yet: pass output= one of {sorted(OUTPUTS)} "
                "or train it on a dataset first."
            )
        return self.output

    def _check_X(self, X: object) -> np.ndarray:
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise SweepsError(f"X must have shape (n_samples, {self.sizes[0]}), but got {X.shape}.")
        if not np.isfinite(X).all():
            raise SweepsError("X contains NaN or infinity; clean or impute the data first.")
        return X

    def _check_y(self, y: object, n: int) -> np.ndarray:
        out = OUTPUTS[self._require_output()]
        y = np.asarray(y)
        if y.shape[0] != n:
            raise SweepsError(f"X and y must have the same number of rows, but got {n} and {y.shape[0]}.")
        if out.classification:
            if not np.issubdtype(y.dtype, np.integer):
                raise SweepsError(f"y must hold integer class labels for a {self.output} output, but got {y.dtype}.")
            n_classes = 2 if self.output == "sigmoid" else self.sizes[-1]
            if y.size and (y.min() < 0 or y.max() >= n_classes):
                raise SweepsError(f"class labels must lie in [0, {n_classes - 1}], but got [{y.min()}, {y.max()}].")
            return y.astype(np.intp, copy=False)
        y = y.astype(self.dtype, copy=False)
        if not np.isfinite(y).all():
            raise SweepsError("y contains NaN or infinity; clean or impute the data first.")
        return y

    def loss_and_grads(
        self, X: np.ndarray, y: np.ndarray, *, l2: float = 0.0, l1: float = 0.0
    ) -> tuple[float, list[np.ndarray]]:
        """Mean cost over the rows plus ``l2/2 * sum(W**2) + l1 * sum(|W|)``, and its gradients.

        Returns:
            ``(loss, grads)``, the gradients in the order of :attr:`params`.
        """
        X = self._check_X(X)
        y = self._check_y(y, X.shape[0])
        with np.errstate(all="ignore"):
            cost, penalty = self._cost_and_grad(X, y, float(l2), float(l1))
        return cost + penalty, [g.copy() for g in self._grads]

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """The logits, shape ``(n_samples, n_outputs)``."""
        X = self._check_X(X)
        with np.errstate(all="ignore"):
            return self._forward(X)[-1]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class labels (classification) or predicted values (regression)."""
        out = OUTPUTS[self._require_output()]
        return out.predict(self.decision_function(X))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)``; classification only."""
        out = OUTPUTS[self._require_output()]
        if out.proba is None:
            raise SweepsError("predict_proba needs a classification output ('sigmoid' or 'softmax').")
        with np.errstate(all="ignore"):
            return out.proba(self.decision_function(X))

    def __repr__(self) -> str:
        return (
            f"MLP({self.sizes[0]}, {self.hidden_sizes}, {self.sizes[-1]}, activation={self.activation!r}, "
            f"output={self.output!r}, seed={self.seed}, dtype={self.dtype.name}, init={self.init!r})"
        )
