"""Samplers and pruners, in tables keyed by the names users type, with their options' rules."""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from studies.config import PluginSpec
from studies.space import SearchSpace

__all__ = ["SAMPLERS", "PRUNERS", "Option", "BatchTPESampler", "batch_of", "check_plugin", "make_sampler",
           "make_pruner", "pruner_startup"]


@dataclass(frozen=True)
class Option:
    """One option of a sampler or pruner: its type and its rule, in words and as a test."""

    kind: type | tuple[type, ...]
    rule: str
    test: Callable[[object], bool] = lambda v: True

    def check(self, value: object) -> bool:
        if isinstance(value, bool) and bool not in (self.kind if isinstance(self.kind, tuple) else (self.kind,)):
            return False
        return isinstance(value, self.kind) and self.test(value)


_NONNEG_INT = Option(int, "an integer >= 0", lambda v: v >= 0)
_POS_INT = Option(int, "an integer >= 1", lambda v: v >= 1)
_BOOL = Option(bool, "true or false")
_RESOURCE = Option((int, str), "'auto' or an integer >= 1", lambda v: v == "auto" or (isinstance(v, int) and v >= 1))

SAMPLERS: dict[str, dict[str, Option]] = {
    "cmaes": {"n_startup_trials": _NONNEG_INT, "sigma0": Option((int, float), "a number > 0", lambda v: v > 0),
              "consider_pruned_trials": _BOOL},
    "grid": {},
    "qmc": {"qmc_type": Option(str, "'sobol' or 'halton'", lambda v: v in ("halton", "sobol")), "scramble": _BOOL},
    "random": {},
    "tpe": {"n_startup_trials": _NONNEG_INT, "n_ei_candidates": _POS_INT, "multivariate": _BOOL,
            "constant_liar": _BOOL},
}
_PRUNE_COMMON = {"n_startup_trials": _NONNEG_INT, "n_warmup_steps": _NONNEG_INT, "interval_steps": _POS_INT,
                 "n_min_trials": _POS_INT}
PRUNERS: dict[str, dict[str, Option]] = {
    "hyperband": {"min_resource": _POS_INT, "max_resource": _RESOURCE, "reduction_factor": Option(int, "an integer >= 2", lambda v: v >= 2)},
    "median": _PRUNE_COMMON,
    "none": {},
    "percentile": {**_PRUNE_COMMON, "percentile": Option((int, float), "a number in [0, 100]", lambda v: 0 <= v <= 100)},
    "successive_halving": {"min_resource": _RESOURCE, "reduction_factor": Option(int, "an integer >= 2", lambda v: v >= 2),
                           "min_early_stopping_rate": _NONNEG_INT},
}


def check_plugin(kind: str, spec: PluginSpec) -> None:
    """Raise ``ValueError`` for an unknown sampler/pruner or a bad option; ``kind`` is 'sampler' or 'pruner'."""
    table = SAMPLERS if kind == "sampler" else PRUNERS
    if not isinstance(spec.name, str) or spec.name not in table:
        raise ValueError(f"'{kind}.name' must be one of {sorted(table)}, but got {spec.name!r}.")
    allowed = table[spec.name]
    for key, value in spec.options:
        if key not in allowed:
            hint = f"allowed: {sorted(allowed)}" if allowed else "it takes no options"
            raise ValueError(f"unknown key '{kind}.{key}' for {kind} {spec.name!r} ({hint}).")
        if not allowed[key].check(value):
            raise ValueError(f"'{kind}.{key}' must be {allowed[key].rule}, but got {value!r}.")
    if kind == "pruner" and spec.name == "percentile" and "percentile" not in dict(spec.options):
        raise ValueError("pruner 'percentile' needs 'pruner.percentile' (a number in [0, 100]).")


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler for ask-and-tell: our workers stop at the study's total, so the
    sampler must not call ``study.stop()`` (which only works inside ``optimize``)."""

    def after_trial(self, study, trial, state, values) -> None:  # noqa: ANN001
        return None


_patch_lock = threading.Lock()
_patch_depth = 0


@contextlib.contextmanager
def _vectorized_log_ndtr() -> Iterator[None]:
    """Optuna's truncated normal (TPE's kernels) evaluates log Phi element by element in
    Python (``np.frompyfunc``), most of TPE's time once the candidates number in the
    hundreds; scipy's ``log_ndtr`` is the same function vectorized, and more accurate in the
    tails. Swapped in only while this sampler samples (reentrant, thread-safe)."""
    global _patch_depth
    from optuna.samplers._tpe import _truncnorm
    from scipy.special import log_ndtr

    with _patch_lock:
        if _patch_depth == 0:
            _vectorized_log_ndtr.original = _truncnorm._log_ndtr  # type: ignore[attr-defined]
            _truncnorm._log_ndtr = log_ndtr
        _patch_depth += 1
    try:
        yield
    finally:
        with _patch_lock:
            _patch_depth -= 1
            if _patch_depth == 0:
                _truncnorm._log_ndtr = _vectorized_log_ndtr.original  # type: ignore[attr-defined]


class BatchTPESampler(optuna.samplers.TPESampler):
    """Optuna's TPE, which inside :meth:`batch` fits its model once for a batch of trials.

    A worker that trains K trials at once asks for all K before any finishes, so K asks
    would fit the same two densities from the same finished trials K times (most of TPE's
    time). Inside ``batch(K)`` they are fitted once per parameter group, K sets of
    ``n_ei_candidates`` are drawn together, and each trial takes the best of its own set:
    what K asks would give, except that batch-mates do not act as each other's constant
    liar (trials of other workers still do). Outside a batch it is Optuna's TPE, with its
    truncated normal's log Phi vectorized (scipy's ``log_ndtr``: the same numbers to 1e-7,
    about 10x faster).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._batch_size = 0
        self._memo: dict[tuple, Any] = {}

    @contextlib.contextmanager
    def batch(self, size: int) -> Iterator[None]:
        """Sample the next ``size`` trials from one fit of the model."""
        self._batch_size, self._memo = size, {}
        try:
            yield
        finally:
            self._batch_size, self._memo = 0, {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        with _vectorized_log_ndtr():
            return super().sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        with _vectorized_log_ndtr():
            return super().sample_independent(study, trial, param_name, param_distribution)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if not self._batch_size:
            return super().infer_relative_search_space(study, trial)
        key = ("space", study._study_id)
        if key not in self._memo:
            self._memo[key] = (super().infer_relative_search_space(study, trial), self._search_space_group)
        space, self._search_space_group = self._memo[key]
        return dict(space)

    def _sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                         search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not self._batch_size or not search_space:
            return super()._sample_relative(study, trial, search_space)
        # Whether the study is past TPE's random start-up: no trial ends during a batch, so
        # the answer holds for all of it (Optuna asks the storage once per parameter group).
        key = ("started", study._study_id)
        if key not in self._memo:
            done = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED), use_cache=True)
            self._memo[key] = len(done) >= self._n_startup_trials
        return self._sample(study, trial, search_space) if self._memo[key] else {}

    def _sample(self, study: optuna.Study, trial: FrozenTrial,
                search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not self._batch_size:
            return super()._sample(study, trial, search_space)
        key = ("sample", study._study_id, tuple(search_space.items()))
        entry = self._memo.get(key)
        if entry is None:
            entry = self._memo[key] = [*self._candidates(study, search_space, self._batch_size), 0]
        samples, acquisition, used = entry
        if used >= self._batch_size:  # more asks than announced: one more fit, as Optuna would
            return super()._sample(study, trial, search_space)
        entry[2] += 1
        chunk = slice(used * self._n_ei_candidates, (used + 1) * self._n_ei_candidates)
        best = int(np.argmax(acquisition[chunk]))
        return {name: dist.to_external_repr(samples[name][chunk][best].item())
                for name, dist in search_space.items()}

    def _candidates(self, study: optuna.Study, search_space: dict[str, BaseDistribution],
                    size: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``size`` sets of candidates from the below-density and their acquisition values
        (TPESampler._sample's fit, drawing ``size`` times as many candidates)."""
        from optuna.samplers._tpe.sampler import _split_trials, default_gamma

        states = [TrialState.COMPLETE, TrialState.PRUNED] + ([TrialState.RUNNING] if self._constant_liar else [])
        trials = study._get_trials(deepcopy=False, states=states, use_cache=not self._constant_liar)
        if self._gamma is None:
            self._gamma = default_gamma
        n = sum(t.state != TrialState.RUNNING for t in trials)
        below, above = _split_trials(study, trials, self._gamma(n))
        mpe_below = self._build_parzen_estimator(study, search_space, below, handle_below=True)
        mpe_above = self._build_parzen_estimator(study, search_space, above, handle_below=False)
        samples = mpe_below.sample(self._rng.rng, self._n_ei_candidates * size)
        return samples, self._compute_acquisition_func(samples, mpe_below, mpe_above)


def batch_of(sampler: optuna.samplers.BaseSampler, size: int) -> contextlib.AbstractContextManager:
    """The sampler's batch context for ``size`` trials (nothing for samplers without one)."""
    return sampler.batch(size) if isinstance(sampler, BatchTPESampler) and size > 1 else contextlib.nullcontext()


def make_sampler(spec: PluginSpec, *, seed: int, space: SearchSpace) -> optuna.samplers.BaseSampler:
    """A seeded sampler; TPE is multivariate with grouped (conditional) parameters by default."""
    opts = dict(spec.options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if spec.name == "tpe":
            multivariate = opts.pop("multivariate", True)
            return BatchTPESampler(
                seed=seed, multivariate=multivariate, group=multivariate,
                constant_liar=opts.pop("constant_liar", True), **opts,
            )
        if spec.name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if spec.name == "cmaes":
            return optuna.samplers.CmaEsSampler(
                seed=seed, warn_independent_sampling=False,
                independent_sampler=optuna.samplers.RandomSampler(seed=seed), **opts,
            )
        if spec.name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False, **opts)
        if spec.name == "grid":
            return _GridSampler(space.grid(), seed=seed)
    raise ValueError(f"'sampler.name' must be one of {sorted(SAMPLERS)}, but got {spec.name!r}.")


class _PercentilePruner(optuna.pruners.PercentilePruner):
    """Optuna's percentile (and median) pruner, which computes a step's percentile once per
    set of complete trials: the trials of a stack report the same step together, and each
    would otherwise gather and sort the same values again. The decisions are Optuna's.
    """

    def __init__(self, percentile: float, **kwargs: Any) -> None:
        super().__init__(percentile, **kwargs)
        self._memo: dict[tuple, float] = {}

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        from optuna.pruners._percentile import (
            _get_best_intermediate_result_over_steps,
            _get_percentile_intermediate_result_over_trials,
            _is_first_in_interval_step,
        )

        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        step = trial.last_step
        if not completed or len(completed) < self._n_startup_trials or step is None or step < self._n_warmup_steps:
            return False
        if not _is_first_in_interval_step(step, trial.intermediate_values.keys(), self._n_warmup_steps,
                                          self._interval_steps):
            return False
        direction = study.direction
        best = _get_best_intermediate_result_over_steps(trial, direction)
        if math.isnan(best):
            return True
        # Complete trials only ever join the set: its size identifies it.
        key = (study._study_id, step, len(completed))
        p = self._memo.get(key)
        if p is None:
            if len(self._memo) > 4096:
                self._memo.clear()
            p = self._memo[key] = _get_percentile_intermediate_result_over_trials(
                completed, direction, step, self._percentile, self._n_min_trials)
        if math.isnan(p):
            return False
        return best < p if direction == optuna.study.StudyDirection.MAXIMIZE else best > p


def make_pruner(spec: PluginSpec) -> optuna.pruners.BasePruner:
    opts = dict(spec.options)
    factories: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
        "hyperband": optuna.pruners.HyperbandPruner,
        "median": lambda **kw: _PercentilePruner(50.0, **kw),
        "none": optuna.pruners.NopPruner,
        "percentile": _PercentilePruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    }
    if spec.name not in factories:
        raise ValueError(f"'pruner.name' must be one of {sorted(PRUNERS)}, but got {spec.name!r}.")
    return factories[spec.name](**opts)


def pruner_startup(spec: PluginSpec) -> int:
    """How many complete trials a study needs before its pruner can prune at all (the median
    and percentile pruners compare with complete trials only); 0 for pruners that compare
    with running trials too, or never prune."""
    if spec.name in ("median", "percentile"):
        opts = dict(spec.options)
        return max(1, int(opts.get("n_startup_trials", 5)), int(opts.get("n_min_trials", 1)))
    return 0
