"""The sampler and pruner tables' own classes: batched TPE, the cached percentile pruner.

Both re-use Optuna's own logic; these tests hold them to it: the batched TPE proposes what
Optuna's ``TPESampler`` proposes (batch of one, or outside a batch), and the pruner decides
as Optuna's ``PercentilePruner`` and ``MedianPruner``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from contextlib import nullcontext

import numpy as np
import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState, create_trial

from studies import _optuna_compat as compat
from studies.search.samplers import BatchTPESampler, batch_of, make_pruner, make_sampler, pruner_startup
from studies.sweep.config import PluginSpec
from sweeps.spec import spec_from_dict

# The playground's space as it was when these histories were chosen (the preset may change):
# conditional units per layer and a rate only with a regularization.
SPACE = spec_from_dict(
    {
        "name": "tpe",
        "datasets": ["circle"],
        "search": {
            "learning_rate": {"low": 1e-3, "high": 10.0, "log": True},
            "hidden_layers": {"low": 1, "high": 3},
            "hidden_units": {"low": 2, "high": 8},
            "activation": ["sigmoid", "tanh", "relu"],
            "regularization": ["none", "l1", "l2"],
            "regularization_rate": {"low": 1e-5, "high": 0.1, "log": True},
        },
    }
).space
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _score(params: dict) -> float:
    """A deterministic objective of the parameters (the same parameters, the same value)."""
    x = abs(np.log10(params["learning_rate"]) + 1) + 0.1 * params["hidden_layers"]
    x += {"sigmoid": 0.3, "tanh": 0.0, "relu": 0.1}[params["activation"]]
    return float(x + 0.05 * sum(v for k, v in params.items() if k.startswith("hidden_units_")) / 8)


def _history(seed: int, *, n: int = 30, running: int = 3, direction: str = "minimize") -> list[FrozenTrial]:
    """``n`` finished trials of the playground's conditional space (every fifth pruned, with
    reports) and ``running`` trials of other workers in flight, with their parameters."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed), direction=direction)
    rng = np.random.default_rng(seed)
    for i in range(n + running):
        trial = study.ask()
        SPACE.suggest(trial)
        if i >= n:
            continue
        value = _score(trial.params) + float(rng.normal(0, 0.1))
        if i % 5 == 4:
            for step in range(int(rng.integers(1, 4))):
                trial.report(value + 1.0 / (step + 1), step)
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, value)
    return study.get_trials(deepcopy=True)


def _propose(
    sampler: optuna.samplers.BaseSampler,
    history: list[FrozenTrial],
    *,
    direction: str = "minimize",
    rounds: int = 4,
    together: int = 3,
    batch: bool = False,
) -> list[dict]:
    """Asks ``together`` trials at a time (so the earlier ones are running, with parameters,
    while the later ones sample), suggests each (each inside ``batch(1)`` if ``batch``), then
    tells them all; returns every proposal in order."""
    study = optuna.create_study(sampler=sampler, direction=direction)
    study.add_trials(history)
    out = []
    for _ in range(rounds):
        trials = [study.ask() for _ in range(together)]
        for t in trials:
            with sampler.batch(1) if batch else nullcontext():
                SPACE.suggest(t)
            out.append(dict(t.params))
        for t in trials:
            study.tell(t, _score(t.params))
    return out


def _tpe(cls: type, **kw) -> optuna.samplers.TPESampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return cls(**kw)


OPTIONS = [
    pytest.param(dict(multivariate=True, group=True, constant_liar=True), id="grouped-liar"),  # the sweep's default
    pytest.param(dict(multivariate=True, group=True, constant_liar=False), id="grouped"),
    pytest.param(dict(multivariate=True, constant_liar=True), id="multivariate-liar"),
    pytest.param(dict(multivariate=False, constant_liar=True), id="independent-liar"),
    pytest.param(dict(multivariate=False, constant_liar=False, n_ei_candidates=7), id="independent"),
]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
@pytest.mark.parametrize("batch", [False, True], ids=["outside-a-batch", "batch-of-1"])
def test_batched_tpe_proposes_what_optunas_tpe_proposes(options, direction, batch):
    history = _history(seed=7, direction=direction)
    kw = dict(seed=11, n_startup_trials=5, **options)
    ours = _propose(_tpe(BatchTPESampler, **kw), history, direction=direction, batch=batch)
    with compat.vectorized_log_ndtr():  # what ours samples with (the same numbers to 1e-7, tested apart)
        theirs = _propose(_tpe(optuna.samplers.TPESampler, **kw), history, direction=direction)
    assert ours == theirs
    assert len({json.dumps(p, sort_keys=True) for p in theirs}) == len(theirs)  # TPE at work, not a constant
    assert any("regularization_rate" in p for p in theirs)  # conditional: only with regularization
    assert not all("regularization_rate" in t.params for t in history)


def test_make_sampler_tpe_is_optunas_multivariate_grouped_tpe_with_constant_liar():
    history = _history(seed=2)
    ours = _propose(make_sampler(PluginSpec("tpe", (("n_startup_trials", 5),)), seed=4, space=SPACE), history)
    with compat.vectorized_log_ndtr():
        theirs = _propose(
            _tpe(
                optuna.samplers.TPESampler,
                seed=4,
                n_startup_trials=5,
                multivariate=True,
                group=True,
                constant_liar=True,
            ),
            history,
        )
    assert ours == theirs


def test_the_vectorized_log_ndtr_changes_no_proposal_beyond_rounding():
    """Against Optuna's TPE as it is (its own log Phi): the same choices, floats to 1e-6."""
    history = _history(seed=5)
    kw = dict(seed=3, n_startup_trials=5, multivariate=True, group=True, constant_liar=True)
    ours = _propose(_tpe(BatchTPESampler, **kw), history)
    theirs = _propose(_tpe(optuna.samplers.TPESampler, **kw), history)
    assert [sorted(p) for p in ours] == [sorted(p) for p in theirs]
    for a, b in zip(ours, theirs):
        for name in a:
            if isinstance(a[name], float):
                assert a[name] == pytest.approx(b[name], rel=1e-6), name
            else:
                assert a[name] == b[name], name


@pytest.mark.parametrize("constant_liar", [True, False])
def test_the_current_trial_is_not_its_own_constant_liar(constant_liar):
    """Optuna 5.0's TPE leaves the trial being sampled out of the running trials it lies
    about. Sampled directly (public sampler API) for a running trial that already has
    parameters, ours proposes what Optuna's proposes whatever those parameters are, and a
    liar at the proposal (another running trial there) would have moved it."""
    history = _history(seed=9, running=0)
    kw = dict(seed=1, n_startup_trials=5, multivariate=True, constant_liar=constant_liar)
    dists = history[-1].distributions

    def sample(cls: type, current: dict, *, liar: dict | None = None, batch: bool = False) -> dict:
        sampler = _tpe(cls, **kw)
        study = optuna.create_study(sampler=sampler)
        study.add_trials(history)
        for params in (liar, current):
            if params is not None:
                study.add_trial(
                    create_trial(state=TrialState.RUNNING, params=params, distributions={k: dists[k] for k in params})
                )
        trial = study.get_trials(deepcopy=False)[-1]
        with compat.vectorized_log_ndtr(), sampler.batch(1) if batch else nullcontext():
            space = sampler.infer_relative_search_space(study, trial)
            out = sampler.sample_relative(study, trial, space)
            out["lr"] = sampler.sample_independent(study, trial, "learning_rate", dists["learning_rate"])
        return out

    theirs = sample(optuna.samplers.TPESampler, history[-1].params)
    proposal = {k: v for k, v in theirs.items() if k != "lr"}
    assert sample(optuna.samplers.TPESampler, proposal) == theirs  # its own parameters play no part
    assert sample(BatchTPESampler, history[-1].params) == theirs
    assert sample(BatchTPESampler, proposal) == theirs
    assert sample(BatchTPESampler, proposal, batch=True) == theirs
    if constant_liar:  # the test can tell: a liar at the proposal moves it
        assert sample(optuna.samplers.TPESampler, {}, liar=proposal) != theirs


def _batch(seed: int, k: int, spy: list | None = None) -> list[dict]:
    sampler = make_sampler(PluginSpec("tpe", (("n_startup_trials", 5),)), seed=seed, space=SPACE)
    study = optuna.create_study(sampler=sampler)
    study.add_trials(_history(seed=seed, running=2))
    trials = [study.ask() for _ in range(k)]
    with batch_of(study.sampler, k):
        for t in trials:
            SPACE.suggest(t)
    return [dict(t.params) for t in trials]


def test_a_batch_takes_each_trials_best_of_its_own_candidates_from_one_fit(monkeypatch):
    fits = []
    original = compat.tpe_candidates

    def spy(sampler, study, trial, space, *, sets):
        samples, acquisition = original(sampler, study, trial, space, sets=sets)
        fits.append((dict(space), sets, samples, acquisition))
        return samples, acquisition

    monkeypatch.setattr(compat, "tpe_candidates", spy)
    k = 8
    params = _batch(seed=3, k=k)
    # One fit per parameter group (the always-present parameters, each conditional one), not per trial.
    assert 2 <= len(fits) <= 5 and all(sets == k for _, sets, _, _ in fits)
    names = [set(space) for space, _, _, _ in fits]
    assert all(a.isdisjoint(b) for i, a in enumerate(names) for b in names[i + 1 :])
    n = 24  # Optuna's default n_ei_candidates
    checked = 0
    for space, _, samples, acquisition in fits:
        assert len(acquisition) == k * n
        for j, p in enumerate(params):  # trial j took the best of the j-th set of n
            best = j * n + int(np.argmax(acquisition[j * n : (j + 1) * n]))
            for name, dist in space.items():
                if name in p:
                    assert p[name] == dist.to_external_repr(samples[name][best].item()), (j, name)
                    checked += 1
    assert checked >= 5 * k  # every trial's always-present parameters at least
    assert len({json.dumps(p, sort_keys=True) for p in params}) == k  # each trial its own draw
    for p in params:
        assert 1e-3 <= p["learning_rate"] <= 10.0 and p["activation"] in ("sigmoid", "tanh", "relu")


def test_a_batch_is_reproducible_in_a_new_process():
    here = _batch(seed=3, k=6)
    assert _batch(seed=3, k=6) == here
    assert _batch(seed=4, k=6) != here
    code = "import json; from tests.studies.test_samplers import _batch; print(json.dumps(_batch(seed=3, k=6)))"
    env = {**os.environ, "PYTHONPATH": ROOT, "PYTHONHASHSEED": "123"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == json.loads(json.dumps(here))


def test_more_asks_than_announced_get_a_fit_of_their_own(monkeypatch):
    batch_fits, steps = [], []
    original_fit, original_step = compat.tpe_candidates, optuna.samplers.TPESampler._sample
    monkeypatch.setattr(compat, "tpe_candidates", lambda *a, **kw: batch_fits.append(1) or original_fit(*a, **kw))
    monkeypatch.setattr(optuna.samplers.TPESampler, "_sample", lambda *a: steps.append(1) or original_step(*a))
    sampler = _tpe(BatchTPESampler, seed=0, n_startup_trials=5, multivariate=True, group=True)
    study = optuna.create_study(sampler=sampler)
    study.add_trials(_history(seed=1, running=0))
    trials = [study.ask() for _ in range(3)]
    with sampler.batch(2):
        for t in trials[:2]:
            SPACE.suggest(t)
        assert len(steps) == len(batch_fits) >= 1  # the first two: one of Optuna's steps per group
        SPACE.suggest(trials[2])
    assert len(steps) == 2 * len(batch_fits)  # the third: Optuna's own step again, per group
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 3


def _two_objectives(params: dict) -> list[float]:
    """The score and a network size: the two conflict (bigger networks score better here)."""
    size = sum(v for k, v in params.items() if k.startswith("hidden_units_"))
    return [_score(params) - 0.02 * size, float(size)]


def _history_multi(seed: int, *, n: int = 30, running: int = 3) -> list[FrozenTrial]:
    """``n`` finished trials of a two-objective study (every fifth diverged: PRUNED without
    values or reports, as the sweep records it) and ``running`` trials in flight."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed), directions=["minimize"] * 2)
    for i in range(n + running):
        trial = study.ask()
        SPACE.suggest(trial)
        if i >= n:
            continue
        if i % 5 == 4:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, _two_objectives(trial.params))
    return study.get_trials(deepcopy=True)


def _propose_multi(sampler, history, *, batch: int = 0, rounds: int = 3, together: int = 4) -> list[dict]:
    study = optuna.create_study(sampler=sampler, directions=["minimize"] * 2)
    study.add_trials(history)
    out = []
    for _ in range(rounds):
        trials = [study.ask() for _ in range(together)]
        with sampler.batch(batch) if batch else nullcontext():
            for t in trials:
                SPACE.suggest(t)
        out += [dict(t.params) for t in trials]
        for t in trials:
            study.tell(t, _two_objectives(t.params))
    return out


@pytest.mark.parametrize("options", OPTIONS[:3])
def test_batched_tpe_with_two_objectives_proposes_what_optunas_tpe_proposes(options):
    # Several objectives: TPE splits the trials by non-domination rank (and hypervolume), and
    # weighs the "below" ones alike; one at a time, ours proposes exactly what Optuna's does.
    history = _history_multi(seed=5)
    kw = dict(seed=13, n_startup_trials=5, **options)
    ours = _propose_multi(_tpe(BatchTPESampler, **kw), history, batch=1, together=1, rounds=8)
    with compat.vectorized_log_ndtr():
        theirs = _propose_multi(_tpe(optuna.samplers.TPESampler, **kw), history, together=1, rounds=8)
    assert ours == theirs
    assert len({json.dumps(p, sort_keys=True) for p in theirs}) == len(theirs)


def test_a_batch_with_two_objectives_fits_once_and_proposes_each_trial_its_own(monkeypatch):
    fits = []
    original = compat.tpe_candidates
    monkeypatch.setattr(compat, "tpe_candidates", lambda *a, **kw: fits.append(kw["sets"]) or original(*a, **kw))
    sampler = make_sampler(PluginSpec("tpe", (("n_startup_trials", 5),)), seed=2, space=SPACE)
    params = _propose_multi(sampler, _history_multi(seed=6), batch=6, together=6, rounds=2)
    assert fits and all(sets == 6 for sets in fits)
    assert len(fits) <= 2 * 5  # per batch, one fit per parameter group, not one per trial
    assert len({json.dumps(p, sort_keys=True) for p in params}) == len(params) == 12
    for p in params:
        assert 1e-3 <= p["learning_rate"] <= 10.0 and 1 <= p["hidden_layers"] <= 3
        assert sorted(k for k in p if k.startswith("hidden_units_")) == [
            f"hidden_units_{i + 1}" for i in range(p["hidden_layers"])
        ]


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "2"])
def test_batch_size_must_be_a_positive_integer(size):
    sampler = _tpe(BatchTPESampler, seed=0)
    with pytest.raises(ValueError, match=r"'size' must be an integer >= 1, but got"):
        with sampler.batch(size):
            pass


PRUNER_SPECS = [
    PluginSpec("median"),
    PluginSpec("median", (("n_startup_trials", 3), ("n_warmup_steps", 2))),
    PluginSpec("median", (("n_startup_trials", 0), ("interval_steps", 3), ("n_warmup_steps", 1))),
    PluginSpec("percentile", (("percentile", 25.0), ("interval_steps", 2))),
    PluginSpec("percentile", (("percentile", 75.0), ("n_min_trials", 4))),
    PluginSpec("percentile", (("percentile", 0),)),
    PluginSpec("percentile", (("percentile", 90), ("n_warmup_steps", 5), ("interval_steps", 2))),
]


def _decide(pruner: optuna.pruners.BasePruner, study: optuna.Study, trial: FrozenTrial) -> tuple[bool, list]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decision = pruner.prune(study, trial)
    return decision, [(w.category, str(w.message)) for w in caught]


@pytest.mark.parametrize("spec", PRUNER_SPECS, ids=lambda s: f"{s.name}{dict(s.options)}")
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_cached_percentile_pruner_decides_as_optunas(spec, direction):
    opts = dict(spec.options)
    theirs = optuna.pruners.MedianPruner(**opts) if spec.name == "median" else optuna.pruners.PercentilePruner(**opts)
    ours = make_pruner(spec)
    rng = np.random.default_rng(0)
    study = optuna.create_study(direction=direction)
    decisions = asked = 0
    for n in range(40):
        running = [
            {s: float(v) for s, v in enumerate(rng.normal(rng.uniform(-1, 2), 1, rng.integers(1, 12)))}
            for _ in range(5)
        ]  # some clearly worse than the complete trials, some better
        running[0] = {s: v for s, v in running[0].items() if s % 2 == 0}  # steps skipped
        if len(running[1]) > 2:
            running[1][1] = float("nan")  # a NaN among numbers
        for values in running:  # several trials ask at the same step and the same complete set
            frozen = create_trial(state=TrialState.RUNNING, intermediate_values=values)
            decision, warned = _decide(theirs, study, frozen)
            mine, mine_warned = _decide(ours, study, frozen)
            # The same decision; numpy's warnings (a step where every complete value is NaN) at
            # most as Optuna's: the remembered percentile warns once, not at every ask.
            assert mine == decision and set(mine_warned) <= set(warned)
            decisions += decision
            asked += 1
        if n % 3 == 0:
            values = {s: float(v) for s, v in enumerate(rng.normal(0, 1, 12))}
            if n % 9 == 0:
                values[4] = float("nan")
            study.add_trial(create_trial(value=values[11], intermediate_values=values))
        else:
            study.add_trial(create_trial(state=TrialState.PRUNED, intermediate_values={0: 0.0}))
    assert 0 < decisions < asked  # the comparison covered pruned and kept trials


def test_the_pruners_options_are_optunas_defaults_unless_given():
    assert make_pruner(PluginSpec("median")).options == dict(
        percentile=50.0, n_startup_trials=5, n_warmup_steps=0, interval_steps=1, n_min_trials=1
    )
    assert make_pruner(PluginSpec("percentile", (("percentile", 10.0), ("n_min_trials", 3)))).options == dict(
        percentile=10.0, n_startup_trials=5, n_warmup_steps=0, interval_steps=1, n_min_trials=3
    )


def test_pruner_startup_is_what_the_pruner_needs_complete():
    assert pruner_startup(PluginSpec("median")) == 5
    assert pruner_startup(PluginSpec("median", (("n_startup_trials", 0),))) == 1
    assert pruner_startup(PluginSpec("percentile", (("percentile", 10.0), ("n_min_trials", 8)))) == 8
    assert pruner_startup(PluginSpec("successive_halving")) == 0
    assert pruner_startup(PluginSpec("none")) == 0
