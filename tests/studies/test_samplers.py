"""The sampler and pruner tables' own classes: batched TPE, the cached percentile pruner."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.samplers._tpe import _truncnorm
from optuna.trial import TrialState, create_trial

from studies import PluginSpec, make_pruner, make_sampler
from studies.samplers import BatchTPESampler, batch_of, pruner_startup
from sweeps.spec import load_spec

SPACE = load_spec("playground").space


def _study(sampler: optuna.samplers.BaseSampler, n_done: int = 30) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    rng = np.random.default_rng(1)
    for _ in range(n_done):
        trial = study.ask()
        args = SPACE.suggest(trial)
        study.tell(trial, float(abs(np.log10(args.learning_rate) + 1) + rng.normal(0, 0.1)))
    return study


def _batch(seed: int, k: int) -> list[dict]:
    sampler = make_sampler(PluginSpec("tpe"), seed=seed, space=SPACE)
    study = _study(sampler)
    trials = [study.ask() for _ in range(k)]
    with batch_of(study.sampler, k):
        for t in trials:
            SPACE.suggest(t)
    return [t.params for t in trials]


def test_a_batch_is_sampled_from_one_fit_and_reproducibly(monkeypatch):
    fits = []
    original = BatchTPESampler._candidates
    monkeypatch.setattr(BatchTPESampler, "_candidates", lambda self, *a: fits.append(1) or original(self, *a))
    first = _batch(seed=3, k=8)
    groups = len(fits)
    assert 1 <= groups <= 6  # once per parameter group, not once per trial
    assert _batch(seed=3, k=8) == first
    assert len({tuple(sorted(p.items())) for p in first}) == 8  # each trial its own draw
    for p in first:
        assert 1e-3 <= p["learning_rate"] <= 10.0 and p["activation"] in ("sigmoid", "tanh", "relu")


def test_tpe_samples_with_a_vectorized_log_ndtr_only_while_it_samples():
    original = _truncnorm._log_ndtr
    x = np.linspace(-40, 10, 501)
    from scipy.special import log_ndtr

    np.testing.assert_allclose(log_ndtr(x), original(x), rtol=1e-7)  # the same function
    seen = []
    sampler = make_sampler(PluginSpec("tpe"), seed=0, space=SPACE)
    study = _study(sampler, n_done=12)
    patched = sampler._sample

    def spy(*args, **kw):
        seen.append(_truncnorm._log_ndtr)
        return patched(*args, **kw)

    sampler._sample = spy
    SPACE.suggest(study.ask())
    assert seen and all(f is log_ndtr for f in seen)
    assert _truncnorm._log_ndtr is original


@pytest.mark.parametrize("spec", [PluginSpec("median", (("n_startup_trials", 3), ("n_warmup_steps", 2))),
                                  PluginSpec("percentile", (("percentile", 25.0), ("interval_steps", 2))),
                                  PluginSpec("percentile", (("percentile", 75.0), ("n_min_trials", 4)))])
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_cached_percentile_pruner_decides_as_optunas(spec, direction):
    opts = dict(spec.options)
    theirs = (optuna.pruners.MedianPruner(**opts) if spec.name == "median"
              else optuna.pruners.PercentilePruner(**opts))
    ours = make_pruner(spec)
    rng = np.random.default_rng(0)
    study = optuna.create_study(direction=direction)
    decisions = asked = 0
    for n in range(40):
        running = [{s: float(v) for s, v in enumerate(rng.normal(0, 1, rng.integers(1, 12)))} for _ in range(5)]
        for values in running:  # several trials ask at the same step and the same complete set
            frozen = create_trial(state=TrialState.RUNNING, intermediate_values=values)
            assert ours.prune(study, frozen) == theirs.prune(study, frozen)
            decisions += theirs.prune(study, frozen)
            asked += 1
        if n % 3 == 0:
            values = {s: float(v) for s, v in enumerate(rng.normal(0, 1, 12))}
            if n % 9 == 0:
                values[4] = float("nan")
            study.add_trial(create_trial(value=values[11], intermediate_values=values))
        else:
            study.add_trial(create_trial(state=TrialState.PRUNED, intermediate_values={0: 0.0}))
    assert 0 < decisions < asked  # the comparison covered pruned and kept trials


def test_pruner_startup_is_what_the_pruner_needs_complete():
    assert pruner_startup(PluginSpec("median")) == 5
    assert pruner_startup(PluginSpec("median", (("n_startup_trials", 0),))) == 1
    assert pruner_startup(PluginSpec("percentile", (("percentile", 10.0), ("n_min_trials", 8)))) == 8
    assert pruner_startup(PluginSpec("successive_halving")) == 0
    assert pruner_startup(PluginSpec("none")) == 0
