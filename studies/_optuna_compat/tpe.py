"""TPE's one sampling step run for a batch, and its truncated normal's vectorized log Phi."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial

# -- TPE: one fit, many candidates (studies/search/samplers.py's BatchTPESampler) ------------------------
#
# Optuna has no public way to fit TPE's model once and draw candidates for several trials.
# Rather than re-implement ``TPESampler._sample`` (which trials act as constant liars, the
# split into below/above, the Parzen estimators, the random draws), these run Optuna's own,
# asking it for more candidates and keeping them all: what it decides is always the installed
# Optuna's. Every private name they touch is checked by tests/studies/test_optuna_compat.py,
# and a change that slips past the tests still fails here at once (never silently).

_tpe_lock = threading.RLock()


class TPESamplerHooks(optuna.samplers.TPESampler):
    """Optuna's TPE, whose one sampling step can be replaced by a subclass.

    ``TPESampler._sample`` is the step both ``sample_relative`` (per parameter group) and
    ``sample_independent`` go through: fit the below/above densities, draw
    ``n_ei_candidates`` from the below one, return the best. :meth:`sample_space` is that
    step; by default it is Optuna's.
    """

    def sample_space(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Parameters for ``trial`` in ``search_space`` (external representation): Optuna's step."""
        return optuna.samplers.TPESampler._sample(self, study, trial, search_space)

    def _sample(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.sample_space(study, trial, search_space)


def tpe_candidates(
    sampler: optuna.samplers.TPESampler,
    study: optuna.Study,
    trial: FrozenTrial,
    search_space: dict[str, BaseDistribution],
    *,
    sets: int,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``sets`` times ``n_ei_candidates`` candidates from one fit of Optuna's TPE, with their
    acquisition values (internal representation, in the order drawn).

    Optuna's own ``_sample`` step for ``trial`` (the same trials and liars, split, densities and
    random draws), asked for ``sets`` times as many candidates; with ``sets=1``, the best of
    them is exactly what ``TPESampler`` samples. Not reentrant for one sampler (nor is
    Optuna's TPE, which keeps the last search space group on the sampler).
    """
    n = sampler._n_ei_candidates * sets
    captured: list[tuple[dict[str, np.ndarray], np.ndarray]] = []
    upstream = type(sampler)._compute_acquisition_func  # the class's (a subclass may refine it)

    def capture(samples: dict[str, np.ndarray], mpe_below: Any, mpe_above: Any) -> np.ndarray:
        acquisition = upstream(sampler, samples, mpe_below, mpe_above)
        captured.append((samples, acquisition))
        return acquisition

    with _tpe_lock:
        saved = sampler._n_ei_candidates
        sampler._n_ei_candidates = n
        sampler._compute_acquisition_func = capture  # type: ignore[method-assign]  # for this call, under the lock
        try:
            optuna.samplers.TPESampler._sample(sampler, study, trial, search_space)
        finally:
            del sampler._compute_acquisition_func
            sampler._n_ei_candidates = saved
    if len(captured) != 1 or np.shape(captured[0][1]) != (n,):
        raise RuntimeError(
            f"optuna {optuna.__version__}: TPESampler._sample no longer draws its n_ei_candidates and scores them "
            f"with _compute_acquisition_func once; studies/_optuna_compat/ must follow it."
        )
    return captured[0]


def tpe_search_space_group(sampler: optuna.samplers.TPESampler) -> Any:
    """The parameter groups ``infer_relative_search_space`` left on the sampler (``group=True``)
    for ``sample_relative`` to iterate."""
    return sampler._search_space_group


def set_tpe_search_space_group(sampler: optuna.samplers.TPESampler, group: Any) -> None:
    """Put back the groups of a remembered ``infer_relative_search_space``."""
    sampler._search_space_group = group


# -- TPE's truncated normal: a vectorized log Phi ---------------------------------------------------

_ndtr_lock = threading.Lock()
_ndtr_depth = 0
_ndtr_original: Any = None


@contextmanager
def vectorized_log_ndtr() -> Iterator[None]:
    """Inside, TPE's truncated normal uses scipy's ``log_ndtr``.

    Optuna's ``_truncnorm._log_ndtr`` evaluates log Phi element by element in Python
    (``np.frompyfunc``); it is called for every kernel and candidate, and ~20 times per
    sample by the Newton iterations of the inverse CDF: most of TPE's time once candidates
    number in the hundreds. scipy's is the same function vectorized (equal to 1e-7, more
    accurate in the far tail). Module-wide while any thread is inside (reentrant, counted
    under a lock); Optuna's own is back when the last one leaves. docs/upstream.md has the gain.
    """
    global _ndtr_depth, _ndtr_original
    from optuna.samplers._tpe import _truncnorm
    from scipy.special import log_ndtr

    with _ndtr_lock:
        if _ndtr_depth == 0:
            _ndtr_original = _truncnorm._log_ndtr
            _truncnorm._log_ndtr = log_ndtr
        _ndtr_depth += 1
    try:
        yield
    finally:
        with _ndtr_lock:
            _ndtr_depth -= 1
            if _ndtr_depth == 0:
                _truncnorm._log_ndtr = _ndtr_original
                _ndtr_original = None


def optuna_log_ndtr(x: np.ndarray) -> np.ndarray:
    """Optuna's own log Phi (outside :func:`vectorized_log_ndtr`): the reference it must equal."""
    from optuna.samplers._tpe import _truncnorm

    with _ndtr_lock:
        f = _ndtr_original if _ndtr_depth else _truncnorm._log_ndtr
    return f(x)
