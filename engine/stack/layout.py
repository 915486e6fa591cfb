"""Where a stack's parameters lie (see :mod:`engine.stack.trainer`): a row per member, each one flat vector.

A row holds layer 0 as one (1 + n_in) x w0 block, its bias first (the inputs carry a column
of ones, so layer 0's forward pass and its gradient are one matmul each), then the other
layers' weights, then their biases. A member narrower or shallower than the stack is placed
in it padded so that the padding changes nothing (see :meth:`Layout.place`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.network import MLP

__all__ = ["Layout", "effective_width"]


def effective_width(hidden: Sequence[int], layer: int, n_in: int) -> int:
    """A member's width at a hidden layer of a stack: its own, or what its identity layers carry."""
    if layer < len(hidden):
        return hidden[layer]
    return hidden[-1] if hidden else n_in


@dataclass(frozen=True)
class Layout:
    """The shapes of a stack's layers and where each one's weights and biases lie in a row.

    Attributes:
        sizes: inputs, the stack's hidden widths, outputs.
        first: the parameters of layer 0's block (bias and weights).
        weight_at, bias_at: where each layer's weights and biases start (layer 0: in its block).
        n_params: the parameters of a row.
        weights: every weight and no bias: where the penalties apply.
    """

    sizes: tuple[int, ...]
    first: int
    weight_at: tuple[int, ...]
    bias_at: tuple[int, ...]
    n_params: int
    weights: slice

    @classmethod
    def of(cls, n_in: int, widths: Sequence[int], n_out: int) -> Layout:
        sizes = (n_in, *widths, n_out)
        shapes = list(zip(sizes[:-1], sizes[1:]))
        first = (n_in + 1) * sizes[1]
        weight_at = [0] + [first + sum(a * b for a, b in shapes[1:j]) for j in range(1, len(shapes))]
        end = first + sum(a * b for a, b in shapes[1:])
        bias_at = [0] + [end + sum(b for _, b in shapes[1:j]) for j in range(1, len(shapes))]
        n_params = end + sum(b for _, b in shapes[1:])
        return cls(sizes, first, tuple(weight_at), tuple(bias_at), n_params, slice(sizes[1], end))

    @property
    def depth(self) -> int:
        """The stack's hidden layers."""
        return len(self.sizes) - 2

    def first_block(self, buf: np.ndarray) -> np.ndarray:
        """Layer 0's parameters of rows ``buf`` (K, n_params) as one (K, 1 + n_in, w0) array: its
        bias row, then its weights."""
        return buf[:, : self.first].reshape(buf.shape[0], self.sizes[0] + 1, self.sizes[1])

    def view(self, buf: np.ndarray, layer: int, *, bias: bool) -> np.ndarray:
        """A layer's weights (K, a, b) or biases (K, 1, b) in rows ``buf``, as a view."""
        if layer == 0:
            block = self.first_block(buf)
            return block[:, :1] if bias else block[:, 1:]
        a, b = self.sizes[layer], self.sizes[layer + 1]
        if not bias:
            i = self.weight_at[layer]
            return buf[:, i : i + a * b].reshape(buf.shape[0], a, b)
        i = self.bias_at[layer]
        return buf[:, i : i + b].reshape(buf.shape[0], 1, b)

    def _layers(self, model: MLP) -> list[int]:
        """The stack's layer of each of the model's matrices: its last one is the stack's output layer."""
        d = len(model.hidden_sizes)
        return [*range(d), self.depth]

    def place(self, model: MLP) -> tuple[np.ndarray, np.ndarray]:
        """A member's network as a row of the stack (1, n_params), and the row's mask: 1 where a
        parameter trains, 0 on identity layers (they never move).

        Narrower layers are padded with units whose weights, outputs and gradients stay exactly
        zero; missing layers are identity matrices, which pass values and gradients on exactly.
        """
        flat = np.zeros((1, self.n_params), dtype=model.dtype)
        mask = np.ones_like(flat)
        hidden = model.hidden_sizes
        for layer, w, b in zip(self._layers(model), model.weights, model.biases):
            self.view(flat, layer, bias=False)[0, : w.shape[0], : w.shape[1]] = w
            self.view(flat, layer, bias=True)[0, 0, : b.shape[0]] = b
        for layer in range(len(hidden), self.depth):
            e = effective_width(hidden, layer, model.sizes[0])  # its own inputs: padding stays zero
            self.view(flat, layer, bias=False)[0, np.arange(e), np.arange(e)] = 1.0
            self.view(mask, layer, bias=False)[0] = 0.0
            self.view(mask, layer, bias=True)[0] = 0.0
        if model.activation == "sigmoid":
            # sigmoid(0) = 1/2: a padded unit gets the bias -inf, so that its output is
            # exactly 0; its gradients are 0 (the next layer's weights from it are 0), so
            # the bias stays -inf and the unit stays silent, with no mask to multiply by.
            for layer, h in enumerate(hidden):
                self.view(flat, layer, bias=True)[0, 0, h:] = -np.inf
        return flat, mask

    def read(self, flat: np.ndarray, r: int, model: MLP) -> None:
        """Copy row ``r`` of ``flat`` into the member's network, unpadded."""
        row = flat[r : r + 1]
        for layer, w, b in zip(self._layers(model), model.weights, model.biases):
            w[...] = self.view(row, layer, bias=False)[0, : w.shape[0], : w.shape[1]]
            b[...] = self.view(row, layer, bias=True)[0, 0, : b.shape[0]]
