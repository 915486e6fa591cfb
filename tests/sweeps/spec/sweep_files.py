"""The sweep file the tests edit (``GOOD``), the mistakes every check must refuse (``BAD``),
and running a file through the command line, with the shape of a clean refusal: exit 2, one
line, nothing written."""

from __future__ import annotations

import os

from click.testing import CliRunner

from sweeps.cli import cli

GOOD = """
name = "demo"
datasets = ["circle", "xor"]
trials = 4
jobs = 1
seed = 0
objective = "val_cost"

[train]
epochs = 3
batch_size = 10
optimizer = "sgd"

[search]
learning_rate = { low = 1e-4, high = 10.0, log = true }
hidden_layers = { low = 1, high = 3 }
hidden_units = { low = 2, high = 64, log = true }
activation = ["sigmoid", "tanh", "relu"]
regularization = ["none", "l1", "l2"]
regularization_rate = { low = 1e-5, high = 1.0, log = true }

[sampler]
name = "tpe"

[pruner]
name = "median"
"""


def edit(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


BAD = [
    (edit("trials = 4", "trails = 4"), "unknown key 'trails' (did you mean 'trials'?)"),
    (edit("trials = 4", 'trials = "ten"'), "'trials' must be an integer >= 1, but got 'ten'"),
    (edit("trials = 4", "trials = 0"), "'trials' must be an integer >= 1, but got 0"),
    (edit("jobs = 1", "jobs = 0"), "'jobs' must be an integer >= 1, but got 0"),
    (edit("epochs = 3", "epochs = 0"), "'train.epochs' must be an integer in [1, 100000], but got 0"),
    (edit("batch_size = 10", "batch_size = 2.5"), "'train.batch_size' must be an integer >= 1, but got 2.5"),
    (edit("low = 2, high = 64", "low = 0, high = 64"), "'search.hidden_units.low' must be an integer >= 1, but got 0"),
    (edit("low = 1e-4, high = 10.0", "low = 1.0, high = 0.1"), "`low <= high` must hold, but got (low=1.0, high=0.1)"),
    (edit("low = 1e-5, high = 1.0, log = true", "low = 0.0, high = 1.0, log = true"), "a log range needs `low > 0`"),
    (
        edit("low = 1e-5, high = 1.0, log = true", "low = 0.1, high = 1.0, log = true, step = 0.1"),
        "'step' and 'log' cannot be used together",
    ),
    (
        edit("low = 1e-4, high = 10.0, log = true", "low = 0.1, high = 1.0, step = 5.0"),
        "'search.learning_rate.step' must divide high - low = 0.9, but got 5.0 (Optuna would search only up to 0.1)",
    ),
    (
        edit("low = 2, high = 64, log = true", "low = 2, high = 64, step = 5"),
        "'search.hidden_units.step' must divide high - low = 62, but got 5 (Optuna would search only up to 62)",
    ),
    (
        edit('activation = ["sigmoid", "tanh", "relu"]', "activation = []"),
        "'search.activation' must be a non-empty list",
    ),
    (
        edit('activation = ["sigmoid", "tanh", "relu"]', 'activation = ["gelu"]'),
        "'search.activation' must be one of ['linear', 'relu', 'sigmoid', 'tanh'], but got 'gelu'",
    ),
    (
        edit('optimizer = "sgd"', 'optimizer = "rmsprop"'),
        "'train.optimizer' must be one of ['adam', 'momentum', 'sgd'], but got 'rmsprop'",
    ),
    (edit('datasets = ["circle", "xor"]', 'datasets = ["circle", "mnist"]'), "'datasets[1]': unknown dataset 'mnist'"),
    (edit('datasets = ["circle", "xor"]', "datasets = []"), "'datasets' must be a non-empty list"),
    (
        edit('name = "tpe"', 'name = "bayes"'),
        "'sampler.name' must be one of ['cmaes', 'grid', 'nsgaii', 'qmc', 'random', 'tpe'], but got 'bayes'",
    ),
    (
        edit('name = "median"', 'name = "early"'),
        "'pruner.name' must be one of ['hyperband', 'median', 'none', 'percentile', 'successive_halving'], "
        "but got 'early'",
    ),
    (
        edit('name = "tpe"', 'name = "tpe"\nn_startup_trials = -1'),
        "'sampler.n_startup_trials' must be an integer >= 0, but got -1",
    ),
    (edit('name = "median"', 'name = "median"\npatience = 3'), "unknown key 'pruner.patience' for pruner 'median'"),
    (
        edit('name = "tpe"', 'name = "grid"'),
        "sampler 'grid' needs every [search] entry to be a list or a range with a 'step'",
    ),
    (
        edit('objective = "val_cost"', 'objective = "accuracy"'),
        "'objective' must be one of ['parameters', 'train_seconds', 'val_accuracy', 'val_cost'] or a list "
        "of several of them, but got 'accuracy'",
    ),
    *[
        (edit('objective = "val_cost"', f"objective = {v}"), m)
        for v, m in [
            (
                '["val_cost", "size"]',
                "'objective[1]' must be one of ['parameters', 'train_seconds', 'val_accuracy', "
                "'val_cost'], but got 'size'",
            ),
            ('["val_cost", "parameters", "val_cost"]', "'objective' lists 'val_cost' twice; list each objective once"),
            (
                "[]",
                "'objective' must be one of ['parameters', 'train_seconds', 'val_accuracy', 'val_cost'] or a list of "
                "several of them, but got []",
            ),
            (
                "3",
                "'objective' must be one of ['parameters', 'train_seconds', 'val_accuracy', 'val_cost'] or a list of "
                "several of them, but got 3",
            ),
            (
                '"parameters"',
                "'objective' = 'parameters' alone is minimized by the smallest or fastest network, whatever "
                "it learns: a single objective must be one of ['val_accuracy', 'val_cost']; list it beside "
                "one to trade them off, e.g. ['val_cost', 'parameters']",
            ),
            ('["parameters"]', "a single objective must be one of ['val_accuracy', 'val_cost']"),
            (
                '["train_seconds", "parameters"]',
                "'objective' = ['train_seconds', 'parameters'] needs one of "
                "['val_accuracy', 'val_cost'] among its objectives",
            ),
            (
                '["val_cost", "parameters"]',
                "pruner 'median': Optuna's pruners support one objective, but 'objective' "
                'lists 2; set [pruner] name = "none" or leave [pruner] out (a diverging '
                "trial still stops at once)",
            ),
        ]
    ],
    (
        edit('objective = "val_cost"', 'objective = ["val_cost", "parameters"]').replace(
            'name = "tpe"', 'name = "cmaes"'
        ),
        "sampler 'cmaes' supports one objective, but 'objective' lists 2; with several use one of ['grid', 'nsgaii', "
        "'qmc', 'random', 'tpe'] ('tpe' or 'nsgaii' learn from the trials)",
    ),
    (
        edit('datasets = ["circle", "xor"]', 'datasets = ["circle", "diabetes"]')
        .replace('objective = "val_cost"', 'objective = ["parameters", "val_accuracy"]')
        .replace('name = "median"', 'name = "none"'),
        "'val_accuracy' needs classification datasets",
    ),
    (
        edit('name = "tpe"', 'name = "nsgaii"\npopulation_size = 1'),
        "'sampler.population_size' must be an integer >= 2, but got 1",
    ),
    (
        edit('name = "tpe"', 'name = "nsgaii"\nmutation_prob = 1.5'),
        "'sampler.mutation_prob' must be a number in [0, 1], but got 1.5",
    ),
    (
        edit('name = "tpe"', 'name = "nsgaii"\ngenerations = 3'),
        "unknown key 'sampler.generations' for sampler 'nsgaii' (allowed: ['crossover_prob', "
        "'mutation_prob', 'population_size', 'swapping_prob'])",
    ),
    (edit('name = "demo"', 'name = "my sweep!"'), "'name' must be a plain name"),
    (edit('name = "demo"', 'name = "../escape"'), "'name' must be a plain name"),
    (
        edit("learning_rate =", "learning_rte ="),
        "unknown key 'search.learning_rte' (did you mean 'search.learning_rate'?)",
    ),
    (
        edit('optimizer = "sgd"', 'optimizer = "sgd"\nlearning_rate = 0.1'),
        "'learning_rate' is both fixed in [train] and searched in [search]",
    ),
    (edit("trials = 4", "trials = 4\nobjective2 = 1"), "unknown key 'objective2'"),
    (edit('datasets = ["circle", "xor"]', 'datasets = ["circle", "circle"]'), "dataset name 'circle' appears twice"),
    (
        edit('datasets = ["circle", "xor"]', 'datasets = ["circle", "diabetes"]').replace(
            'objective = "val_cost"', 'objective = "val_accuracy"'
        ),
        "'val_accuracy' needs classification datasets",
    ),
    (GOOD.replace('name = "demo"', "name = "), "TOML syntax error"),
    *[
        (GOOD + f"\n[mlflow]\n{v}\n", m)
        for v, m in [
            (
                "curve_points = 0",
                "'mlflow.curve_points' must be \"all\" or an integer from 1 to 100000 (points per curve "
                "in MLflow; the storage keeps every epoch), but got 0",
            ),
            ('curve_points = "some"', "'mlflow.curve_points' must be \"all\" or an integer from 1 to 100000"),
            ("curve_points = true", "'mlflow.curve_points' must be \"all\" or an integer from 1 to 100000"),
            ("curve_points = 2.5", "'mlflow.curve_points' must be \"all\" or an integer from 1 to 100000"),
            (
                "curve_point = 10",
                "unknown key 'mlflow.curve_point' (did you mean 'mlflow.curve_points'?); allowed keys "
                "are ['curve_points']",
            ),
        ]
    ],
    (
        edit("trials = 4", "trials = 4\nmlflow = 3"),
        "'mlflow' must be a table such as [mlflow] curve_points = 50, but got 3",
    ),
    *[
        (edit('optimizer = "sgd"', f'optimizer = "sgd"\nfeatures = {v}'), m)
        for v, m in [
            (
                '["linear", "cubes"]',
                "'train.features' must be a list of families from ['linear', 'products', 'sines', "
                "'squares'], but got 'cubes'",
            ),
            (
                '"linear"',
                "'train.features' must be a non-empty list of families from ['linear', 'products', 'sines', "
                "'squares'], but got 'linear'",
            ),
            ("[]", "'train.features' must be a non-empty list of families"),
            ('["sines", "sines"]', "'train.features' lists 'sines' twice"),
        ]
    ],
    *[
        (edit("[search]", f"[search]\nfeatures = {v}"), m)
        for v, m in [
            (
                '["linear", "sines"]',
                "'search.features' must be a table { subsets = ['linear', 'squares', 'products', "
                "'sines'] } (one yes/no parameter per family), but got ['linear', 'sines']; to fix "
                "the families, give the list as 'train.features'",
            ),
            (
                '{ subset = ["linear"] }',
                "unknown key 'search.features.subset' (did you mean 'search.features.subsets'?)",
            ),
            ("{}", "'search.features' needs 'subsets'"),
            (
                '{ subsets = ["linear", "cubes"] }',
                "'search.features.subsets' must be a list of families from "
                "['linear', 'products', 'sines', 'squares'], but got 'cubes'",
            ),
            ("{ subsets = [] }", "'search.features.subsets' must be a non-empty list of families"),
        ]
    ],
    (
        edit("[search]", '[search]\nfeatures = { subsets = ["linear", "products"] }').replace('"xor"]', '"digits"]'),
        "'search.features.subsets': 'products' takes at most 32 raw features (496 pairwise products), but dataset "
        "'digits' has 64 (2016 products); leave 'products' out for it",
    ),
    (
        edit('optimizer = "sgd"', 'optimizer = "sgd"\nfeatures = ["sines"]').replace(
            "[search]", '[search]\nfeatures = { subsets = ["sines"] }'
        ),
        "'features' is both fixed in [train] and searched in [search]",
    ),
]


def run_file(path, *extra):
    return CliRunner().invoke(cli, ["run", str(path), "--no-mlflow", *extra])


def assert_clean_error(result, message, where):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and message in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert sorted(os.listdir(where)) == ["sweep.toml"]  # nothing written
