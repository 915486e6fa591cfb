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
  each gathering its own rows;
- a member whose dataset has fewer input columns (other input features) is padded to the
  stack's ``inputs``: its data with zero columns, its first layer with zero weights from
  them, which get zero gradients and stay zero.

A :class:`Stack` is trained an epoch at a time, and members join and leave it between
epochs (continuous batching: a worker refills the slots of finished and pruned members with
new trials, so the stack stays full). Each member is at its own epoch, with its own
shuffling. A member that diverges leaves at the end of that epoch, its History telling
where (the same step as the single engine); a pruned member leaves when told.
:func:`train_stacked` trains a fixed set of members with it. Each member's History equals
what :func:`engine.train` gives for the same seed and arguments, and a member's sums do not
depend on the other members: retrained alone in a stack of the same widths, it gets
bit-identical results.

The parts: :mod:`engine.stack.layout` (where a member's parameters lie in its row),
:mod:`engine.stack.data` (the datasets, mini-batches and shufflings), :mod:`engine.stack.step`
(the rows as arrays and their steps), :mod:`engine.stack.kernels` (the activations, run by run);
this module keeps the membership (who joins and leaves, the rows gathered again) and each
member's History. The optimizers, costs and divergence rule are the single engine's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.activations import check_activation
from engine.checks import check, check_number
from engine.costs import OUTPUT_FOR_TASK, OUTPUTS
from engine.data.datasets import Dataset
from engine.divergence import Divergence, divergence_limit
from engine.errors import SweepsError
from engine.network import MLP
from engine.optimizers import OPTIMIZERS, Momentum, check_momentum, check_optimizer
from engine.stack.data import StackData
from engine.stack.kernels import row_order
from engine.stack.layout import Layout, effective_width
from engine.stack.step import Rows, RowSpec
from engine.training import History, epoch_pause

__all__ = ["Member", "Stack", "stack_widths", "train_stacked"]


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


def stack_widths(members: Sequence[Member], n_features: int) -> list[int]:
    """The hidden widths of the smallest stack that holds ``members``: the widest at each
    layer, as deep as the deepest."""
    depth = max(len(m.hidden) for m in members)
    return [max(effective_width(m.hidden, layer, n_features) for m in members) for layer in range(depth)]


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

    def spec(self) -> RowSpec:
        m = self.member
        return RowSpec(self.activation, len(m.hidden), m.learning_rate, m.l2, m.l1, self.data)


class Stack:
    """Members trained together an epoch at a time; members join and leave between epochs.

    Args:
        dataset: what members train on (a member may bring another of the same shapes, see ``add``).
        widths: the stack's hidden widths (its depth is ``len(widths)``); every member must
            fit (``len(hidden) <= len(widths)``, each width at most the stack's).
        epochs: each member's number of epochs.
        batch_size, optimizer, momentum, nesterov, divergence_factor, dtype: as :func:`engine.train`.
        activation: for members whose ``activation`` is ``None``.
        inputs: the stack's input width (default: ``dataset``'s); members' datasets may have
            fewer input columns, padded with zeros.
    """

    rows: Rows  # the members' rows, set by _rebuild once members join

    def __init__(
        self,
        dataset: Dataset,
        *,
        widths: Sequence[int],
        epochs: int,
        batch_size: int,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        nesterov: bool = False,
        divergence_factor: float = 100.0,
        dtype: type | np.dtype = np.float32,
        activation: str | None = None,
        inputs: int | None = None,
    ) -> None:
        check_optimizer(optimizer)
        if OPTIMIZERS[optimizer] is Momentum:
            check_momentum(momentum)
        for name, value in (("epochs", epochs), ("batch_size", batch_size), ("divergence_factor", divergence_factor)):
            check(name, value)
        self.dataset, self.epochs, self.batch_size = dataset, int(epochs), int(batch_size)
        self.optimizer, self.momentum, self.nesterov = optimizer, momentum, nesterov
        self.divergence_factor, self.activation = divergence_factor, activation
        self.dt = np.dtype(dtype)
        self.output = OUTPUT_FOR_TASK[dataset.task]
        self.out = OUTPUTS[self.output]
        n_in = dataset.n_features
        if inputs is not None:
            check_number("inputs", inputs, low=n_in, integer=True)
            n_in = int(inputs)
        self.n_inputs = n_in
        self.widths = [int(w) for w in widths]
        self.D = len(self.widths)
        self.layout = Layout.of(n_in, self.widths, dataset.n_outputs)
        self.data = StackData(dataset, inputs=n_in, batch_size=self.batch_size, dtype=self.dt, output=self.out)
        self.n, self.starts = self.data.n, self.data.starts
        self._slots: dict[int, _Slot] = {}
        self._order: list[int] = []  # the handle of each row
        self._joining: list[int] = []
        self._leaving: set[int] = set()
        self._next = 0
        self._pause = epoch_pause()  # the test hook, read once per stack
        self._rebuild()

    # -- membership ---------------------------------------------------------------------
    def __len__(self) -> int:
        """Members training or about to (joined and not yet left)."""
        return len(self._order) + len(self._joining) - len(self._leaving)

    def add(self, member: Member, *, dataset: Dataset | None = None) -> int:
        """Queue ``member`` to join at the next epoch; returns its handle.

        ``dataset`` (default: the stack's) may be another dataset of the same shapes (task,
        outputs, training and validation rows, at most the stack's ``inputs``): one stack then
        trains members of several studies, or of other input features, each on its own data.
        The member's network has as many inputs as its dataset has columns.
        """
        act = check_activation(member.activation if member.activation is not None else self.activation)
        data = self.data.index(dataset) if dataset is not None else 0
        hidden, n_in = member.hidden, self.data.datasets[data].n_features
        if len(hidden) > self.D or any(h > w for h, w in zip(hidden, self.widths)):
            raise SweepsError(f"member with hidden layers {list(hidden)} does not fit a stack of widths {self.widths}.")
        if self.D > len(hidden) and effective_width(hidden, self.D, n_in) > min(self.widths[len(hidden) :]):
            raise SweepsError(
                f"member with hidden layers {list(hidden)} needs identity layers of width "
                f"{effective_width(hidden, self.D, n_in)} in a stack of widths {self.widths}."
            )
        model = MLP(
            n_in, hidden, self.layout.sizes[-1], activation=act, output=self.output, seed=member.seed, dtype=self.dt
        )
        handle, self._next = self._next, self._next + 1
        self._slots[handle] = _Slot(
            member, act, model, History(task=self.dataset.task, initial_cost=math.nan), data=data
        )
        self._joining.append(handle)
        return handle

    def remove(self, handle: int) -> None:
        """Take a member out of the stack (its network keeps its weights as of now)."""
        if handle in self._joining:
            self._joining.remove(handle)
        elif handle in self._slots and handle in self._order:
            self._leaving.add(handle)

    def model(self, handle: int) -> MLP:
        """The member's network, with its weights as of its latest epoch."""
        if handle in self._order and handle not in self._leaving:
            self.layout.read(self.rows.params, self._order.index(handle), self._slots[handle].model)
        return self._slots[handle].model

    def history(self, handle: int) -> History:
        return self._slots[handle].history

    def epoch_of(self, handle: int) -> int:
        return self._slots[handle].epoch

    def flush(self) -> None:
        """Apply pending leaves now (their networks get their final weights)."""
        if self._leaving:
            self._joining, joining = [], self._joining
            self._rebuild()
            self._joining = joining

    def _rebuild(self) -> None:
        """Apply the joins and leaves: gather the rows kept, append the new, order by activation."""
        old = {h: r for r, h in enumerate(self._order)}
        for h in self._leaving:
            self.layout.read(self.rows.params, old[h], self._slots[h].model)
        joining = self._joining

        def order(h: int) -> tuple:
            return (*row_order(self._slots[h].activation, len(self._slots[h].member.hidden)), h)

        handles = sorted([h for h in self._order if h not in self._leaving] + joining, key=order)
        current = self.rows.arrays() if self._order else {}
        fresh = {h: self._fresh(self._slots[h]) for h in joining}
        arrays = {}
        for key in ("params", "mask", *OPTIMIZERS[self.optimizer].state_names):
            parts = [fresh[h][key] if h in fresh else current[key][old[h] : old[h] + 1] for h in handles]
            arrays[key] = (
                np.ascontiguousarray(np.concatenate(parts))
                if parts
                else np.zeros((0, self.layout.n_params), dtype=self.dt)
            )
        self._order, self._joining, self._leaving = handles, [], set()
        slots = [self._slots[h] for h in handles]
        self.rows = Rows(
            self.layout,
            [s.spec() for s in slots],
            arrays,
            output=self.out,
            optimizer=self.optimizer,
            momentum=self.momentum,
            nesterov=self.nesterov,
        )
        self.train_split, self.val_split = self.data.for_rows(self.rows.data if self.rows.multi else None)
        if fresh:  # members that join get their initial cost, from the same forward pass as the rest
            split = self.train_split
            with np.errstate(all="ignore"):
                z = self.rows.forward(split.X)[-1]
                init = self.out.stacked_cost_grad(z, split.targets, split.sign, grad=False)[0] / self.n
            for r, h in enumerate(handles):
                if h in fresh:
                    s, c = self._slots[h], float(init[r])
                    s.history.initial_cost = s.last_cost = c
                    s.limit = divergence_limit(c, self.divergence_factor)
        self.limit = np.array([s.limit for s in slots], dtype=np.float64)

    def _fresh(self, slot: _Slot) -> dict[str, np.ndarray]:
        """A new member's row of every per-row array: its initial parameters placed in the stack."""
        params, mask = self.layout.place(slot.model)
        return {
            "params": params,
            "mask": mask,
            **{name: np.zeros_like(params) for name in OPTIMIZERS[self.optimizer].state_names},
        }

    # -- training -------------------------------------------------------------------------
    def step_epoch(self) -> list[int]:
        """Train every member one epoch (after applying joins and leaves); returns the handles
        that trained. A member that diverged or finished its epochs leaves the stack; its
        History says which (``divergence``, or ``epochs == self.epochs``)."""
        if self._joining or self._leaving:
            self._rebuild()
        handles, rows = self._order, self.rows
        if not handles:
            return []
        slots = [self._slots[h] for h in handles]
        t0 = time.perf_counter()
        S = len(self.starts)
        epoch = self.data.epoch([(s.member.seed, s.epoch) for s in slots], rows.data if rows.multi else None)
        val = self.val_split
        with np.errstate(all="ignore"):
            costs = rows.train_epoch(epoch, self.data, np.array([s.epoch * S for s in slots], dtype=np.int64))
            vlogits = rows.forward(val.X)[-1]
            vcost = self.out.stacked_cost_grad(vlogits, val.targets, val.sign, grad=False)[0] / val.X.shape[-2]
            scores = np.asarray(self.out.score(vlogits, val.y)) if self.out.classification else None
            totals = costs.sum(0)
            costs /= self.data.step_rows[:, None]  # each step's mean cost
            bad = ~(costs < self.limit)  # the divergence rule; NaN too
        self._record(slots, costs, bad, totals, vcost, vlogits, scores, time.perf_counter() - t0)
        if self._pause:
            time.sleep(self._pause)
        return list(handles)

    def _record(
        self,
        slots: list[_Slot],
        costs: np.ndarray,
        bad: np.ndarray,
        totals: np.ndarray,
        vcost: np.ndarray,
        vlogits: np.ndarray,
        scores: np.ndarray | None,
        elapsed: float,
    ) -> None:
        """Each member's epoch into its History: its divergence (at the same step as the single
        engine would stop), or its costs and score; members that diverged or are done leave."""
        S = costs.shape[0]
        # Python floats once for all rows (indexing NumPy scalars row by row costs more).
        diverged = np.any(bad, axis=0).tolist()
        last_costs, vcosts, limits = costs[-1].tolist(), vcost.tolist(), self.limit.tolist()
        train_costs = (totals / self.n).tolist()
        score_list = scores.tolist() if scores is not None else None
        yv = self.val_split.y
        for r, (h, s) in enumerate(zip(self._order, slots)):
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
                hist.divergence = Divergence.at(s.epoch, step + S, vcosts[r], s.last_cost, curve="val_cost")
                self._leaving.add(h)
                continue
            hist.train_cost.append(train_costs[r])
            hist.val_cost.append(vcosts[r])
            if score_list is not None:
                hist.val_accuracy.append(score_list[r])
            else:
                hist.val_r2.append(float(self.out.score(vlogits[r], yv[r] if self.rows.multi else yv)))
            hist.epoch_time.append(elapsed)
            if s.epoch >= self.epochs:
                self._leaving.add(h)


def train_stacked(
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
    inputs: int | None = None,
    on_epoch: Callable[[int, int, History], bool | None] | None = None,
) -> list[tuple[MLP, History]]:
    """Train every member at once; returns each member's trained network and History, in order.

    Members share ``optimizer``, ``epochs`` and ``batch_size``; each has its own depth,
    widths and activation (``Member.activation``, else ``activation``).
    ``on_epoch(member_index, epoch, history)`` is called after each epoch of each member
    still training; ``False`` stops that member. ``widths`` pads the stack's hidden layers
    to at least these widths (and its depth to at least ``len(widths)``), and ``inputs``
    its input layer (see :class:`Stack`): a member retrained alone in a stack of the same
    widths and inputs gets bit-identical results.

    Example:
        >>> from engine import load_dataset
        >>> ds = load_dataset("xor")
        >>> out = train_stacked([Member((4,), 0.1), Member((8, 8), 0.03, activation="relu")], ds,
        ...                     activation="tanh", epochs=2, batch_size=10)
        >>> [h.epochs for _, h in out]
        [2, 2]
    """
    if not members:
        return []
    for m in members:
        if m.activation is None and activation is None:
            raise SweepsError("every member needs an activation: set 'Member.activation' or pass 'activation'.")
        check_activation(m.activation if m.activation is not None else activation)
    need = stack_widths(members, dataset.n_features)
    if widths is not None:
        if len(widths) < len(need):
            raise SweepsError(
                f"'widths' must give every hidden layer of the deepest member ({len(need)}), but got {list(widths)}."
            )
        need = [
            max(w, *(effective_width(m.hidden, layer, dataset.n_features) for m in members))
            for layer, w in enumerate(widths)
        ]
    stack = Stack(
        dataset,
        widths=need,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        momentum=momentum,
        nesterov=nesterov,
        divergence_factor=divergence_factor,
        dtype=dtype,
        activation=activation,
        inputs=inputs,
    )
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
