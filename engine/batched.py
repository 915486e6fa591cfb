"""Many networks as one: K networks of the same depth and activation, trained stacked.

Python's per-call overhead, not arithmetic, sets the time of a small network's step; K
networks whose weights are stacked (``K x n_in x n_out``, batched matmul) cost about the
same per call as one. Each member keeps its own learning rate, regularization and hidden
widths: narrower members are padded to the widest with units whose weights, outputs and
gradients stay exactly zero. A member that diverges is frozen and reported; a member
whose ``on_epoch`` returns ``False`` is dropped from the stack. Each member's History
equals what :func:`engine.train` gives for the same seed and arguments.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.activations import ACTIVATIONS, DERIVATIVES, check_activation
from engine.costs import OUTPUT_FOR_TASK, OUTPUTS
from engine.datasets import Dataset
from engine.network import MLP
from engine.optimizers import check_optimizer
from engine.training import Divergence, History, _divergence, _score

__all__ = ["Member", "train_batched"]


@dataclass(frozen=True)
class Member:
    """One network of a stack: its widths, learning rate, penalties and seed."""

    hidden: tuple[int, ...]
    learning_rate: float
    l2: float = 0.0
    l1: float = 0.0
    seed: int = 0


class _Stack:
    """The stacked parameters of the members still training, in one (K, P) buffer."""

    def __init__(self, models: list[MLP], sizes: list[int], dtype: np.dtype) -> None:
        self.sizes = sizes
        shapes = list(zip(sizes[:-1], sizes[1:]))
        self.n_weights = sum(a * b for a, b in shapes)
        self.n_params = self.n_weights + sum(b for _, b in shapes)
        K = len(models)
        self.flat = np.zeros((K, self.n_params), dtype=dtype)
        self.grad = np.zeros_like(self.flat)
        self._views()
        for k, m in enumerate(models):
            for layer, (w, b) in enumerate(zip(m.weights, m.biases)):
                self.W[layer][k, : w.shape[0], : w.shape[1]] = w
                self.b[layer][k, 0, : b.shape[0]] = b

    def _views(self) -> None:
        shapes = list(zip(self.sizes[:-1], self.sizes[1:]))
        K = self.flat.shape[0]
        self.W, self.b, self.gW, self.gb = [], [], [], []
        i = 0
        for a, b in shapes:
            self.W.append(self.flat[:, i : i + a * b].reshape(K, a, b))
            self.gW.append(self.grad[:, i : i + a * b].reshape(K, a, b))
            i += a * b
        for _, b in shapes:
            self.b.append(self.flat[:, i : i + b].reshape(K, 1, b))
            self.gb.append(self.grad[:, i : i + b].reshape(K, 1, b))
            i += b

    def keep(self, rows: np.ndarray) -> None:
        self.flat = np.ascontiguousarray(self.flat[rows])
        self.grad = np.zeros_like(self.flat)
        self._views()


def _cost_grad(output: str, z: np.ndarray, y: np.ndarray, *, grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-member mean costs (K,) from logits (K, B, k), and their gradient."""
    n = z.shape[1]
    if output == "sigmoid":
        zf = z[..., 0]
        yf = np.broadcast_to(y, zf.shape).astype(z.dtype)
        cost = np.logaddexp(0.0, zf * (1.0 - 2.0 * yf)).sum(axis=1) / n  # as engine.costs: never negative
        if not grad:
            return cost, None
        d = 0.5 * (1.0 + np.tanh(0.5 * z))
        d[..., 0] -= yf
        return cost, d * (1.0 / n)
    if output == "softmax":
        shifted = z - z.max(axis=2, keepdims=True)
        yk = np.broadcast_to(y, z.shape[:2])[..., None]
        picked = np.take_along_axis(shifted, yk, axis=2)[..., 0]
        e = np.exp(shifted)
        norm = e.sum(axis=2)
        cost = (np.log(norm) - picked).sum(axis=1) / n
        if not grad:
            return cost, None
        e /= norm[..., None]
        np.put_along_axis(e, yk, np.take_along_axis(e, yk, axis=2) - 1.0, axis=2)
        return cost, e * (1.0 / n)
    diff = z - np.broadcast_to(y, z.shape[:2])[..., None].astype(z.dtype)
    cost = (diff * diff).sum(axis=(1, 2)) / n
    return cost, (diff * (2.0 / n) if grad else None)


def train_batched(
    members: Sequence[Member],
    dataset: Dataset,
    *,
    activation: str,
    epochs: int,
    batch_size: int,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    nesterov: bool = False,
    divergence_factor: float = 100.0,
    dtype: type | np.dtype = np.float32,
    widths: Sequence[int] | None = None,
    on_epoch: Callable[[int, int, History], bool | None] | None = None,
) -> list[tuple[MLP, History]]:
    """Train every member at once; returns each member's trained network and History, in order.

    All members share the depth (``len(hidden)``), ``activation``, ``optimizer``,
    ``epochs`` and ``batch_size``. ``on_epoch(member_index, epoch, history)`` is called
    after each epoch of each member still training; ``False`` stops that member.
    ``widths`` pads the hidden layers to at least these widths: a member retrained alone in
    a stack of the same widths gets bit-identical results (each member's products have the
    same shapes whatever the other members are).

    Example:
        >>> from engine import load_dataset
        >>> ds = load_dataset("xor")
        >>> out = train_batched([Member((4,), 0.1), Member((8,), 0.03)], ds, activation="tanh",
        ...                     epochs=2, batch_size=10)
        >>> [h.epochs for _, h in out]
        [2, 2]
    """
    check_activation(activation)
    check_optimizer(optimizer)
    if not members:
        return []
    depth = {len(m.hidden) for m in members}
    if len(depth) != 1:
        raise ValueError(f"members of one stack must have the same depth, but got depths {sorted(depth)}.")
    output = OUTPUT_FOR_TASK[dataset.task]
    out = OUTPUTS[output]
    n_out = dataset.n_outputs
    models = [MLP(dataset.n_features, m.hidden, n_out, activation=activation, output=output, seed=m.seed,
                  dtype=dtype) for m in members]
    n_layers = depth.pop()
    widths = [max([m.hidden[i] for m in members] + ([widths[i]] if widths else [])) for i in range(n_layers)]
    stack = _Stack(models, [dataset.n_features, *widths, n_out], np.dtype(dtype))
    K = len(members)
    dt = np.dtype(dtype)
    masks = [np.zeros((K, 1, w), dtype=dt) for w in widths]
    for k, m in enumerate(members):
        for layer, h in enumerate(m.hidden):
            masks[layer][k, 0, :h] = 1.0
    need_mask = activation == "sigmoid"  # tanh, relu and linear give 0 at 0 by themselves
    act, deriv = ACTIVATIONS[activation], DERIVATIVES[activation]

    ydt = np.intp if out.classification else dt
    X = np.ascontiguousarray(dataset.X_train, dtype=dt)
    y = np.ascontiguousarray(dataset.y_train, dtype=ydt)
    Xv = np.ascontiguousarray(dataset.X_val, dtype=dt)
    yv = np.ascontiguousarray(dataset.y_val, dtype=ydt)
    n = X.shape[0]
    seeds = [m.seed for m in members]
    shared = len(set(seeds)) == 1  # one shuffle for all: the input batch is shared, not gathered
    rngs = [np.random.default_rng(s) for s in (seeds[:1] if shared else seeds)]

    lr = np.array([m.learning_rate for m in members], dtype=dt)[:, None]
    l2 = np.array([m.l2 for m in members], dtype=dt)[:, None]
    l1 = np.array([m.l1 for m in members], dtype=dt)[:, None]
    has_l2, has_l1 = bool(l2.any()), bool(l1.any())
    state = {"m": np.zeros_like(stack.flat), "v": np.zeros_like(stack.flat)}
    t_adam = 0
    ids = np.arange(K)  # member index of each stack row
    histories: list[History] = []

    def forward(a: np.ndarray) -> list[np.ndarray]:
        acts = [a]
        last = len(stack.W) - 1
        for layer, (w, b) in enumerate(zip(stack.W, stack.b)):
            z = np.matmul(a, w)
            z += b
            if layer < last:
                act(z)
                if need_mask:
                    z *= masks[layer]
            acts.append(z)
            a = z
        return acts

    with np.errstate(all="ignore"):
        init = _cost_grad(output, forward(X)[-1], y, grad=False)[0]
        for k in range(K):
            histories.append(History(task=dataset.task, initial_cost=float(init[k])))
        limit = np.where(np.isfinite(init), divergence_factor * init, np.inf)
        last_good = init.astype(np.float64).copy()
        active = np.ones(K, dtype=bool)
        step = 0
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            perms = [rng.permutation(n) for rng in rngs]
            if shared:
                Xs, ys = X[perms[0]], y[perms[0]]
            else:
                Xs = X[np.stack([perms[i] for i in ids])]
                ys = y[np.stack([perms[i] for i in ids])]
            total = np.zeros(len(ids))
            for start in range(0, n, batch_size):
                xb = Xs[..., start : start + batch_size, :]
                yb = ys[..., start : start + batch_size]
                rows = xb.shape[-2]
                acts = forward(xb)
                cost, delta = _cost_grad(output, acts[-1], yb, grad=True)
                step += 1
                bad = active & ~(cost < limit)
                for r in np.flatnonzero(bad):
                    histories[ids[r]].divergence = _divergence(epoch, step, float(cost[r]), float(last_good[r]))
                active &= ~bad
                last_good = np.where(active, cost, last_good)
                total += np.where(active, cost, 0.0) * rows
                # Backpropagation, all members at once.
                for layer in range(len(stack.W) - 1, -1, -1):
                    a = acts[layer]
                    at = a.T if a.ndim == 2 else a.transpose(0, 2, 1)
                    np.matmul(at, delta, out=stack.gW[layer])
                    np.sum(delta, axis=1, keepdims=True, out=stack.gb[layer])
                    if layer:
                        delta = np.matmul(delta, stack.W[layer].transpose(0, 2, 1))
                        deriv(acts[layer], delta)
                # Penalties only when some member has one (as the single engine skips them).
                if has_l2 or has_l1:
                    w = stack.flat[:, : stack.n_weights]
                    gw = stack.grad[:, : stack.n_weights]
                    if has_l2:
                        gw += l2 * w
                    if has_l1:
                        gw += l1 * np.sign(w)
                g = stack.grad
                g *= active[:, None]  # frozen (diverged) members do not move
                if optimizer == "sgd":
                    stack.flat -= lr * g
                elif optimizer == "momentum":
                    state["m"] *= momentum
                    state["m"] -= lr * g
                    stack.flat += (momentum * state["m"] - lr * g) if nesterov else state["m"]
                else:
                    t_adam += 1
                    b1, b2, eps = 0.9, 0.999, 1e-8
                    state["v"] *= b2
                    state["v"] += (1 - b2) * g * g
                    state["m"] *= b1
                    state["m"] += (1 - b1) * g
                    size = lr * (math.sqrt(1 - b2**t_adam) / (1 - b1**t_adam))
                    upd = state["m"] / (np.sqrt(state["v"]) + eps)
                    stack.flat -= size * upd * active[:, None]
            vcost, vlogits = None, None
            vacts = forward(Xv)
            vcost = _cost_grad(output, vacts[-1].copy(), yv, grad=False)[0]
            vlogits = vacts[-1]
            keep = np.ones(len(ids), dtype=bool)
            for r, k in enumerate(ids):
                h = histories[k]
                if not active[r]:
                    keep[r] = False
                    continue
                if not vcost[r] < limit[r]:
                    h.divergence = _divergence(epoch, step, float(vcost[r]), float(last_good[r]))
                    keep[r] = False
                    continue
                h.train_cost.append(float(total[r] / n))
                h.val_cost.append(float(vcost[r]))
                models[k].output = output
                (h.val_accuracy if out.classification else h.val_r2).append(_score(models[k], vlogits[r], yv))
                h.epoch_time.append(time.perf_counter() - t0)
                if on_epoch is not None and on_epoch(int(k), epoch, h) is False:
                    h.stopped_early = True
                    keep[r] = False
            # Write back every member now, so that stopped ones keep their final weights.
            for r, k in enumerate(ids):
                m = models[k]
                for layer, (wk, bk) in enumerate(zip(m.weights, m.biases)):
                    wk[...] = stack.W[layer][r, : wk.shape[0], : wk.shape[1]]
                    bk[...] = stack.b[layer][r, 0, : bk.shape[0]]
            if not keep.all():
                rows = np.flatnonzero(keep)
                if rows.size == 0:
                    break
                ids, active, limit, last_good = ids[rows], active[rows], limit[rows], last_good[rows]
                lr, l2, l1 = lr[rows], l2[rows], l1[rows]
                has_l2, has_l1 = bool(l2.any()), bool(l1.any())
                masks = [mk[rows] for mk in masks]
                state = {key: np.ascontiguousarray(v[rows]) for key, v in state.items()}
                stack.keep(rows)
    return list(zip(models, histories))
