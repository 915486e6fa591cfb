"""Samplers and pruners, in tables keyed by the names users type, with their options' rules."""

from __future__ import annotations

import contextlib
import inspect
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from engine.checks import Interval
from studies import _optuna_compat as _compat
from studies.errors import SweepsError
from studies.sweep import PluginSpec, SearchSpace

__all__ = [
    "SAMPLERS",
    "PRUNERS",
    "MULTI_OBJECTIVE_SAMPLERS",
    "Option",
    "BatchTPESampler",
    "batch_of",
    "check_plugin",
    "make_sampler",
    "make_pruner",
    "pruner_startup",
]


@dataclass(frozen=True)
class Option:
    """One non-numeric option of a sampler or pruner: its type and its rule, in words and as a
    test (numeric options are :class:`engine.checks.Interval` rules, with the same face)."""

    kind: type | tuple[type, ...]
    words: str
    test: Callable[[object], bool] = lambda v: True

    def holds(self, value: object) -> bool:
        if isinstance(value, bool) and bool not in (self.kind if isinstance(self.kind, tuple) else (self.kind,)):
            return False
        return isinstance(value, self.kind) and self.test(value)


# A sampler's or pruner's option: a number's Interval, or an Option of another type.
Rule = Option | Interval

_NONNEG_INT = Interval(True, 0)
_POS_INT = Interval(True, 1)
_BOOL = Option(bool, "true or false")
_PROBABILITY = Interval(False, 0.0, 1.0)
_RESOURCE = Option((int, str), "'auto' or an integer >= 1", lambda v: v == "auto" or (isinstance(v, int) and v >= 1))

SAMPLERS: dict[str, dict[str, Rule]] = {
    "cmaes": {
        "n_startup_trials": _NONNEG_INT,
        "sigma0": Interval(False, 0.0, low_open=True),
        "consider_pruned_trials": _BOOL,
    },
    "grid": {},
    "nsgaii": {
        "population_size": Interval(True, 2),
        "mutation_prob": _PROBABILITY,
        "crossover_prob": _PROBABILITY,
        "swapping_prob": _PROBABILITY,
    },
    "qmc": {"qmc_type": Option(str, "'sobol' or 'halton'", lambda v: v in ("halton", "sobol")), "scramble": _BOOL},
    "random": {},
    "tpe": {
        "n_startup_trials": _NONNEG_INT,
        "n_ei_candidates": _POS_INT,
        "multivariate": _BOOL,
        "constant_liar": _BOOL,
    },
}
# The samplers that support several objectives (Optuna's CMA-ES supports one).
MULTI_OBJECTIVE_SAMPLERS = ("grid", "nsgaii", "qmc", "random", "tpe")
_PRUNE_COMMON: dict[str, Rule] = {
    "n_startup_trials": _NONNEG_INT,
    "n_warmup_steps": _NONNEG_INT,
    "interval_steps": _POS_INT,
    "n_min_trials": _POS_INT,
}
PRUNERS: dict[str, dict[str, Rule]] = {
    "hyperband": {"min_resource": _POS_INT, "max_resource": _RESOURCE, "reduction_factor": Interval(True, 2)},
    "median": _PRUNE_COMMON,
    "none": {},
    "percentile": {**_PRUNE_COMMON, "percentile": Interval(False, 0.0, 100.0)},
    "successive_halving": {
        "min_resource": _RESOURCE,
        "reduction_factor": Interval(True, 2),
        "min_early_stopping_rate": _NONNEG_INT,
    },
}


def check_plugin(kind: str, spec: PluginSpec) -> None:
    """Raise ``ValueError`` for an unknown sampler/pruner or a bad option; ``kind`` is 'sampler' or 'pruner'."""
    table = SAMPLERS if kind == "sampler" else PRUNERS
    if not isinstance(spec.name, str) or spec.name not in table:
        raise SweepsError(f"'{kind}.name' must be one of {sorted(table)}, but got {spec.name!r}.")
    allowed = table[spec.name]
    for key, value in spec.options:
        if key not in allowed:
            hint = f"allowed: {sorted(allowed)}" if allowed else "it takes no options"
            raise SweepsError(f"unknown key '{kind}.{key}' for {kind} {spec.name!r} ({hint}).")
        if not allowed[key].holds(value):
            raise SweepsError(f"'{kind}.{key}' must be {allowed[key].words}, but got {value!r}.")
    if kind == "pruner" and spec.name == "percentile" and "percentile" not in dict(spec.options):
        raise SweepsError("pruner 'percentile' needs 'pruner.percentile' (a number in [0, 100]).")


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler for ask-and-tell: our workers stop at the study's total, so the
    sampler must not call ``study.stop()`` (which only works inside ``optimize``)."""

    def after_trial(self, study, trial, state, values) -> None:  # noqa: ANN001
        return None


class BatchTPESampler(_compat.TPESamplerHooks):
    """Optuna's TPE, which inside :meth:`batch` fits its model once for a batch of trials.

    A worker that trains K trials at once asks for all K before any finishes, so K asks
    would fit the same two densities from the same finished trials K times (most of TPE's
    time). Inside ``batch(K)`` the first trial to sample a parameter group runs Optuna's own
    sampling step once, drawing K sets of ``n_ei_candidates`` from one fit, and each trial
    of the batch takes the best of its own set, in turn. The fit is the first trial's: its
    constant liars are the running trials that have parameters by then (batch-mates asked
    together have none yet, so they do not lie to each other; trials of other workers do).
    With ``batch(1)``, and outside a batch, it proposes exactly what ``TPESampler``
    proposes for the same seed and history (tests/studies/test_samplers.py). It samples
    with its truncated normal's log Phi vectorized (scipy's ``log_ndtr``, equal to Optuna's
    to 1e-7; docs/upstream.md has the gain), so its floats may differ from those of an
    Optuna TPE without it in the last digits.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._batch_size = 0
        self._memo: dict[tuple, Any] = {}

    @contextlib.contextmanager
    def batch(self, size: int) -> Iterator[None]:
        """Sample the next ``size`` trials from one fit of the model (per study and parameter group)."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise SweepsError(f"'size' must be an integer >= 1, but got {size!r}.")
        self._batch_size, self._memo = size, {}
        try:
            yield
        finally:
            self._batch_size, self._memo = 0, {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        with _compat.vectorized_log_ndtr():
            return super().sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        with _compat.vectorized_log_ndtr():
            return super().sample_independent(study, trial, param_name, param_distribution)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if not self._batch_size:
            return super().infer_relative_search_space(study, trial)
        # Inferred from the finished trials, and none finishes during a batch: once per batch.
        key = ("space", study.study_name)
        if key not in self._memo:
            space = super().infer_relative_search_space(study, trial)
            self._memo[key] = (space, _compat.tpe_search_space_group(self))
        space, group = self._memo[key]
        _compat.set_tpe_search_space_group(self, group)
        return dict(space)

    def sample_space(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not self._batch_size:
            return super().sample_space(study, trial, search_space)
        key = ("sample", study.study_name, tuple(search_space.items()))
        entry = self._memo.get(key)
        if entry is None:
            samples, acquisition = _compat.tpe_candidates(self, study, trial, search_space, sets=self._batch_size)
            entry = self._memo[key] = [samples, acquisition, 0]
        samples, acquisition, used = entry
        if used >= self._batch_size:  # more asks than announced: one more fit, as Optuna would
            return super().sample_space(study, trial, search_space)
        entry[2] += 1
        n = len(acquisition) // self._batch_size
        chunk = slice(used * n, (used + 1) * n)
        best = int(np.argmax(acquisition[chunk]))
        return {name: dist.to_external_repr(samples[name][chunk][best].item()) for name, dist in search_space.items()}


def batch_of(sampler: optuna.samplers.BaseSampler, size: int) -> contextlib.AbstractContextManager:
    """The sampler's batch context for ``size`` trials (nothing for samplers without one)."""
    return sampler.batch(size) if isinstance(sampler, BatchTPESampler) and size > 1 else contextlib.nullcontext()


def make_sampler(spec: PluginSpec, *, seed: int, space: SearchSpace) -> optuna.samplers.BaseSampler:
    """A seeded sampler; TPE is multivariate with grouped (conditional) parameters by default."""
    opts: dict[str, Any] = dict(spec.options)  # checked against the constructor's signature
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if spec.name == "tpe":
            multivariate = opts.pop("multivariate", True)
            return BatchTPESampler(
                seed=seed,
                multivariate=multivariate,
                group=multivariate,
                constant_liar=opts.pop("constant_liar", True),
                **opts,
            )
        if spec.name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if spec.name == "nsgaii":
            return optuna.samplers.NSGAIISampler(seed=seed, **opts)
        if spec.name == "cmaes":
            return optuna.samplers.CmaEsSampler(
                seed=seed,
                warn_independent_sampling=False,
                independent_sampler=optuna.samplers.RandomSampler(seed=seed),
                **opts,
            )
        if spec.name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False, **opts)
        if spec.name == "grid":
            return _GridSampler(space.grid(), seed=seed)
    raise SweepsError(f"'sampler.name' must be one of {sorted(SAMPLERS)}, but got {spec.name!r}.")


class _PercentilePruner(optuna.pruners.PercentilePruner):
    """Optuna's percentile (and median) pruner, which computes a step's percentile once per
    set of complete trials: the trials of a stack report the same step together, and each
    would otherwise gather and sort the same values again. The decisions are Optuna's
    (``PercentilePruner.prune``, with its own helpers).
    """

    def __init__(self, percentile: float, **kwargs: Any) -> None:
        super().__init__(percentile, **kwargs)
        # Our own copy of the options, with Optuna's defaults (it keeps them in private attributes).
        bound = inspect.signature(optuna.pruners.PercentilePruner).bind(percentile, **kwargs)
        bound.apply_defaults()
        self.options = dict(bound.arguments)
        self._memo: dict[tuple, float] = {}

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        o = self.options
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        step = trial.last_step
        if not completed or len(completed) < o["n_startup_trials"] or step is None or step < o["n_warmup_steps"]:
            return False
        if not _compat.percentile_first_in_interval(
            step,
            trial.intermediate_values.keys(),
            n_warmup_steps=o["n_warmup_steps"],
            interval_steps=o["interval_steps"],
        ):
            return False
        direction = study.direction
        best = _compat.percentile_best_so_far(trial, direction)
        if math.isnan(best):
            return True
        # Complete trials only ever join the set: its size identifies it.
        key = (study.study_name, step, len(completed))
        p = self._memo.get(key)
        if p is None:
            if len(self._memo) > 4096:
                self._memo.clear()
            p = self._memo[key] = _compat.percentile_at_step(
                completed, direction, step, percentile=o["percentile"], n_min_trials=o["n_min_trials"]
            )
        if math.isnan(p):
            return False
        return best < p if direction == optuna.study.StudyDirection.MAXIMIZE else best > p


def make_pruner(spec: PluginSpec) -> optuna.pruners.BasePruner:
    opts: dict[str, Any] = dict(spec.options)  # checked against the constructor's signature
    factories: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
        "hyperband": optuna.pruners.HyperbandPruner,
        "median": lambda **kw: _PercentilePruner(50.0, **kw),
        "none": optuna.pruners.NopPruner,
        "percentile": _PercentilePruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    }
    if spec.name not in factories:
        raise SweepsError(f"'pruner.name' must be one of {sorted(PRUNERS)}, but got {spec.name!r}.")
    return factories[spec.name](**opts)


def pruner_startup(spec: PluginSpec) -> int:
    """How many complete trials a study needs before its pruner can prune at all (the median
    and percentile pruners compare with complete trials only); 0 for pruners that compare
    with running trials too, or never prune."""
    if spec.name in ("median", "percentile"):
        opts: dict[str, Any] = dict(spec.options)
        return max(1, int(opts.get("n_startup_trials", 5)), int(opts.get("n_min_trials", 1)))
    return 0
