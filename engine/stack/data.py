"""What a stack trains on (see :mod:`engine.stack.trainer`): its datasets' splits as stacked steps
take them, the bounds of each epoch's mini-batches, and each member's shuffling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.costs import Output
from engine.data.datasets import Dataset
from engine.errors import SweepsError

__all__ = ["EpochRows", "Split", "StackData"]


@dataclass(frozen=True)
class Split:
    """A split as a stack's rows take it: inputs with a column of ones in front (layer 0's
    bias), labels, and the labels as the output's stacked cost takes them (``sign``: see
    :class:`engine.costs.Output`). Either one for all rows, or one per row (leading axis K)."""

    X: np.ndarray
    y: np.ndarray
    targets: np.ndarray
    sign: np.ndarray | None


@dataclass(frozen=True)
class EpochRows:
    """An epoch's training rows in each member's shuffled order (one order for all, or one per
    row), with ``scale``: the sigmoid output's gradient scale (``-sign`` / its step's rows)."""

    X: np.ndarray
    targets: np.ndarray
    sign: np.ndarray | None
    scale: np.ndarray | None


def _stack(splits: Sequence[Split]) -> Split:
    """Splits of several datasets as one, their leading axis the dataset."""
    # The datasets of a stack share their task, so either all splits have a sign or none has.
    sign = None if splits[0].sign is None else np.stack([s.sign for s in splits if s.sign is not None])
    return Split(
        np.stack([s.X for s in splits]), np.stack([s.y for s in splits]), np.stack([s.targets for s in splits]), sign
    )


class StackData:
    """A stack's datasets (the first, and others of the same shapes that members bring), its
    mini-batches, and its members' shufflings.

    Args:
        dataset: the stack's dataset.
        inputs: the stack's input width: a dataset with fewer columns is padded with zeros.
        batch_size: rows per step.
        dtype: the stack's floats.
        output: the output layer, whose stacked cost the targets are made for.
    """

    def __init__(self, dataset: Dataset, *, inputs: int, batch_size: int, dtype: np.dtype, output: Output) -> None:
        self.dataset, self.inputs, self.batch_size = dataset, inputs, batch_size
        self.dtype, self.output = dtype, output
        self.datasets = [dataset]
        self.train, self.val = self._prepare(dataset)
        self._stacked: tuple[Split, Split] | None = None  # every dataset's splits, once there are several
        self.n = self.train.X.shape[0]
        self.starts = list(range(0, self.n, batch_size))
        # Per step, once: its rows, and the ones whose product with a gradient sums its rows.
        self.step_rows = np.array([min(batch_size, self.n - s) for s in self.starts], dtype=np.float64)
        ones = {b: np.ones((1, b), dtype=dtype) for b in set(self.step_rows.astype(int).tolist())}
        self.step_ones = [ones[int(b)] for b in self.step_rows]
        # -1 / (its step's rows) for each training row: the sigmoid output's gradient scale.
        self._neg_inv_rows = (-1.0 / np.repeat(self.step_rows, self.step_rows.astype(int))).astype(dtype)
        # (seed, epoch) -> the generator that draws that epoch's shuffling next (see shufflings).
        self._cursors: dict[tuple[int, int], np.random.Generator] = {}

    def _split(self, X: np.ndarray, y: np.ndarray) -> Split:
        ydt = np.intp if self.output.classification else self.dtype
        n = X.shape[0]  # a column of ones (layer 0's bias), the inputs, zeros up to the stack's inputs
        X = np.hstack([np.ones((n, 1)), X, np.zeros((n, self.inputs - X.shape[1]))]).astype(self.dtype)
        y = np.ascontiguousarray(y, dtype=ydt)
        return Split(X, y, *self.output.stacked_targets(y, self.dtype))

    def _prepare(self, d: Dataset) -> tuple[Split, Split]:
        return self._split(d.X_train, d.y_train), self._split(d.X_val, d.y_val)

    def index(self, dataset: Dataset) -> int:
        """The index of ``dataset`` among the stack's, added if new; ``ValueError`` if its shapes differ."""
        for i, d in enumerate(self.datasets):
            if d is dataset:
                return i
        base = self.dataset
        for what, a, b in (
            ("task", dataset.task, base.task),
            ("n_outputs", dataset.n_outputs, base.n_outputs),
            ("training rows", len(dataset.X_train), len(base.X_train)),
            ("validation rows", len(dataset.X_val), len(base.X_val)),
        ):
            if a != b:
                raise SweepsError(
                    f"dataset {dataset.name!r} can't share a stack with {base.name!r}: its {what} "
                    f"is {a!r}, the stack's {b!r}."
                )
        if dataset.n_features > self.inputs:
            raise SweepsError(
                f"dataset {dataset.name!r} can't share a stack with {base.name!r}: its n_features "
                f"is {dataset.n_features}, more than the stack's {self.inputs} inputs."
            )
        self.datasets.append(dataset)
        parts = [self._prepare(d) for d in self.datasets]
        self._stacked = (_stack([p[0] for p in parts]), _stack([p[1] for p in parts]))
        return len(self.datasets) - 1

    def for_rows(self, data: np.ndarray | None) -> tuple[Split, Split]:
        """The training and validation splits of rows whose datasets are ``data`` (indices;
        ``None``: all the stack's first)."""
        if data is None:
            return self.train, self.val
        assert self._stacked is not None  # rows name datasets only once there are several
        train, val = (
            Split(s.X[data], s.y[data], s.targets[data], None if s.sign is None else s.sign[data])
            for s in self._stacked
        )
        return train, val

    def shufflings(self, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], np.ndarray]:
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

    def epoch(self, keys: Sequence[tuple[int, int]], data: np.ndarray | None) -> EpochRows:
        """The training rows of an epoch for rows at ``keys`` (each row's seed and epoch), whose
        datasets are ``data`` (``None``: all the stack's first)."""
        perms = self.shufflings(set(keys))
        if len(perms) == 1 and data is None:  # one shuffling for all
            perm = perms[keys[0]]
            X, y = self.train.X[perm], self.train.y[perm]
        else:  # each member's own shuffling (members joined at other epochs, or other seeds) or data
            idx = np.stack([perms[k] for k in keys])
            if data is not None:
                assert self._stacked is not None  # rows name datasets only once there are several
                full = self._stacked[0]
                X, y = full.X[data[:, None], idx], full.y[data[:, None], idx]
            else:
                X, y = self.train.X[idx], self.train.y[idx]
        targets, sign = self.output.stacked_targets(y, self.dtype)
        return EpochRows(X, targets, sign, None if sign is None else sign * self._neg_inv_rows)
