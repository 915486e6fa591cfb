"""Many networks as one: K networks trained stacked, whatever their widths, depths and activations.

Python's per-call overhead, not arithmetic, sets the time of a small network's step; K
networks whose weights are stacked (``K x n_in x n_out``, batched matmul) cost about the
same per call as one. Each member keeps its own learning rate, regularization, hidden
widths, depth, activation and seed:

- narrower members are padded to the widest with units whose weights, outputs and
  gradients stay exactly zero;
- shallower members are padded to the deepest with identity layers (weights the identity
  matrix, no activation, never updated), which pass values and gradients on exactly;
- rows are ordered by activation, so that each activation is one call on a slice (sigmoid
  and tanh rows side by side share their tanh and their derivative's square);
- the first layer's bias is a row of its weights (the inputs carry a column of ones), so
  its forward pass and its gradient are one matmul each;
- members may train on different datasets of the same shapes (the studies of a sweep),
  each gathering its own rows.

A :class:`Stack` is trained an epoch at a time, and members join and leave it between
epochs (continuous batching: a worker refills the slots of finished and pruned members with
new trials, so the stack stays full). Each member is at its own epoch, with its own
shuffling. A member that diverges leaves at the end of that epoch, its History telling
where (the same step as the single engine); a pruned member leaves when told.
:func:`train_batched` trains a fixed set of members with it. Each member's History equals
what :func:`engine.train` gives for the same seed and arguments, and a member's sums do not
depend on the other members: retrained alone in a stack of the same widths, it gets
bit-identical results. The layers' numerics (activation runs, the stacked cost) live in
:mod:`engine.stack_math`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.activations import check_activation
from engine.costs import OUTPUT_FOR_TASK, OUTPUTS
from engine.datasets import Dataset
from engine.network import MLP
from engine.optimizers import OPTIMIZERS, check_optimizer, make_optimizer
from engine.stack_math import activate, derive, plan_layers, row_order
from engine.checks import check_number
from engine.divergence import Divergence, divergence_limit
from engine.training import History

__all__ = ["Member", "Stack", "stack_widths", "train_batched"]


@dataclass(frozen=True)
class Member:
    """One network of a stack: its widths, learning rate, penalties, seed and activation
    (``None``: the stack's ``activation``)."""

    hidden: tuple[int, ...]
    learning_rate: float
    l2: float = 0.0
    l1: float = 0.0
    seed: int = 0
    activation: str | None = None


def _effective(hidden: Sequence[int], layer: int, n_in: int) -> int:
    """A member's width at a hidden layer of the stack: its own, or what its identity layers carry."""
    if layer < len(hidden):
        return hidden[layer]
    return hidden[-1] if hidden else n_in


def stack_widths(members: Sequence[Member], n_features: int) -> list[int]:
    """The hidden widths of the smallest stack that holds ``members``: the widest at each
    layer, as deep as the deepest."""
    depth = max(len(m.hidden) for m in members)
    return [max(_effective(m.hidden, layer, n_features) for m in members) for layer in range(depth)]


@dataclass
class _Slot:
    """A member's state outside the arrays: its network, History and position in its training."""

    member: Member
    activation: str
    model: MLP
    history: History
    epoch: int = 0  # epochs done
    last_cost: float = math.nan  # its cost at its latest step: what a divergence reports as last good
    limit: float = math.inf
    data: int = 0  # its dataset's index in the stack


class Stack:
    """Members trained together an epoch at a time; members join and leave between epochs.

    Args:
        dataset: what members train on (a member may bring another of the same shapes, see ``add``).
        widths: the stack's hidden widths (its depth is ``len(widths)``); every member must
            fit (``len(hidden) <= len(widths)``, each width at most the stack's).
        epochs: each member's number of epochs.
        batch_size, optimizer, momentum, nesterov, divergence_factor, dtype: as :func:`engine.train`.
        activation: for members whose ``activation`` is ``None``.
    """

    def __init__(self, dataset: Dataset, *, widths: Sequence[int], epochs: int, batch_size: int,
                 optimizer: str = "sgd", momentum: float = 0.9, nesterov: bool = False,
                 divergence_factor: float = 100.0, dtype: type | np.dtype = np.float32,
                 activation: str | None = None) -> None:
        check_optimizer(optimizer)
        check_number("epochs", epochs, low=1, integer=True)
        check_number("batch_size", batch_size, low=1, integer=True)
        check_number("divergence_factor", divergence_factor, low=1.0, low_open=True)
        self.dataset, self.epochs, self.batch_size = dataset, int(epochs), int(batch_size)
        self.optimizer, self.momentum, self.nesterov = optimizer, momentum, nesterov
        self.divergence_factor, self.activation = divergence_factor, activation
        self.dt = np.dtype(dtype)
        self.output = OUTPUT_FOR_TASK[dataset.task]
        self.out = OUTPUTS[self.output]
        n_in, n_out = dataset.n_features, dataset.n_outputs
        self.widths = [int(w) for w in widths]
        self.D = len(self.widths)
        self.sizes = [n_in, *self.widths, n_out]
        # A row of parameters: layer 0 as one (1 + n_in) x w0 block (its bias is the first
        # row), then the other layers' weights, then their biases.
        shapes = list(zip(self.sizes[:-1], self.sizes[1:]))
        self._first = (n_in + 1) * self.sizes[1]
        self._w_at = [0] + [self._first + sum(a * b for a, b in shapes[1:j]) for j in range(1, len(shapes))]
        end = self._first + sum(a * b for a, b in shapes[1:])
        self._b_at = [0] + [end + sum(b for _, b in shapes[1:j]) for j in range(1, len(shapes))]
        self.n_params = end + sum(b for _, b in shapes[1:])
        self.weights = slice(self.sizes[1], end)  # every weight, no bias: where penalties apply
        ydt = np.intp if self.out.classification else self.dt
        ones_col = lambda X: np.hstack([np.ones((X.shape[0], 1)), X]).astype(self.dt)  # noqa: E731
        self._prepare = lambda d: (ones_col(d.X_train), np.ascontiguousarray(d.y_train, dtype=ydt),  # noqa: E731
                                   ones_col(d.X_val), np.ascontiguousarray(d.y_val, dtype=ydt))
        self.X, self.y, self.Xv, self.yv = self._prepare(dataset)  # X: inputs and a column of ones (layer 0's bias)
        self._datasets = [dataset]  # members may bring others of the same shapes (see add)
        self._stacked: tuple[np.ndarray, ...] | None = None
        self.n = self.X.shape[0]
        self.starts = list(range(0, self.n, self.batch_size))
        # Per step, once: its rows, and the ones whose product with a gradient sums its rows.
        self.step_rows = np.array([min(self.batch_size, self.n - s) for s in self.starts], dtype=np.float64)
        ones = {b: np.ones((1, b), dtype=self.dt) for b in set(self.step_rows.astype(int).tolist())}
        self.step_ones = [ones[int(b)] for b in self.step_rows]
        # -1 / (its step's rows) for each training row: the sigmoid output's gradient scale.
        self._neg_inv_rows = (-1.0 / np.repeat(self.step_rows, self.step_rows.astype(int))).astype(self.dt)
        self.y_targets, self.yv_targets = self._target(self.y), self._target(self.yv)
        # (seed, epoch) -> the generator that draws that epoch's shuffling next (see _shufflings).
        self._cursors: dict[tuple[int, int], np.random.Generator] = {}
        self._slots: dict[int, _Slot] = {}
        self._rows: list[int] = []  # the handle of each stack row
        self._joining: list[int] = []
        self._leaving: set[int] = set()
        self._next = 0
        self._rebuild()

    # -- membership ---------------------------------------------------------------------
    def __len__(self) -> int:
        """Members training or about to (joined and not yet left)."""
        return len(self._rows) + len(self._joining) - len(self._leaving)

    def add(self, member: Member, *, dataset: Dataset | None = None) -> int:
        """Queue ``member`` to join at the next epoch; returns its handle.

        ``dataset`` (default: the stack's) may be another dataset of the same shapes (task,
        features, outputs, training and validation rows): one stack then trains members of
        several studies, each on its own data.
        """
        act = check_activation(member.activation if member.activation is not None else self.activation)
        data = self._data_index(dataset) if dataset is not None else 0
        if len(member.hidden) > self.D or any(h > w for h, w in zip(member.hidden, self.widths)):
            raise ValueError(f"member with hidden layers {list(member.hidden)} does not fit a stack of "
                             f"widths {self.widths}.")
        if self.D > len(member.hidden) and _effective(member.hidden, self.D, self.sizes[0]) > min(
                self.widths[len(member.hidden):]):
            raise ValueError(f"member with hidden layers {list(member.hidden)} needs identity layers of width "
                             f"{_effective(member.hidden, self.D, self.sizes[0])} in a stack of widths {self.widths}.")
        model = MLP(self.sizes[0], member.hidden, self.sizes[-1], activation=act, output=self.output,
                    seed=member.seed, dtype=self.dt)
        handle, self._next = self._next, self._next + 1
        self._slots[handle] = _Slot(member, act, model, History(task=self.dataset.task, initial_cost=math.nan),
                                    data=data)
        self._joining.append(handle)
        return handle

    def _data_index(self, dataset: Dataset) -> int:
        for i, d in enumerate(self._datasets):
            if d is dataset:
                return i
        base = self.dataset
        for what, a, b in (("task", dataset.task, base.task), ("n_features", dataset.n_features, base.n_features),
                           ("n_outputs", dataset.n_outputs, base.n_outputs),
                           ("training rows", len(dataset.X_train), len(base.X_train)),
                           ("validation rows", len(dataset.X_val), len(base.X_val))):
            if a != b:
                raise ValueError(f"dataset {dataset.name!r} can't share a stack with {base.name!r}: its {what} "
                                 f"is {a!r}, the stack's {b!r}.")
        self._datasets.append(dataset)
        parts = [self._prepare(d) for d in self._datasets]
        self._stacked = tuple(np.stack([p[j] for p in parts]) for j in range(4))
        return len(self._datasets) - 1

    def remove(self, handle: int) -> None:
        """Take a member out of the stack (its network keeps its weights as of now)."""
        if handle in self._joining:
            self._joining.remove(handle)
        elif handle in self._slots and handle in self._rows:
            self._leaving.add(handle)

    def model(self, handle: int) -> MLP:
        """The member's network, with its weights as of its latest epoch."""
        if handle in self._rows and handle not in self._leaving:
            self._write_back(self._rows.index(handle), self._slots[handle].model)
        return self._slots[handle].model

    def history(self, handle: int) -> History:
        return self._slots[handle].history

    def epoch_of(self, handle: int) -> int:
        return self._slots[handle].epoch

    # -- the arrays -----------------------------------------------------------------------
    def _first_block(self, buf: np.ndarray) -> np.ndarray:
        """Layer 0's parameters as one (K, 1 + n_in, w0) array: its bias row, then its weights."""
        return buf[:, : self._first].reshape(buf.shape[0], self.sizes[0] + 1, self.sizes[1])

    def _view(self, buf: np.ndarray, layer: int, *, bias: bool) -> np.ndarray:
        if layer == 0:
            block = self._first_block(buf)
            return block[:, :1] if bias else block[:, 1:]
        a, b = self.sizes[layer], self.sizes[layer + 1]
        if not bias:
            i = self._w_at[layer]
            return buf[:, i : i + a * b].reshape(buf.shape[0], a, b)
        i = self._b_at[layer]
        return buf[:, i : i + b].reshape(buf.shape[0], 1, b)

    def _fresh(self, slot: _Slot) -> dict[str, np.ndarray]:
        """A new member's row: its initial parameters placed in the stack's shapes."""
        flat = np.zeros((1, self.n_params), dtype=self.dt)
        trained = np.ones_like(flat)
        d = len(slot.member.hidden)
        m = slot.model
        for i, (w, b) in enumerate(zip(m.weights, m.biases)):
            layer = i if i < d else self.D  # a member's last matrix is the stack's output layer
            self._view(flat, layer, bias=False)[0, : w.shape[0], : w.shape[1]] = w
            self._view(flat, layer, bias=True)[0, 0, : b.shape[0]] = b
        for layer in range(d, self.D):
            e = _effective(slot.member.hidden, layer, self.sizes[0])
            self._view(flat, layer, bias=False)[0, np.arange(e), np.arange(e)] = 1.0
            self._view(trained, layer, bias=False)[0] = 0.0
            self._view(trained, layer, bias=True)[0] = 0.0
        if slot.activation == "sigmoid":
            # sigmoid(0) = 1/2: a padded unit gets the bias -inf, so that its output is
            # exactly 0; its gradients are 0 (the next layer's weights from it are 0), so
            # the bias stays -inf and the unit stays silent, with no mask to multiply by.
            for layer, h in enumerate(slot.member.hidden):
                self._view(flat, layer, bias=True)[0, 0, h:] = -np.inf
        return {"flat": flat, "trained": trained,
                **{name: np.zeros_like(flat) for name in OPTIMIZERS[self.optimizer].state_names}}

    def _rebuild(self) -> None:
        """Apply the joins and leaves: gather the rows kept, append the new, order by activation."""
        old = {h: r for r, h in enumerate(self._rows)}
        for h in self._leaving:
            self._write_back(old[h], self._slots[h].model)
        kept = [h for h in self._rows if h not in self._leaving]
        joining = self._joining
        def order(h: int) -> tuple:
            act, depth = self._slots[h].activation, len(self._slots[h].member.hidden)
            return (*row_order(act, depth), h)

        rows = sorted(kept + joining, key=order)
        state_names = OPTIMIZERS[self.optimizer].state_names
        keys = ["flat", "trained", *state_names]
        fresh = {h: self._fresh(self._slots[h]) for h in joining}
        opt = getattr(self, "opt", None)
        current = {"flat": getattr(self, "flat", None), "trained": getattr(self, "trained_", None),
                   **(opt.state if opt is not None else {})}
        arrays = {}
        for key in keys:
            parts = [fresh[h][key] if h in fresh else current[key][old[h] : old[h] + 1] for h in rows]
            if parts:
                arrays[key] = np.ascontiguousarray(np.concatenate(parts))
            else:
                arrays[key] = np.zeros((0, self.n_params), dtype=self.dt)
        self._rows, self._joining, self._leaving = rows, [], set()
        self.flat, self.trained_ = arrays["flat"], arrays["trained"]
        self.grad = np.zeros_like(self.flat)
        L = self.D + 1
        self.W = [self._view(self.flat, j, bias=False) for j in range(L)]
        self.b = [self._view(self.flat, j, bias=True) for j in range(L)]
        self.gW = [self._view(self.grad, j, bias=False) for j in range(L)]
        self.gb = [self._view(self.grad, j, bias=True) for j in range(L)]
        self.Wt = [w.transpose(0, 2, 1) for w in self.W]
        self.W0, self.gW0 = self._first_block(self.flat), self._first_block(self.grad)
        slots = [self._slots[h] for h in rows]
        dt = self.dt
        self.lr = np.array([s.member.learning_rate for s in slots], dtype=dt)[:, None]
        self.l2 = np.array([s.member.l2 for s in slots], dtype=dt)[:, None]
        self.l1 = np.array([s.member.l1 for s in slots], dtype=dt)[:, None]
        self.has_l2, self.has_l1 = bool(self.l2.any()), bool(self.l1.any())
        identity = any(len(s.member.hidden) < self.D for s in slots)
        # Identity layers never move: masked.
        self.opt = make_optimizer(self.optimizer, self.flat, learning_rate=self.lr, momentum=self.momentum,
                                  nesterov=self.nesterov, mask=self.trained_ if identity else None,
                                  state={name: arrays[name] for name in state_names}, scale_first=True)
        # Plain SGD takes L2 as a decay, w *= 1 - rate * l2: the same step as adding l2 * w to
        # the gradient, with one same-shape product instead of two broadcast ones.
        self.decay = None
        if self.optimizer == "sgd" and self.has_l2:
            self.decay = np.ones_like(self.flat)
            self.decay[:, self.weights] -= self.opt.rate[:, self.weights] * self.l2
        self.plan = plan_layers([(s.activation, len(s.member.hidden)) for s in slots], self.D)
        # Each member's data: the stack's own, or (members of several datasets) gathered by row.
        self.data = np.array([s.data for s in slots], dtype=np.intp)
        self.multi = bool(self.data.any())
        if self.multi:
            Xa, ya, Xva, yva = self._stacked
            X, y_targets = Xa[self.data], self._target(ya[self.data])
            self.val = (Xva[self.data], yva[self.data], self._target(yva[self.data]))
        else:
            X, y_targets = self.X, self.y_targets
            self.val = (self.Xv, self.yv, self.yv_targets)
        # Members that join get their initial cost, from the same forward pass as the rest.
        if joining:
            with np.errstate(all="ignore"):
                init = self._cost(self._forward(X)[-1], *y_targets, grad=False)[0] / self.n
            for r, h in enumerate(rows):
                s = self._slots[h]
                if h in fresh:
                    c = float(init[r])
                    s.history.initial_cost = c
                    s.last_cost = c
                    s.limit = divergence_limit(c, self.divergence_factor)
        self.limit = np.array([s.limit for s in slots], dtype=np.float64)

    def _write_back(self, r: int, model: MLP) -> None:
        d = len(model.hidden_sizes)
        for i, (w, b) in enumerate(zip(model.weights, model.biases)):
            layer = i if i < d else self.D
            w[...] = self.W[layer][r, : w.shape[0], : w.shape[1]]
            b[...] = self.b[layer][r, 0, : b.shape[0]]

    # -- the numerics ---------------------------------------------------------------------
    def _target(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return self.out.stacked_targets(y, self.dt)

    def _cost(self, z: np.ndarray, y: np.ndarray, sign: np.ndarray | None, *, grad: bool,
              scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        return self.out.stacked_cost_grad(z, y, sign, grad=grad, scale=scale)

    def _forward(self, a: np.ndarray) -> list[np.ndarray]:
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

    def _shufflings(self, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], np.ndarray]:
        """Each ``(seed, epoch)``'s shuffling: the ``epoch``-th ``rng.permutation(n)`` of
        ``default_rng(seed)``, as ``engine.train`` draws them.

        Drawn as members reach their epochs, never a table of every epoch (memory would grow
        with epochs x rows): the generator that drew a member's epoch is kept to draw its
        next one, and the generators no member needs any more are dropped.
        """
        out, cursors = {}, {}
        for seed, epoch in sorted(wanted):
            rng = self._cursors.pop((seed, epoch), None)
            if rng is None:  # a member at its first epoch
                rng = np.random.default_rng(seed)
                for _ in range(epoch):
                    rng.permutation(self.n)
            out[(seed, epoch)] = rng.permutation(self.n)
            cursors[(seed, epoch + 1)] = rng
        self._cursors = cursors
        return out

    def step_epoch(self) -> list[int]:
        """Train every member one epoch (after applying joins and leaves); returns the handles
        that trained. A member that diverged or finished its epochs leaves the stack; its
        History says which (``divergence``, or ``epochs == self.epochs``)."""
        if self._joining or self._leaving:
            self._rebuild()
        rows = self._rows
        K = len(rows)
        if not K:
            return []
        slots = [self._slots[h] for h in rows]
        t0 = time.perf_counter()
        seeds = {s.member.seed for s in slots}
        epochs = [s.epoch for s in slots]
        perms = self._shufflings({(s.member.seed, s.epoch) for s in slots})
        if len(seeds) == 1 and min(epochs) == max(epochs) and not self.multi:  # one batch for all
            perm = perms[(seeds.pop(), epochs[0])]
            Xs, ys = self.X[perm], self.y[perm]
        else:  # each member's own shuffling (members joined at other epochs, or other seeds) or data
            idx = np.stack([perms[(s.member.seed, s.epoch)] for s in slots])
            if self.multi:
                Xa, ya = self._stacked[:2]
                Xs, ys = Xa[self.data[:, None], idx], ya[self.data[:, None], idx]
            else:
                Xs, ys = self.X[idx], self.y[idx]
        ys, signs = self._target(ys)
        scales = None if signs is None else signs * self._neg_inv_rows
        S = len(self.starts)
        costs = np.empty((S, K))  # each step's summed cost per member; means at the epoch's end
        B = self.batch_size
        opt = self.optimizer
        plan, W, Wt, gW, gb, gW0 = self.plan, self.W, self.Wt, self.gW, self.gb, self.gW0
        D, step_ones, output = self.D, self.step_ones, self.output
        flat, g, decay, optimizer = self.flat, self.grad, self.decay, self.opt
        penalize = opt != "sgd" and (self.has_l2 or self.has_l1)
        if opt == "adam":
            adam_sizes = optimizer.corrections(np.array([s.epoch * S for s in slots], dtype=np.int64), S, self.dt)
        with np.errstate(all="ignore"):
            for i, start in enumerate(self.starts):
                rows_i = slice(start, start + B)
                xb = Xs[..., rows_i, :]
                acts = self._forward(xb)
                costs[i], delta = self.out.stacked_cost_grad(
                    acts[-1], ys[..., rows_i], None if signs is None else signs[..., rows_i],
                    grad=True, scale=None if scales is None else scales[..., rows_i])
                ones = step_ones[i]
                # Backpropagation, all members at once.
                for layer in range(D, 0, -1):
                    a = acts[layer]
                    np.matmul(a.swapaxes(-1, -2), delta, out=gW[layer])
                    np.matmul(ones, delta, out=gb[layer])  # faster than a sum over axis 1
                    delta = np.matmul(delta, Wt[layer])
                    derive(a, delta, plan[layer - 1])
                np.matmul(xb.swapaxes(-1, -2), delta, out=gW0)  # layer 0's weights and bias at once
                # Penalties only when some member has one (as the single engine skips them).
                if self.has_l1 and opt == "sgd":
                    gw = g[:, self.weights]
                    gw += self.l1 * np.sign(flat[:, self.weights])
                elif penalize:
                    w, gw = flat[:, self.weights], g[:, self.weights]
                    if self.has_l2:
                        gw += self.l2 * w
                    if self.has_l1:
                        gw += self.l1 * np.sign(w)
                if decay is not None:  # plain SGD's L2
                    flat *= decay
                if opt == "adam":
                    optimizer.step(g, step_size=self.lr * adam_sizes[:, i, None])
                else:
                    optimizer.step(g)
            Xv, yv, yv_targets = self.val
            vlogits = self._forward(Xv)[-1]
            vcost = self._cost(vlogits, *yv_targets, grad=False)[0] / Xv.shape[-2]
            if self.out.classification:
                scores = self.out.score(vlogits, yv)
            totals = costs.sum(0)
            costs /= self.step_rows[:, None]
            bad = ~(costs < self.limit)  # also catches NaN
        elapsed = time.perf_counter() - t0
        # Python floats once for all rows (indexing NumPy scalars row by row costs more).
        diverged = bad.any(axis=0).tolist()
        last_costs, vcosts, limits = costs[-1].tolist(), vcost.tolist(), self.limit.tolist()
        train_costs = (totals / self.n).tolist()
        score_list = scores.tolist() if self.out.classification else None
        for r, (h, s) in enumerate(zip(rows, slots)):
            hist = s.history
            step = s.epoch * S
            s.epoch += 1
            if diverged[r]:
                first = int(np.argmax(bad[:, r]))
                last = s.last_cost if first == 0 else float(costs[first - 1, r])
                hist.divergence = Divergence.at(s.epoch, step + first + 1, float(costs[first, r]), last)
                self._leaving.add(h)
                continue
            s.last_cost = last_costs[r]
            if not vcosts[r] < limits[r]:
                hist.divergence = Divergence.at(s.epoch, step + S, vcosts[r], s.last_cost)
                self._leaving.add(h)
                continue
            hist.train_cost.append(train_costs[r])
            hist.val_cost.append(vcosts[r])
            if score_list is not None:
                hist.val_accuracy.append(score_list[r])
            else:
                hist.val_r2.append(self.out.score(vlogits[r], yv[r] if self.multi else yv))
            hist.epoch_time.append(elapsed)
            if s.epoch >= self.epochs:
                self._leaving.add(h)
        return list(rows)

    def flush(self) -> None:
        """Apply pending leaves now (their networks get their final weights)."""
        if self._leaving:
            self._joining, joining = [], self._joining
            self._rebuild()
            self._joining = joining


def train_batched(
    members: Sequence[Member],
    dataset: Dataset,
    *,
    activation: str | None = None,
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

    Members share ``optimizer``, ``epochs`` and ``batch_size``; each has its own depth,
    widths and activation (``Member.activation``, else ``activation``).
    ``on_epoch(member_index, epoch, history)`` is called after each epoch of each member
    still training; ``False`` stops that member. ``widths`` pads the stack's hidden layers
    to at least these widths (and its depth to at least ``len(widths)``): a member
    retrained alone in a stack of the same widths gets bit-identical results.

    Example:
        >>> from engine import load_dataset
        >>> ds = load_dataset("xor")
        >>> out = train_batched([Member((4,), 0.1), Member((8, 8), 0.03, activation="relu")], ds,
        ...                     activation="tanh", epochs=2, batch_size=10)
        >>> [h.epochs for _, h in out]
        [2, 2]
    """
    if not members:
        return []
    for m in members:
        if m.activation is None and activation is None:
            raise ValueError("every member needs an activation: set 'Member.activation' or pass 'activation'.")
        check_activation(m.activation if m.activation is not None else activation)
    need = stack_widths(members, dataset.n_features)
    if widths is not None:
        if len(widths) < len(need):
            raise ValueError(f"'widths' must give every hidden layer of the deepest member ({len(need)}), "
                             f"but got {list(widths)}.")
        need = [max(w, *(_effective(m.hidden, layer, dataset.n_features) for m in members))
                for layer, w in enumerate(widths)]
    stack = Stack(dataset, widths=need, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                  momentum=momentum, nesterov=nesterov, divergence_factor=divergence_factor, dtype=dtype,
                  activation=activation)
    handles = [stack.add(m) for m in members]
    index = {h: i for i, h in enumerate(handles)}
    while len(stack):
        for h in stack.step_epoch():
            hist = stack.history(h)
            if hist.divergence is not None or on_epoch is None:
                continue
            if on_epoch(index[h], stack.epoch_of(h), hist) is False:
                hist.stopped_early = True
                stack.remove(h)
    stack.flush()
    return [(stack.model(h), stack.history(h)) for h in handles]
