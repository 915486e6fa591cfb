"""Mini-batch gradient descent, with divergence detection and an epoch hook."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from engine.checks import check
from engine.costs import OUTPUT_FOR_TASK, OUTPUTS
from engine.data.datasets import Dataset
from engine.divergence import Divergence, divergence_limit
from engine.errors import SweepsError
from engine.limits import check_memory, train_bytes
from engine.network import MLP
from engine.optimizers import Optimizer, check_optimizer, make_optimizer

__all__ = ["History", "train"]

SLOW_EPOCH = "SWEEPS_TEST_SLOW_EPOCH"  # the test hook of studies/hooks.py's step EPOCH


def epoch_pause() -> float:
    """Seconds to sleep after each epoch: the test hook ``SWEEPS_TEST_SLOW_EPOCH`` (read once per
    run; unset, always outside the tests, it is 0). Tests slow training down with it to catch a
    run mid-training, instead of using epoch counts as timers."""
    return float(os.environ.get(SLOW_EPOCH) or 0.0)


@dataclass
class History:
    """What happened while training, one entry per finished epoch.

    ``val_accuracy`` is filled for classification, ``val_r2`` for regression.
    """

    task: str
    initial_cost: float
    train_cost: list[float] = field(default_factory=list)
    val_cost: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    val_r2: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    divergence: Divergence | None = None
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        """Number of finished epochs."""
        return len(self.train_cost)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["divergence"] = None if self.divergence is None else self.divergence.to_dict()
        return d


def _prepare_model(model: MLP, dataset: Dataset) -> None:
    if model.sizes[0] != dataset.n_features:
        raise SweepsError(
            f"the model has {model.sizes[0]} inputs but dataset {dataset.name!r} has {dataset.n_features} features."
        )
    wanted = OUTPUT_FOR_TASK[dataset.task]
    if model.output is None:
        model.output = wanted
    elif OUTPUTS[model.output].classification != (dataset.task != "regression"):
        raise SweepsError(
            f"a {model.output!r} output does not fit the {dataset.task} dataset {dataset.name!r}; use {wanted!r}."
        )
    n_out = 1 if model.output in ("sigmoid", "identity") else dataset.n_classes
    if model.sizes[-1] != n_out:
        raise SweepsError(
            f"a {model.output!r} output for dataset {dataset.name!r} needs {n_out} output units, but the "
            f"model has {model.sizes[-1]}."
        )


def train(
    model: MLP,
    dataset: Dataset,
    *,
    learning_rate: float,
    epochs: int,
    batch_size: int,
    optimizer: str = "sgd",
    l2: float = 0.0,
    l1: float = 0.0,
    seed: int = 0,
    momentum: float = 0.9,
    nesterov: bool = False,
    divergence_factor: float = 100.0,
    on_epoch: Callable[[int, History], bool | None] | None = None,
) -> History:
    """Train ``model`` on ``dataset.X_train`` with mini-batch gradient descent.

    Args:
        model: the network; its output layer is picked from the dataset's task if unset.
        dataset: from :func:`engine.load_dataset`; the validation split is scored every epoch.
        learning_rate: step size (> 0).
        epochs: number of passes over the training split.
        batch_size: rows per step (the last batch of an epoch may be smaller).
        optimizer: ``sgd``, ``momentum`` (with ``momentum`` and ``nesterov``) or ``adam``.
        l2: L2 rate: the cost gains ``l2/2 * sum(W**2)`` over the weights (not the biases).
        l1: L1 rate: the cost gains ``l1 * sum(|W|)``.
        seed: seed of the shuffling, one permutation per epoch.
        divergence_factor: a cost above this multiple of the untrained network's cost is divergence.
        on_epoch: called as ``on_epoch(epoch, history)`` after each epoch; returning ``False`` stops.

    Returns:
        The :class:`History`. Training stops at the first NaN, inf or exploding cost
        (``history.divergence`` tells where); no NumPy warning is emitted.

    Example:
        >>> from engine import MLP, load_dataset, train
        >>> ds = load_dataset("xor", seed=0)
        >>> h = train(MLP(2, (8,), 1, activation="tanh"), ds, learning_rate=0.1, epochs=2, batch_size=10)
        >>> h.epochs
        2
    """
    _check_training(
        model,
        dataset,
        learning_rate=learning_rate,
        epochs=epochs,
        batch_size=batch_size,
        l2=l2,
        l1=l1,
        divergence_factor=divergence_factor,
        optimizer=optimizer,
    )
    opt = make_optimizer(
        optimizer, model.flat_parameters, learning_rate=learning_rate, momentum=momentum, nesterov=nesterov
    )
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        loop = _Loop(model, opt, dataset, batch_size=batch_size, l2=float(l2), l1=float(l1))
        history = History(task=dataset.task, initial_cost=loop.last_good)
        loop.limit = divergence_limit(loop.last_good, divergence_factor)
        pause = epoch_pause()
        for epoch in range(1, epochs + 1):
            if not loop.epoch(epoch, rng, history):
                return history  # diverged: history.divergence says where
            if pause:
                time.sleep(pause)
            if on_epoch is not None and on_epoch(epoch, history) is False:
                history.stopped_early = True
                break
    return history


def _check_training(
    model: MLP,
    dataset: Dataset,
    *,
    learning_rate: float,
    epochs: int,
    batch_size: int,
    l2: float,
    l1: float,
    divergence_factor: float,
    optimizer: str,
) -> None:
    """Every argument of :func:`train`, and the memory it needs, checked before anything runs."""
    for name, value in (
        ("learning_rate", learning_rate),
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("l2", l2),
        ("l1", l1),
        ("divergence_factor", divergence_factor),
    ):
        check(name, value)
    check_optimizer(optimizer)
    _prepare_model(model, dataset)
    check_memory(
        f"training a network {'-'.join(map(str, model.sizes))} on {len(dataset.y_train)} rows",
        train_bytes(model.sizes, model.dtype.itemsize, n_train=len(dataset.y_train), n_val=len(dataset.y_val)),
        advice="; use fewer or narrower layers",
    )


class _Loop:
    """The state of one training run between epochs: the splits as contiguous arrays of the
    model's dtype, the shuffled copies, the step count and the last healthy cost."""

    def __init__(self, model: MLP, opt: Optimizer, dataset: Dataset, *, batch_size: int, l2: float, l1: float) -> None:
        self.model, self.opt, self.batch_size, self.l2, self.l1 = model, opt, batch_size, l2, l1
        self.output = OUTPUTS[model._require_output()]
        ydtype = np.intp if self.output.classification else model.dtype
        self.X = np.ascontiguousarray(dataset.X_train, dtype=model.dtype)
        self.y = np.ascontiguousarray(dataset.y_train, dtype=ydtype)
        self.X_val = np.ascontiguousarray(dataset.X_val, dtype=model.dtype)
        self.y_val = np.ascontiguousarray(dataset.y_val, dtype=ydtype)
        self.Xs, self.ys = np.empty_like(self.X), np.empty_like(self.y)
        self.starts = range(0, self.X.shape[0], batch_size)
        self.step = 0
        self.last_good = model.cost_and_logits(self.X, self.y)[0]  # the untrained cost, at first
        self.limit = float("inf")

    def epoch(self, epoch: int, rng: np.random.Generator, history: History) -> bool:
        """One pass over the shuffled training split, then the validation cost and score, into
        ``history``; returns ``False`` at the first divergence (recorded in ``history``)."""
        t0 = time.perf_counter()
        n, size, model, grad = self.X.shape[0], self.batch_size, self.model, self.model.flat_gradient
        perm = rng.permutation(n)
        np.take(self.X, perm, axis=0, out=self.Xs)
        np.take(self.y, perm, axis=0, out=self.ys)
        total = 0.0
        for start in self.starts:
            xb = self.Xs[start : start + size]
            cost, _ = model.cost_and_gradient(xb, self.ys[start : start + size], self.l2, self.l1)
            self.step += 1
            if not cost < self.limit:  # also catches NaN
                history.divergence = Divergence.at(epoch, self.step, cost, self.last_good)
                return False
            self.last_good = cost
            self.opt.step(grad)
            total += cost * xb.shape[0]
        val_cost, logits = model.cost_and_logits(self.X_val, self.y_val)
        if not val_cost < self.limit:
            history.divergence = Divergence.at(epoch, self.step, val_cost, self.last_good, curve="val_cost")
            return False
        history.train_cost.append(total / n)
        history.val_cost.append(val_cost)
        score = float(self.output.score(logits, self.y_val))
        (history.val_accuracy if self.output.classification else history.val_r2).append(score)
        history.epoch_time.append(time.perf_counter() - t0)
        return True
