"""A stack's members as arrays, and their mini-batch steps (see :mod:`engine.stack.trainer`): the
forward pass, the cost, backpropagation, the penalties and the optimizer's update, of every
member at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.costs import Output, add_penalty_gradient
from engine.optimizers import OPTIMIZERS, SGD, Adam, make_optimizer
from engine.stack.data import EpochRows, StackData
from engine.stack.kernels import activate, derive, plan_layers
from engine.stack.layout import Layout

__all__ = ["RowSpec", "Rows"]


@dataclass(frozen=True)
class RowSpec:
    """What a row of the stack trains with: its member's activation, depth, rates and dataset."""

    activation: str
    depth: int
    learning_rate: float
    l2: float
    l1: float
    data: int  # its dataset's index in the stack


class Rows:
    """The stack's members in one order: their parameters (a row each, see :class:`Layout`),
    gradient and optimizer state, views of them per layer, and what each row trains with.

    Args:
        layout: the stack's shapes.
        rows: each row's settings, in stack order.
        arrays: the rows' ``params``, ``mask`` (0 on identity layers) and optimizer state, by name.
        output: the output layer.
        optimizer, momentum, nesterov: as :func:`engine.train`.
    """

    def __init__(
        self,
        layout: Layout,
        rows: Sequence[RowSpec],
        arrays: dict[str, np.ndarray],
        *,
        output: Output,
        optimizer: str,
        momentum: float,
        nesterov: bool,
    ) -> None:
        self.layout, self.output, self.D = layout, output, layout.depth
        self.params, self.mask = arrays["params"], arrays["mask"]
        self.grad = np.zeros_like(self.params)
        self.K, dt = len(rows), self.params.dtype
        L = self.D + 1
        self.W = [layout.view(self.params, j, bias=False) for j in range(L)]
        self.b = [layout.view(self.params, j, bias=True) for j in range(L)]
        self.gW = [layout.view(self.grad, j, bias=False) for j in range(L)]
        self.gb = [layout.view(self.grad, j, bias=True) for j in range(L)]
        self.Wt = [w.transpose(0, 2, 1) for w in self.W]
        self.W0, self.gW0 = layout.first_block(self.params), layout.first_block(self.grad)
        self.plan = plan_layers([(r.activation, r.depth) for r in rows], self.D)
        self.lr = np.array([r.learning_rate for r in rows], dtype=dt)[:, None]
        l2 = np.array([r.l2 for r in rows], dtype=dt)[:, None]
        l1 = np.array([r.l1 for r in rows], dtype=dt)[:, None]
        has_l2, has_l1 = bool(l2.any()), bool(l1.any())
        identity = any(r.depth < self.D for r in rows)
        self.optimizer = make_optimizer(
            optimizer,
            self.params,
            learning_rate=self.lr,
            momentum=momentum,
            nesterov=nesterov,
            mask=self.mask if identity else None,
            state={name: arrays[name] for name in OPTIMIZERS[optimizer].state_names},
            scale_first=True,
        )
        self.adam = isinstance(self.optimizer, Adam)
        # Plain SGD takes L2 as a decay, w *= 1 - rate * l2: the same step as adding l2 * w to
        # the gradient, with one same-shape product instead of two broadcast ones.
        self.decay = None
        if isinstance(self.optimizer, SGD) and has_l2:
            self.decay = np.ones_like(self.params)
            w = layout.weights
            rate = self.optimizer.rate
            assert isinstance(rate, np.ndarray)  # a stack's rates: one per row
            self.decay[:, w] -= rate[:, w] * l2
        # Penalties only when some member has one (as the single engine skips them).
        self.l2 = l2 if has_l2 and self.decay is None else None
        self.l1 = l1 if has_l1 else None
        self.data = np.array([r.data for r in rows], dtype=np.intp)
        self.multi = bool(self.data.any())  # members of several datasets: each gathers its own rows

    def arrays(self) -> dict[str, np.ndarray]:
        """Every per-row array by name, to gather rows from when members join or leave."""
        return {"params": self.params, "mask": self.mask, **self.optimizer.state}

    def forward(self, a: np.ndarray) -> list[np.ndarray]:
        """Every layer's outputs for inputs ``a`` (with their column of ones)."""
        acts = [a]
        z = np.matmul(a, self.W0)  # layer 0 with its bias
        for layer in range(self.D + 1):
            if layer:
                z = np.matmul(a, self.W[layer])
                z += self.b[layer]
            if layer < self.D:
                activate(z, self.plan[layer])
            acts.append(z)
            a = z
        return acts

    def _backward(self, acts: list[np.ndarray], delta: np.ndarray, ones: np.ndarray) -> None:
        """Every layer's gradient into ``grad``, from the logits' gradient ``delta``."""
        gW, gb, Wt, plan = self.gW, self.gb, self.Wt, self.plan
        for layer in range(self.D, 0, -1):
            a = acts[layer]
            np.matmul(a.swapaxes(-1, -2), delta, out=gW[layer])
            np.matmul(ones, delta, out=gb[layer])  # faster than a sum over axis 1
            delta = np.matmul(delta, Wt[layer])
            derive(a, delta, plan[layer - 1])
        np.matmul(acts[0].swapaxes(-1, -2), delta, out=self.gW0)  # layer 0's weights and bias at once

    def train_epoch(self, rows: EpochRows, data: StackData, first_steps: np.ndarray) -> np.ndarray:
        """Every mini-batch step of an epoch, ``first_steps`` the steps each row has done before;
        returns each step's summed cost per row (steps x K)."""
        costs = np.empty((len(data.starts), self.K))
        B, X, targets, sign, scale = data.batch_size, rows.X, rows.targets, rows.sign, rows.scale
        cost_grad, params, grad, opt = self.output.stacked_cost_grad, self.params, self.grad, self.optimizer
        decay, weights, penalize = self.decay, self.layout.weights, self.l2 is not None or self.l1 is not None
        adam = opt if isinstance(opt, Adam) else None
        if adam is not None:
            sizes = adam.corrections(first_steps, len(data.starts), params.dtype)
        for i, start in enumerate(data.starts):
            at = slice(start, start + B)
            acts = self.forward(X[..., at, :])
            costs[i], delta = cost_grad(
                acts[-1],
                targets[..., at],
                None if sign is None else sign[..., at],
                grad=True,
                scale=None if scale is None else scale[..., at],
            )
            assert delta is not None  # grad=True always returns the gradient
            self._backward(acts, delta, data.step_ones[i])
            if penalize:
                add_penalty_gradient(grad[:, weights], params[:, weights], l2=self.l2, l1=self.l1)
            if decay is not None:  # plain SGD's L2
                params *= decay
            if adam is not None:
                adam.step(grad, step_size=self.lr * sizes[:, i, None])
            else:
                opt.step(grad)
        return costs
