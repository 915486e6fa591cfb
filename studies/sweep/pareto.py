"""Pareto fronts of a multi-objective study's complete trials, from what the storage holds.

Optuna finds a study's front (``Study.best_trials``) for a live study object; summaries,
reports and MLflow work from lists of frozen trials, so the same rule is applied here: a
complete trial is on the front when no other complete trial is at least as good in every
objective and better in one. Trials with equal values are all on it.

Example:
    >>> import numpy as np
    >>> front_mask(np.array([[1.0, 5.0], [2.0, 2.0], [3.0, 3.0], [1.0, 5.0]])).tolist()
    [True, True, False, True]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from optuna.trial import FrozenTrial, TrialState

__all__ = ["front_mask", "front_ranks", "pareto_front", "ranked", "values_of"]


def values_of(trial: FrozenTrial, n: int) -> tuple[float, ...] | None:
    """A complete trial's ``n`` finite values, or ``None`` (not complete, or not comparable)."""
    if trial.state != TrialState.COMPLETE or trial.values is None or len(trial.values) != n:
        return None
    values = tuple(float(v) for v in trial.values)
    return values if all(math.isfinite(v) for v in values) else None


def _losses(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Every objective turned into one to minimize."""
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return np.asarray(points, dtype=float).reshape(len(points), len(directions)) * signs


def front_mask(losses: np.ndarray) -> np.ndarray:
    """Which rows of ``losses`` (to minimize, one column per objective) no other row dominates.

    The rows are taken in lexicographic order, where a row's dominators always come first;
    a row dominated by an earlier row is dominated by one on the front too, so each row is
    compared with the front found so far only.
    """
    n = len(losses)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    order = np.lexsort(losses.T[::-1])
    front = np.empty((0, losses.shape[1]))
    for i in order:
        p = losses[i]
        if front.size and np.any(np.all(front <= p, axis=1) & np.any(front < p, axis=1)):
            continue
        mask[i] = True
        front = np.vstack([front, p])
    return mask


def front_ranks(losses: np.ndarray, *, limit: int | None = None) -> np.ndarray:
    """Each row's non-domination rank (0: the front; 1: the front once it is removed; ...);
    rows beyond the first ``limit`` rows ranked get ``-1``."""
    ranks = np.full(len(losses), -1)
    left = np.arange(len(losses))
    rank = 0
    while left.size and (limit is None or np.count_nonzero(ranks >= 0) < limit):
        on = front_mask(losses[left])
        ranks[left[on]] = rank
        left = left[~on]
        rank += 1
    return ranks


def pareto_front(trials: Sequence[FrozenTrial], directions: Sequence[str]) -> list[FrozenTrial]:
    """The complete trials on the Pareto front, by trial number."""
    scored = [(t, v) for t in trials if (v := values_of(t, len(directions))) is not None]
    if not scored:
        return []
    mask = front_mask(_losses(np.array([v for _, v in scored]), directions))
    return sorted((t for (t, _), on in zip(scored, mask) if on), key=lambda t: t.number)


def ranked(trials: Sequence[FrozenTrial], directions: Sequence[str], top: int) -> list[FrozenTrial]:
    """Up to ``top`` complete trials, best first: by value with one objective; with several,
    the front first, then the next front, each by trial number."""
    scored = [(t, v) for t in trials if (v := values_of(t, len(directions))) is not None]
    if not scored:
        return []
    losses = _losses(np.array([v for _, v in scored]), directions)
    if len(directions) == 1:
        order = sorted(range(len(scored)), key=lambda i: (losses[i, 0], scored[i][0].number))
        return [scored[i][0] for i in order[:top]]
    ranks = front_ranks(losses, limit=top)
    order = sorted((i for i in range(len(scored)) if ranks[i] >= 0), key=lambda i: (ranks[i], scored[i][0].number))
    return [scored[i][0] for i in order[:top]]
