"""The sweep file: every kind of mistake gives exit 2, one line, and writes nothing."""

from __future__ import annotations

import os
import tomllib

import pytest
from click.testing import CliRunner

from engine.limits import human_bytes, machine_memory
from studies.sweep.space import Choice, Range
from sweeps.cli import cli
from sweeps.limits import cpu_count, max_jobs
from sweeps.spec import load_spec, spec_from_dict

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


def _edit(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


def test_the_example_file_is_valid(tmp_path):
    path = tmp_path / "demo.toml"
    path.write_text(GOOD)
    config = load_spec(str(path))
    assert config.name == "demo" and [d.name for d in config.datasets] == ["circle", "xor"]
    assert config.space.searched["learning_rate"] == Range(1e-4, 10.0, log=True)
    assert config.space.searched["hidden_units"].integer
    assert config.space.searched["activation"] == Choice(("sigmoid", "tanh", "relu"))
    assert config.space.fixed == {"epochs": 3, "batch_size": 10, "optimizer": "sgd"}
    assert config.direction == "minimize"
    assert spec_from_dict(config.to_dict()) == config  # what the storage keeps reads back the same


def test_presets_are_valid():
    for name in ("playground", "classics"):
        config = load_spec(name)
        assert config.name == name and len(config.datasets) == 4


def test_dataset_tables_and_csv_names(tmp_path):
    csv = tmp_path / "mine.csv"
    csv.write_text("a,b,kind\n" + "".join(f"{i},{i % 3},{'x' if i % 2 else 'y'}\n" for i in range(30)))
    text = _edit('datasets = ["circle", "xor"]', f'datasets = [{{ name = "spiral", noise = 0.2 }}, "{csv}"]')
    config = spec_from_dict(__import__("tomllib").loads(text), origin="t")
    assert [d.name for d in config.datasets] == ["spiral", "mine"]
    assert config.study_name(config.datasets[1]) == "demo/mine"
    assert dict(config.datasets[0].options) == {"noise": 0.2}


BAD = [
    (_edit("trials = 4", "trails = 4"), "unknown key 'trails' (did you mean 'trials'?)"),
    (_edit("trials = 4", 'trials = "ten"'), "'trials' must be an integer >= 1, but got 'ten'"),
    (_edit("trials = 4", "trials = 0"), "'trials' must be an integer >= 1, but got 0"),
    (_edit("jobs = 1", "jobs = 0"), "'jobs' must be an integer >= 1, but got 0"),
    (_edit("epochs = 3", "epochs = 0"), "'train.epochs' must be an integer in [1, 100000], but got 0"),
    (_edit("batch_size = 10", "batch_size = 2.5"), "'train.batch_size' must be an integer >= 1, but got 2.5"),
    (_edit("low = 2, high = 64", "low = 0, high = 64"), "'search.hidden_units.low' must be an integer >= 1, but got 0"),
    (_edit("low = 1e-4, high = 10.0", "low = 1.0, high = 0.1"), "`low <= high` must hold, but got (low=1.0, high=0.1)"),
    (_edit("low = 1e-5, high = 1.0, log = true", "low = 0.0, high = 1.0, log = true"), "a log range needs `low > 0`"),
    (
        _edit("low = 1e-5, high = 1.0, log = true", "low = 0.1, high = 1.0, log = true, step = 0.1"),
        "'step' and 'log' cannot be used together",
    ),
    (
        _edit("low = 1e-4, high = 10.0, log = true", "low = 0.1, high = 1.0, step = 5.0"),
        "'search.learning_rate.step' must divide high - low = 0.9, but got 5.0 (Optuna would search only up to 0.1)",
    ),
    (
        _edit("low = 2, high = 64, log = true", "low = 2, high = 64, step = 5"),
        "'search.hidden_units.step' must divide high - low = 62, but got 5 (Optuna would search only up to 62)",
    ),
    (
        _edit('activation = ["sigmoid", "tanh", "relu"]', "activation = []"),
        "'search.activation' must be a non-empty list",
    ),
    (
        _edit('activation = ["sigmoid", "tanh", "relu"]', 'activation = ["gelu"]'),
        "'search.activation' must be one of ['linear', 'relu', 'sigmoid', 'tanh'], but got 'gelu'",
    ),
    (
        _edit('optimizer = "sgd"', 'optimizer = "rmsprop"'),
        "'train.optimizer' must be one of ['adam', 'momentum', 'sgd'], but got 'rmsprop'",
    ),
    (_edit('datasets = ["circle", "xor"]', 'datasets = ["circle", "mnist"]'), "'datasets[1]': unknown dataset 'mnist'"),
    (_edit('datasets = ["circle", "xor"]', "datasets = []"), "'datasets' must be a non-empty list"),
    (
        _edit('name = "tpe"', 'name = "bayes"'),
        "'sampler.name' must be one of ['cmaes', 'grid', 'nsgaii', 'qmc', 'random', 'tpe'], but got 'bayes'",
    ),
    (
        _edit('name = "median"', 'name = "early"'),
        "'pruner.name' must be one of ['hyperband', 'median', 'none', 'percentile', 'successive_halving'], "
        "but got 'early'",
    ),
    (
        _edit('name = "tpe"', 'name = "tpe"\nn_startup_trials = -1'),
        "'sampler.n_startup_trials' must be an integer >= 0, but got -1",
    ),
    (_edit('name = "median"', 'name = "median"\npatience = 3'), "unknown key 'pruner.patience' for pruner 'median'"),
    (
        _edit('name = "tpe"', 'name = "grid"'),
        "sampler 'grid' needs every [search] entry to be a list or a range with a 'step'",
    ),
    (
        _edit('objective = "val_cost"', 'objective = "accuracy"'),
        "'objective' must be one of ['parameters', 'train_seconds', 'val_accuracy', 'val_cost'] or a list "
        "of several of them, but got 'accuracy'",
    ),
    *[
        (_edit('objective = "val_cost"', f"objective = {v}"), m)
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
        _edit('objective = "val_cost"', 'objective = ["val_cost", "parameters"]').replace(
            'name = "tpe"', 'name = "cmaes"'
        ),
        "sampler 'cmaes' supports one objective, but 'objective' lists 2; with several use one of ['grid', 'nsgaii', "
        "'qmc', 'random', 'tpe'] ('tpe' or 'nsgaii' learn from the trials)",
    ),
    (
        _edit('datasets = ["circle", "xor"]', 'datasets = ["circle", "diabetes"]')
        .replace('objective = "val_cost"', 'objective = ["parameters", "val_accuracy"]')
        .replace('name = "median"', 'name = "none"'),
        "'val_accuracy' needs classification datasets",
    ),
    (
        _edit('name = "tpe"', 'name = "nsgaii"\npopulation_size = 1'),
        "'sampler.population_size' must be an integer >= 2, but got 1",
    ),
    (
        _edit('name = "tpe"', 'name = "nsgaii"\nmutation_prob = 1.5'),
        "'sampler.mutation_prob' must be a number in [0, 1], but got 1.5",
    ),
    (
        _edit('name = "tpe"', 'name = "nsgaii"\ngenerations = 3'),
        "unknown key 'sampler.generations' for sampler 'nsgaii' (allowed: ['crossover_prob', "
        "'mutation_prob', 'population_size', 'swapping_prob'])",
    ),
    (_edit('name = "demo"', 'name = "my sweep!"'), "'name' must be a plain name"),
    (_edit('name = "demo"', 'name = "../escape"'), "'name' must be a plain name"),
    (
        _edit("learning_rate =", "learning_rte ="),
        "unknown key 'search.learning_rte' (did you mean 'search.learning_rate'?)",
    ),
    (
        _edit('optimizer = "sgd"', 'optimizer = "sgd"\nlearning_rate = 0.1'),
        "'learning_rate' is both fixed in [train] and searched in [search]",
    ),
    (_edit("trials = 4", "trials = 4\nobjective2 = 1"), "unknown key 'objective2'"),
    (_edit('datasets = ["circle", "xor"]', 'datasets = ["circle", "circle"]'), "dataset name 'circle' appears twice"),
    (
        _edit('datasets = ["circle", "xor"]', 'datasets = ["circle", "diabetes"]').replace(
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
        _edit("trials = 4", "trials = 4\nmlflow = 3"),
        "'mlflow' must be a table such as [mlflow] curve_points = 50, but got 3",
    ),
    *[
        (_edit('optimizer = "sgd"', f'optimizer = "sgd"\nfeatures = {v}'), m)
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
        (_edit("[search]", f"[search]\nfeatures = {v}"), m)
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
        _edit("[search]", '[search]\nfeatures = { subsets = ["linear", "products"] }').replace('"xor"]', '"digits"]'),
        "'search.features.subsets': 'products' takes at most 32 raw features (496 pairwise products), but dataset "
        "'digits' has 64 (2016 products); leave 'products' out for it",
    ),
    (
        _edit('optimizer = "sgd"', 'optimizer = "sgd"\nfeatures = ["sines"]').replace(
            "[search]", '[search]\nfeatures = { subsets = ["sines"] }'
        ),
        "'features' is both fixed in [train] and searched in [search]",
    ),
]


MEMORY = human_bytes(machine_memory())
# What passed '--check' and then failed at run time, or crashed: refused by '--check' now,
# with the limit and the value in the message.
LIMITS = [
    (
        _edit('datasets = ["circle", "xor"]', 'datasets = [{ name = "circle", n_samples = 10000000000 }]'),
        f"'datasets[0]': dataset 'circle': 'n_samples' = 10000000000 needs about 1.7 TiB of memory, but this machine "
        f"has {MEMORY}; at most about",
    ),
    (
        _edit("trials = 4", "trials = 4\ndivergence_factor = inf"),
        "'divergence_factor' must be a finite number > 1, but got inf",
    ),
    (
        _edit("trials = 4", "trials = 4\ndivergence_factor = nan"),
        "'divergence_factor' must be a finite number > 1, but got nan",
    ),
    (
        _edit("low = 2, high = 64, log = true", "low = 2, high = 1000000000, log = true"),
        "'search.hidden_units' = 1000000000: 1 worker(s) x 8 stacked network(s) of up to 3 layer(s) of "
        "1000000000 units "
        "on dataset 'circle' need about",
    ),
    (
        _edit(
            "hidden_layers = { low = 1, high = 3 }\nhidden_units = { low = 2, high = 64, log = true }",
            "hidden_layers = { low = 1, high = 3 }",
        ).replace("[train]", "[train]\nhidden_units = 1000000000"),
        "'train.hidden_units' = 1000000000: 1 worker(s) x 8 stacked network(s)",
    ),
    (
        _edit("hidden_layers = { low = 1, high = 3 }", "hidden_layers = { low = 1, high = 1000000000 }"),
        "'search.hidden_layers' = 1000000000: 1 worker(s) x 8 stacked network(s) of up to 1000000000 layer(s)",
    ),
    (
        _edit("trials = 4", "trials = 4\nbatch = 100000000"),
        "x 100000000 stacked network(s) of up to 3 layer(s) of 64 units",
    ),
    (
        _edit("trials = 4", "trials = 4\nbatch = 5000"),
        "'batch' must be at most 1024 (trials a worker trains at once, each a running trial in the storage; the "
        "gain stops at about 64), but got 5000",
    ),
    (
        _edit("trials = 4", "trials = 4\nstack = 1024").replace("high = 64, log = true", "high = 100000"),
        "'search.hidden_units' = 100000: 1 worker(s) x 1024 stacked network(s) of up to 3 layer(s) of 100000 units",
    ),
    (
        _edit('name = "tpe"', 'name = "grid"')
        .replace("{ low = 1e-4, high = 10.0, log = true }", "{ low = 0.001, high = 1.0, step = 0.001 }")
        .replace("{ low = 1e-5, high = 1.0, log = true }", "{ low = 0.0, high = 1.0, step = 0.000001 }"),
        "'sampler' = 'grid': the search space has about 10^15 grid points ('search.regularization_rate' "
        "alone has 1000001 values), but at most ",
    ),
    (
        _edit("epochs = 3", "epochs = 1000000000000000"),
        "'train.epochs' must be an integer in [1, 100000], but got 1000000000000000",
    ),
    (
        _edit("jobs = 1", "jobs = 100000"),
        f"'jobs' must be at most {max_jobs()} (8 worker processes per CPU; this machine "
        f"has {cpu_count()}), but got 100000",
    ),
]


@pytest.mark.parametrize("check", [True, False])
@pytest.mark.parametrize(("text", "message"), LIMITS, ids=[m[:40] for _, m in LIMITS])
def test_what_the_machine_cannot_run_is_refused_by_check(in_tmp, text, message, check):
    path = in_tmp / "sweep.toml"
    path.write_text(text)
    result = _run_file(path, *(["--check"] if check else []))
    _assert_clean_error(result, message, in_tmp)
    if "memory" in message:
        assert f"but this machine has {MEMORY}" in result.output


def test_command_line_limits(in_tmp):
    path = in_tmp / "sweep.toml"
    path.write_text(GOOD)
    _assert_clean_error(
        _run_file(path, "--jobs", str(max_jobs() + 1), "--check"),
        f"command line: 'jobs' must be at most {max_jobs()}",
        in_tmp,
    )
    for flag in ("--batch", "--stack"):
        _assert_clean_error(
            _run_file(path, flag, "10000000000", "--check"),
            "command line: 'stack' must be at most 1024 (trials a worker trains at once",
            in_tmp,
        )


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run_file(path, *extra):
    return CliRunner().invoke(cli, ["run", str(path), "--no-mlflow", *extra])


def _assert_clean_error(result, message, where):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and message in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert sorted(os.listdir(where)) == ["sweep.toml"]  # nothing written


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_sweep_files(in_tmp, text, message):
    path = in_tmp / "sweep.toml"
    path.write_text(text)
    result = _run_file(path)
    _assert_clean_error(result, message, in_tmp)
    assert "sweep.toml" in result.output  # the file is named


def test_an_over_long_name_states_the_limit_and_is_not_repeated(in_tmp):
    long = "a" * 100_000
    path = in_tmp / "sweep.toml"
    path.write_text(_edit('name = "demo"', f'name = "{long}"'))
    result = _run_file(path)
    _assert_clean_error(result, "'name' must be a plain name of at most 100 characters", in_tmp)
    assert "(100000 characters, at most 100)" in result.output and len(result.output) < 500, result.output[:300]
    status = CliRunner().invoke(cli, ["status", long])  # a NAME on the command line: the same rule
    assert status.exit_code == 2 and "at most 100 characters" in status.output and len(status.output) < 500
    assert "a" * 101 not in status.output and os.listdir(in_tmp) == ["sweep.toml"]
    exact = "b" * 100  # the limit itself is a name
    ok = CliRunner().invoke(cli, ["status", exact])
    assert ok.exit_code == 2 and f"no sweep named '{exact}'" in ok.output


def test_file_that_is_not_text(in_tmp):
    path = in_tmp / "sweep.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20)
    _assert_clean_error(_run_file(path), "not a text file", in_tmp)


def test_broken_csv_dataset(in_tmp):
    (in_tmp / "broken.csv").write_text("a,b,label\n1,oops,0\n2,3,1\n")
    path = in_tmp / "sweep.toml"
    path.write_text(_edit('datasets = ["circle", "xor"]', 'datasets = ["broken.csv"]'))
    result = _run_file(path)
    assert result.exit_code == 2 and "feature column 'b' is not numeric" in result.output
    assert sorted(os.listdir(in_tmp)) == ["broken.csv", "sweep.toml"]


def test_unknown_spec_or_preset(in_tmp):
    result = CliRunner().invoke(cli, ["run", "no-such-sweep"])
    assert result.exit_code == 2
    assert "no sweep file or preset named 'no-such-sweep'; the presets are ['classics', 'playground']" in result.output
    assert os.listdir(in_tmp) == []


def test_bad_command_line_overrides(in_tmp):
    path = in_tmp / "sweep.toml"
    path.write_text(GOOD)
    _assert_clean_error(
        _run_file(path, "--trials", "0"), "command line: 'trials' must be an integer >= 1, but got 0", in_tmp
    )


def test_presets_command_lists_and_shows():
    r = CliRunner().invoke(cli, ["presets"])
    assert r.exit_code == 0 and "playground" in r.output and "classics" in r.output
    r = CliRunner().invoke(cli, ["presets", "--show", "playground"])
    assert r.exit_code == 0 and 'name = "playground"' in r.output


@pytest.mark.parametrize(
    "command", ["run", "worker", "status", "presets", "sync", "train", "report", "reproduce", "ui"]
)
def test_every_command_has_help_with_examples(command):
    r = CliRunner().invoke(cli, [command, "--help"])
    assert r.exit_code == 0 and "Examples:" in r.output


FEATURES_FIXED = _edit('optimizer = "sgd"', 'optimizer = "sgd"\nfeatures = ["sines", "linear"]')
FEATURES_SEARCHED = _edit("[search]", '[search]\nfeatures = { subsets = ["sines", "linear", "squares", "products"] }')


def test_features_fixed_or_searched_read_back_the_same(tmp_path):
    import json
    import tomllib

    from studies.sweep.config import SweepConfig
    from studies.sweep.space import Subsets

    fixed = spec_from_dict(tomllib.loads(FEATURES_FIXED), origin="t")
    assert fixed.space.fixed["features"] == ["linear", "sines"]  # the columns' order
    searched = spec_from_dict(tomllib.loads(FEATURES_SEARCHED), origin="t")
    assert searched.space.searched["features"] == Subsets(("linear", "squares", "products", "sines"))
    for config in (fixed, searched):
        assert spec_from_dict(config.to_dict()) == config
        assert SweepConfig.from_dict(json.loads(config.to_json())) == config  # as the storage keeps it


@pytest.mark.parametrize(
    ("text", "message"), [(t, m) for t, m in BAD if "features" in m], ids=[m[:40] for t, m in BAD if "features" in m]
)
def test_bad_features_raise_value_errors(text, message):
    import re
    import tomllib

    with pytest.raises(ValueError, match=re.escape(message)):
        spec_from_dict(tomllib.loads(text), origin="t")


def test_check_shows_the_input_features(in_tmp):
    for text, expected in (
        (FEATURES_FIXED, "input features linear+sines;"),
        (
            FEATURES_SEARCHED,
            "input features searched: each of linear, squares, products, sines on or off (at least one);",
        ),
        (GOOD, "input features linear;"),
    ):
        (in_tmp / "sweep.toml").write_text(text)
        r = _run_file(in_tmp / "sweep.toml", "--check")
        assert r.exit_code == 0 and expected in r.output, r.output
        assert sorted(os.listdir(in_tmp)) == ["sweep.toml"]


def test_library_errors_name_the_flag_that_set_the_parameter(tmp_path, monkeypatch):
    """The library names its parameters ('storage'); the command line names its flags."""
    from click.testing import CliRunner

    from sweeps.cli import cli

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["status", "x", "--storage", "ftp://me:pw@host/x"])
    assert r.exit_code == 2 and r.output.startswith("Error: '--storage' must be a journal file path"), r.output
    assert "pw" not in r.output
    r = CliRunner().invoke(cli, ["run", "playground", "--storage", "ftp://host/x"])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "'--storage' must be" in r.output, r.output
    assert not list(tmp_path.iterdir())  # nothing written


def test_looking_for_a_sweep_in_a_missing_journal_creates_nothing(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from sweeps.cli import cli

    monkeypatch.chdir(tmp_path)
    for args in (
        ["status", "gone"],
        ["sync", "gone"],
        ["report", "gone"],
        ["worker", "gone"],
        ["reproduce", "gone", "--dataset", "circle", "--trial", "1"],
    ):
        for storage in ([], ["--storage", "sqlite:///gone.db"]):  # opening SQLite would create its file too
            r = CliRunner().invoke(cli, args + storage)
            assert r.exit_code == 2 and "no sweep named 'gone'" in r.output, (args, storage, r.output)
    assert not list(tmp_path.iterdir())


def test_the_file_a_storage_keeps_its_records_in():
    from studies.storage.opening import storage_file

    assert storage_file("sweeps.journal") == "sweeps.journal"
    assert storage_file("file:///tmp/a b.journal") == "/tmp/a b.journal"
    assert storage_file("sqlite:///x.db?timeout=5") == "x.db"
    assert storage_file("sqlite:////abs/x.db") == "/abs/x.db"
    assert storage_file("sqlite:///:memory:") is None
    assert storage_file("postgresql://u:pw@127.0.0.1/db") is None and storage_file("redis://127.0.0.1") is None


OBJECTIVE_ERRORS = [
    (t, m) for t, m in BAD if "objective" in m or "nsgaii" in m or "population_size" in m or "mutation_prob" in m
]


@pytest.mark.parametrize(("text", "message"), OBJECTIVE_ERRORS, ids=[m[:40] for _, m in OBJECTIVE_ERRORS])
def test_bad_objectives_raise_value_errors(text, message):
    import re
    import tomllib

    with pytest.raises(ValueError, match=re.escape(message)):
        spec_from_dict(tomllib.loads(text), origin="t")


def test_several_objectives_read_back_the_same_and_one_in_a_list_is_that_one():
    import json
    import tomllib

    from studies.sweep.config import SweepConfig

    multi = spec_from_dict(
        tomllib.loads(
            _edit('objective = "val_cost"', 'objective = ["val_accuracy", "parameters"]').replace(
                '[pruner]\nname = "median"\n', ""
            )
        ),
        origin="t",
    )
    assert multi.objective == ("val_accuracy", "parameters") and multi.multi
    assert multi.directions == ["maximize", "minimize"] and multi.pruner.name == "none"  # no pruner by default
    with pytest.raises(ValueError, match="has several objectives"):
        _ = multi.direction
    assert multi.to_dict()["objective"] == ["val_accuracy", "parameters"]
    assert spec_from_dict(multi.to_dict()) == multi
    assert SweepConfig.from_dict(json.loads(multi.to_json())) == multi  # as the storage keeps it
    assert (
        multi.identity() != spec_from_dict(multi.to_dict() | {"objective": ["parameters", "val_accuracy"]}).identity()
    )
    one = spec_from_dict(tomllib.loads(_edit('objective = "val_cost"', 'objective = ["val_cost"]')), origin="t")
    assert one.objective == "val_cost" and not one.multi and one.to_dict()["objective"] == "val_cost"
    assert one == spec_from_dict(tomllib.loads(GOOD), origin="t")  # stored exactly as the single name


def test_check_names_several_objectives(in_tmp):
    (in_tmp / "sweep.toml").write_text(
        _edit('objective = "val_cost"', 'objective = ["val_cost", "train_seconds"]').replace(
            'name = "median"', 'name = "none"'
        )
    )
    r = _run_file(in_tmp / "sweep.toml", "--check")
    assert r.exit_code == 0, r.output
    assert "pruner none, objectives val_cost, train_seconds (minimize, minimize: a Pareto front)." in r.output
    assert sorted(os.listdir(in_tmp)) == ["sweep.toml"]


def test_a_step_that_divides_its_range_within_rounding_is_taken_and_a_stored_sweep_keeps_its_own():
    config = spec_from_dict(
        tomllib.loads(_edit("low = 1e-4, high = 10.0, log = true", "low = 0.1, high = 1.0, step = 0.1")), origin="t"
    )
    assert config.space.searched["learning_rate"].step == 0.1
    # A sweep stored before the rule existed still opens for 'sweep worker' (stored=True).
    text = _edit("low = 1e-4, high = 10.0, log = true", "low = 0.1, high = 1.0, step = 5.0")
    with pytest.raises(ValueError, match="must divide high - low"):
        spec_from_dict(tomllib.loads(text), origin="t")
    assert spec_from_dict(tomllib.loads(text), origin="t", stored=True).space.searched["learning_rate"].step == 5.0


def test_a_sweep_stored_before_the_step_rule_resumes_from_its_own_file_and_joins_with_overrides(in_tmp):
    from studies.execution.runner import open_sweep
    from studies.storage.opening import open_storage
    from sweeps.spec import apply_overrides

    text = _edit("low = 1e-4, high = 10.0, log = true", "low = 0.1, high = 1.0, step = 0.25")
    stored = spec_from_dict(tomllib.loads(text), origin="t", stored=True)
    # 'sweep worker' validates the stored sweep again with its --jobs/--batch: by the same old rules.
    assert apply_overrides(stored, jobs=1, stack=2, stored=True).space.searched["learning_rate"].step == 0.25
    with pytest.raises(ValueError, match="must divide high - low"):
        apply_overrides(stored, jobs=1)
    path = in_tmp / "sweep.toml"
    path.write_text(text)
    _assert_clean_error(_run_file(path, "--check"), "'search.learning_rate.step' must divide high - low", in_tmp)
    _assert_clean_error(_run_file(path, "--check", "--storage", "sqlite:///x.db"), "must divide high - low", in_tmp)
    assert sorted(os.listdir(in_tmp)) == ["sweep.toml"]  # no storage written to answer (no journal, no SQLite file)
    open_sweep(stored, open_storage("sweeps.journal"))  # the same sweep, stored before the rule existed
    r = _run_file(path, "--check", "--jobs", "1", "--trials", "5")
    assert r.exit_code == 0, r.output
    assert "sweep 'demo' is valid" in r.output
    # Another sweep, or this one changed, is new: the rule applies.
    for other in (text.replace('name = "demo"', 'name = "other"'), text.replace("epochs = 3", "epochs = 4")):
        folder = in_tmp / "more"
        folder.mkdir(exist_ok=True)
        (folder / "sweep.toml").write_text(other)
        _assert_clean_error(_run_file(folder / "sweep.toml", "--check"), "must divide high - low", folder)


def test_an_integer_step_divides_exactly_however_wide_the_range():
    data = tomllib.loads(GOOD)
    del data["train"]["batch_size"]
    data["search"]["batch_size"] = {"low": 1, "high": 10**10 + 1, "step": 3}  # 10**10 / 3: not a whole number
    with pytest.raises(
        ValueError,
        match=r"'search.batch_size.step' must divide high - low = 10000000000, but got 3 "
        r"\(Optuna would search only up to 10000000000\)",
    ):
        spec_from_dict(data, origin="t")
    data["search"]["batch_size"] = {"low": 1, "high": 10**10 + 3, "step": 3}
    assert spec_from_dict(data, origin="t").space.searched["batch_size"].step == 3


def test_mlflow_curve_points_default_all_or_a_number_and_a_change_resumes(tmp_path):
    assert spec_from_dict(tomllib.loads(GOOD)).curve_points == 50
    for value, expected in (('"all"', "all"), ("200", 200), ("1", 1)):
        config = spec_from_dict(tomllib.loads(GOOD + f"\n[mlflow]\ncurve_points = {value}\n"))
        assert config.curve_points == expected
        assert spec_from_dict(config.to_dict()).curve_points == expected  # stored and read back
        # what MLflow shows is not the sweep's identity: a resumed sweep may change it
        assert config.identity() == spec_from_dict(tomllib.loads(GOOD)).identity()
    from studies.sweep.config import SweepConfig

    stored = spec_from_dict(tomllib.loads(GOOD)).to_dict()
    del stored["mlflow"]  # a sweep stored before the key existed
    assert SweepConfig.from_dict(stored).curve_points == 50


def test_stack_is_the_key_and_batch_its_old_name(tmp_path):
    base = tomllib.loads(GOOD)
    assert spec_from_dict({**base, "stack": 4}).stack == 4
    assert spec_from_dict({**base, "batch": 4}).stack == 4  # files and stored sweeps of before the rename
    assert spec_from_dict(base).stack == 8 and spec_from_dict(base).to_dict()["stack"] == 8
    with pytest.raises(ValueError, match=r"'stack' and 'batch' are the same key \('batch' is its old name\)"):
        spec_from_dict({**base, "stack": 4, "batch": 4})
    with pytest.raises(ValueError, match=r"'batch' must be an integer >= 1, but got 0"):
        spec_from_dict({**base, "batch": 0})
    from studies.sweep import SweepConfig

    old = spec_from_dict(base).to_dict()
    old["batch"] = old.pop("stack")  # as a storage kept it before the rename
    assert SweepConfig.from_dict(old).stack == 8
    assert SweepConfig.identity_of(old) == spec_from_dict(base).identity()  # it resumes as the same sweep


def test_fixed_widths_per_layer_and_the_stack_shape_round_trip():
    # What 'sweep best' writes: one width per layer, and the stacks' shape.
    data = tomllib.loads(GOOD)
    del data["search"]["hidden_layers"], data["search"]["hidden_units"]
    data["train"]["hidden_units"] = [16, 4, 9]
    data["stack_shape"] = {"widths": [20, 20, 20, 20], "inputs": 3}
    config = spec_from_dict(data)
    assert config.space.from_params({"learning_rate": 0.1, "activation": "tanh", "regularization": "none"}).hidden == (
        16,
        4,
        9,
    )
    assert config.space.max_layers() == 3 and config.space.stack_widths(2) == [16, 16, 16]
    again = spec_from_dict(config.to_dict())
    assert again == config and again.stack_shape.widths == (20, 20, 20, 20) and again.stack_shape.inputs == 3
    from studies.sweep import SweepConfig

    assert SweepConfig.from_dict(config.to_dict()) == config  # as a worker reads it from the storage


@pytest.mark.parametrize(
    ("train", "search", "shape", "message"),
    [
        ({"hidden_units": []}, {}, None, "'train.hidden_units' must list one width per hidden layer, but got []"),
        ({"hidden_units": [4, 0]}, {}, None, "'train.hidden_units[1]' must be an integer >= 1, but got 0"),
        ({"hidden_units": [4, 4], "hidden_layers": 3}, {}, None, "'train.hidden_layers' = 3, but"),
        ({"hidden_units": [4, 4]}, {"hidden_layers": [1, 2]}, None, "can't search the depth"),
        ({"hidden_units": [4, 4]}, {}, {"widths": [4]}, "'stack_shape' must be a table"),
        ({"hidden_units": [4, 4]}, {}, {"widths": [4], "inputs": 2}, "too small for the networks"),
        ({"hidden_units": [4, 4]}, {}, {"widths": [4, 4], "inputs": 1}, "too small for the networks"),
        ({"hidden_units": [4, 4]}, {}, {"widths": [], "inputs": 2}, "must be a non-empty list"),
        # a shape's widths and inputs are the user's: checked against the machine's memory too
        ({"hidden_units": [4, 4]}, {}, {"widths": [50_000_000, 8], "inputs": 2}, "stacked network(s) of this shape"),
        ({"hidden_units": [4, 4]}, {}, {"widths": [8, 8], "inputs": 10**12}, "give smaller widths or inputs"),
    ],
)
def test_bad_widths_and_stack_shapes(train, search, shape, message):
    data = {"name": "w", "datasets": ["xor"], "train": train, "search": search}
    if shape is not None:
        data["stack_shape"] = shape
    with pytest.raises(ValueError) as info:
        spec_from_dict(data)
    assert message in str(info.value)
