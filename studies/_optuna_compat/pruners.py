"""The percentile (and median) pruner's helpers."""

from __future__ import annotations

from collections.abc import Iterable

import optuna
from optuna.trial import FrozenTrial

# -- The percentile (and median) pruner's helpers ---------------------------------------------------
#
# studies/search/samplers.py's _PercentilePruner decides as Optuna's PercentilePruner.prune, with
# Optuna's own helpers, and remembers a step's percentile across the trials of a stack.


def percentile_first_in_interval(step: int, steps: Iterable[int], *, n_warmup_steps: int, interval_steps: int) -> bool:
    """Whether ``step`` is the first reported step of its pruning interval."""
    from optuna.pruners._percentile import _is_first_in_interval_step

    # Optuna annotates the steps as KeysView but only iterates over them.
    return _is_first_in_interval_step(step, steps, n_warmup_steps, interval_steps)  # type: ignore[arg-type]


def percentile_best_so_far(trial: FrozenTrial, direction: optuna.study.StudyDirection) -> float:
    """The trial's best intermediate value over its steps (NaN if it has only NaN)."""
    from optuna.pruners._percentile import _get_best_intermediate_result_over_steps

    return float(_get_best_intermediate_result_over_steps(trial, direction))


def percentile_at_step(
    completed: list[FrozenTrial],
    direction: optuna.study.StudyDirection,
    step: int,
    *,
    percentile: float,
    n_min_trials: int,
) -> float:
    """The ``percentile`` (from the best side) of the complete trials' values at ``step``; NaN
    when fewer than ``n_min_trials`` reported it."""
    from optuna.pruners._percentile import _get_percentile_intermediate_result_over_trials

    return _get_percentile_intermediate_result_over_trials(completed, direction, step, percentile, n_min_trials)
