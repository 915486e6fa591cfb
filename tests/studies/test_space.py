"""The search space: conditional parameters, fixed values, grids, samplers and pruners."""

from __future__ import annotations

import itertools

import optuna
import pytest

from studies.search.samplers import check_plugin, make_pruner, make_sampler
from studies.sweep.config import PluginSpec
from studies.sweep.space import Choice, Range, SearchSpace, Subsets


def _space(**searched):
    return SearchSpace(fixed={"epochs": 7, "optimizer": "adam"}, searched=searched)


def test_hidden_units_are_suggested_per_layer_and_regularization_rate_only_when_used():
    space = _space(
        hidden_layers=Range(0, 3, integer=True),
        hidden_units=Range(2, 64, log=True, integer=True),
        regularization=Choice(("none", "l1", "l2")),
        regularization_rate=Range(1e-5, 1.0, log=True),
        learning_rate=Range(1e-4, 10.0, log=True),
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_layers, seen_reg = set(), set()
    for _ in range(40):
        trial = study.ask()
        args = space.suggest(trial)
        n = trial.params["hidden_layers"]
        assert len(args.hidden) == n
        assert {k for k in trial.params if k.startswith("hidden_units_")} == {f"hidden_units_{i + 1}" for i in range(n)}
        assert ("regularization_rate" in trial.params) == (args.regularization != "none")
        assert args.l1 == (args.regularization_rate if args.regularization == "l1" else 0.0)
        assert args.epochs == 7 and args.optimizer == "adam" and args.batch_size == 10  # fixed and default
        seen_layers.add(n)
        seen_reg.add(args.regularization)
        study.tell(trial, 0.0)
    assert seen_layers == {0, 1, 2, 3} and seen_reg == {"none", "l1", "l2"}


def test_from_params_rebuilds_the_arguments():
    space = _space(hidden_layers=Range(1, 2, integer=True), hidden_units=Range(2, 8, integer=True))
    args = space.from_params({"hidden_layers": 2, "hidden_units_1": 5, "hidden_units_2": 3})
    assert args.hidden == (5, 3) and args.label(4).startswith("t4 tanh 5-3 lr=0.03")


def test_run_names_say_what_the_trial_is():
    space = _space(hidden_layers=Range(1, 2, integer=True), hidden_units=Range(2, 64, integer=True))
    args = space.from_params({"hidden_layers": 2, "hidden_units_1": 16, "hidden_units_2": 16})
    assert args.label(12) == "t12 tanh 2x16 lr=0.03"


def test_grid_needs_finite_ranges():
    space = _space(
        activation=Choice(("relu", "tanh")),
        hidden_units=Range(2, 4, integer=True),
        learning_rate=Range(0.1, 0.3, step=0.1),
    )
    grid = space.grid()
    assert grid["activation"] == ["relu", "tanh"] and grid["hidden_units_1"] == [2, 3, 4]
    assert grid["learning_rate"] == pytest.approx([0.1, 0.2, 0.3])
    assert space.grid_size() == 18
    with pytest.raises(ValueError, match="'search.learning_rate' is a continuous range"):
        _space(learning_rate=Range(0.1, 1.0)).grid()


@pytest.mark.parametrize("name", ["tpe", "random", "cmaes", "qmc", "grid", "nsgaii"])
def test_every_sampler_runs_the_space(name):
    """Every sampler proposes values of the space, well past its random start-up; the model-
    based ones (TPE, CMA-ES) then concentrate near the optimum (a learning rate of 0.1)."""
    import math

    space = _space(
        learning_rate=Range(1e-4, 10.0, log=True) if name != "grid" else Choice(tuple(10.0**e for e in range(-4, 2))),
        activation=Choice(("relu", "tanh")),
    )
    options = {
        "tpe": (("n_startup_trials", 10),),
        "cmaes": (("n_startup_trials", 10),),
        "nsgaii": (("population_size", 8),),
    }.get(name, ())
    sampler = make_sampler(PluginSpec(name, options), seed=1, space=space)
    study = optuna.create_study(sampler=sampler)
    n = 6 * 2 if name == "grid" else 40
    for _ in range(n):
        trial = study.ask()
        args = space.suggest(trial)
        assert 1e-4 <= args.learning_rate <= 10.0 and args.activation in ("relu", "tanh")
        study.tell(trial, abs(math.log10(args.learning_rate) + 1) + (0.5 if args.activation == "tanh" else 0.0))
    values = [t.value for t in study.trials]
    assert len(values) == n
    if name in ("tpe", "cmaes"):
        first, last = sorted(values[:10]), sorted(values[-10:])
        assert last[5] < first[5] / 2, (first, last)  # the model's proposals beat the random start-up's
        assert study.best_value < 0.2


@pytest.mark.parametrize("name", ["median", "percentile", "hyperband", "successive_halving", "none"])
def test_every_pruner_is_made(name):
    options = (("percentile", 25.0),) if name == "percentile" else ()
    spec = PluginSpec(name, options)
    check_plugin("pruner", spec)
    assert isinstance(make_pruner(spec), optuna.pruners.BasePruner)


def test_plugin_errors():
    with pytest.raises(
        ValueError, match=r"'sampler.name' must be one of \['cmaes', 'grid', 'nsgaii', 'qmc', 'random', 'tpe'\]"
    ):
        check_plugin("sampler", PluginSpec("bohb"))
    with pytest.raises(ValueError, match=r"'pruner.reduction_factor' must be an integer >= 2, but got 1"):
        check_plugin("pruner", PluginSpec("hyperband", (("reduction_factor", 1),)))
    with pytest.raises(ValueError, match="unknown key 'sampler.seed' for sampler 'random' \\(it takes no options\\)"):
        check_plugin("sampler", PluginSpec("random", (("seed", 3),)))


def test_features_are_searched_one_yes_no_parameter_per_family_at_least_one_on():
    space = _space(features=Subsets(("linear", "squares", "sines")))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(60):
        trial = study.ask()
        args = space.suggest(trial)
        assert set(trial.params) == {"features_linear", "features_squares", "features_sines"}
        on = tuple(f for f in ("linear", "squares", "sines") if trial.params[f"features_{f}"])
        assert args.features == (on or ("linear",))  # none on: the first family listed
        assert space.from_params(trial.params) == args  # a pure function of the recorded parameters
        seen.add(args.features)
        study.tell(trial, 0.0)
    assert len(seen) == 7  # every non-empty subset


def test_features_fall_back_to_the_first_family_listed():
    space = _space(features=Subsets(("squares", "sines")))
    args = space.from_params({"features_squares": False, "features_sines": False})
    assert args.features == ("squares",) and args.label(3).endswith(" in=squares")
    fixed = SearchSpace(fixed={"features": ["sines", "linear"]})
    assert fixed.from_params({}).features == ("linear", "sines")
    assert SearchSpace().from_params({}).features == ("linear",)
    assert SearchSpace().from_params({}).label(1) == "t1 tanh 1x8 lr=0.03"


def test_features_in_the_grid_and_in_words():
    space = _space(features=Subsets(("linear", "sines")), activation=Choice(("relu", "tanh")))
    grid = space.grid()
    assert grid["features_linear"] == grid["features_sines"] == [False, True]
    assert space.grid_size() == 8
    assert space.describe_features() == "searched: each of linear, sines on or off (at least one)"
    assert SearchSpace(fixed={"features": ["sines", "squares"]}).describe_features() == "squares+sines"
    assert SearchSpace().describe_features() == "linear"
    assert space.to_dict()["search"]["features"] == {"subsets": ["linear", "sines"]}


@pytest.mark.parametrize("name", ["tpe", "random", "cmaes", "qmc", "grid"])
def test_every_sampler_searches_features(name):
    space = _space(features=Subsets(("linear", "squares", "products", "sines")))
    study = optuna.create_study(sampler=make_sampler(PluginSpec(name), seed=1, space=space))
    for _ in range(6):
        trial = study.ask()
        args = space.suggest(trial)
        assert args.features and set(args.features) <= {"linear", "squares", "products", "sines"}
        study.tell(trial, float(len(args.features)))
    assert len(study.trials) == 6


def test_the_grid_is_counted_from_the_bounds_without_building_it():
    small = _space(
        hidden_layers=Range(1, 2, integer=True),
        hidden_units=Range(2, 5, integer=True),
        learning_rate=Range(0.1, 0.5, step=0.1),
        features=Subsets(("linear", "squares")),
        activation=Choice(("relu", "tanh", "sigmoid")),
    )
    grid = small.grid()
    assert small.grid_size() == len(list(itertools.product(*grid.values())))
    assert small.grid_params() == len(grid)
    # 10**12 + 1 values: a list of them would take terabytes; the count is a number at once.
    huge = _space(learning_rate=Range(0.0, 1.0, step=1e-12), hidden_units=Range(1, 10**6, integer=True))
    assert huge.grid_size() == (10**12 + 1) * 10**6
    with pytest.raises(ValueError, match="'search.learning_rate' is a continuous range"):
        _space(learning_rate=Range(1e-3, 1.0, log=True)).grid_size()
