"""``sweep train`` through click's CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from sweeps.cli import cli
from sweeps.commands.train import parse_features


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_train_prints_a_summary():
    r = run("train", "--dataset", "xor", "--hidden", "8", "--epochs", "30", "--learning-rate", "0.1")
    assert r.exit_code == 0, r.output
    assert "trained xor: 2-8-1 tanh -> sigmoid" in r.output
    assert "val accuracy" in r.output and "divergence      none" in r.output


def test_train_json_has_one_value_per_epoch():
    r = run(
        "train",
        "--dataset",
        "iris",
        "--hidden",
        "none",
        "--epochs",
        "12",
        "--optimizer",
        "adam",
        "--learning-rate",
        "0.05",
        "--json",
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["arguments"]["hidden"] == [] and out["arguments"]["optimizer"] == "adam"
    assert len(out["train_cost"]) == len(out["val_cost"]) == len(out["val_accuracy"]) == 12
    assert out["divergence"] is None


def test_train_json_reports_divergence():
    r = run("train", "--dataset", "circle", "--activation", "relu", "--learning-rate", "50", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)["divergence"]
    assert d["cause"] in ("nan", "inf", "exploding") and d["epoch"] <= 3


def test_train_on_a_csv_with_a_label_column(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(
        "kind,a,b\n" + "".join(f"{'yes' if i % 2 else 'no'},{i % 2 + 0.1 * (i % 5)},{i % 7}\n" for i in range(80))
    )
    r = run("train", "--dataset", str(path), "--label", "kind", "--epochs", "20", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["val_accuracy"][-1] > 0.9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "mnist"], "unknown dataset 'mnist'"),
        (["--dataset", "circle", "--activation", "gelu"], "'gelu' is not one of 'linear', 'relu', 'sigmoid', 'tanh'"),
        (["--dataset", "circle", "--hidden", "8,x"], "'--hidden' must be comma-separated layer widths"),
        (["--dataset", "circle", "--learning-rate", "-1"], "'learning_rate' must be a number > 0, but got -1.0"),
        (["--dataset", "circle", "--epochs", "0"], "'--epochs'"),
        (["--dataset", "circle", "--seed", "-1"], "Invalid value for '--seed': -1 is not in the range x>=0"),
        (["--dataset", "nothere.csv"], "dataset file 'nothere.csv' does not exist"),
        (
            ["--dataset", "circle", "--features", "sines,cubes"],
            "'--features' must be a list of families from ['linear', 'products', 'sines', 'squares'], but got 'cubes'.",
        ),
        (["--dataset", "circle", "--features", ""], "'--features' must be a non-empty list of families"),
        (["--dataset", "circle", "--features", "linear,linear"], "'--features' lists 'linear' twice"),
        (["--dataset", "circle", "--dataset-option", "noise"], "'--dataset-option' must be KEY=VALUE"),
        (["--dataset", "circle", "--dataset-option", "nois=0.1"], "dataset 'circle': unknown option 'nois'"),
        (["--dataset", "circle", "--load", "nothere.npz"], "model file 'nothere.npz' does not exist"),
        (
            ["--dataset", "circle", "--load", "m.npz", "--stack-widths", "8"],
            "'--load' starts from a kept network; it can't be trained in a stack",
        ),
        (
            ["--dataset", "digits", "--features", "products"],
            "'--features': 'products' takes at most 32 raw features (496 pairwise products), but dataset "
            "'digits' has 64",
        ),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args, message):
    r = run("train", *args)
    assert r.exit_code == 2
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], r.output
    assert "Traceback" not in r.output


def test_broken_csv_is_one_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,label\n1,hello,0\n2,3,1\n")
    r = run("train", "--dataset", str(path))
    assert r.exit_code == 2
    assert "feature column 'b' is not numeric" in r.output


def test_help_has_examples():
    r = run("train", "--help")
    assert r.exit_code == 0 and "Examples:" in r.output and "sweep train --dataset circle" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hidden", "1000000000"], "a network 2-1000000000-1 needs about"),
        (["--hidden", "8,1000000000,8"], "a network 2-8-1000000000-8-1 needs about"),
        (["--epochs", "1000000000000000"], "'--epochs': 1000000000000000 is not in the range 1<=x<=100000"),
        (["--dataset", "spiral", "--hidden", "4"], None),
    ],
)
def test_train_beyond_the_machine_is_one_line(args, message, tmp_path):
    full = (
        ["train", "--dataset", "circle", *args, "--epochs", "1"]
        if "--epochs" not in args
        else ["train", "--dataset", "circle", *args]
    )
    if message is None:  # the same command within limits trains
        assert run(*full).exit_code == 0
        return
    r = run(*full)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], r.output
    if "needs about" in message:
        from engine.limits import human_bytes, machine_memory

        assert f"but this machine has {human_bytes(machine_memory())}" in lines[0]


def test_complex_npz_is_refused_in_one_line(tmp_path):
    import numpy as np

    np.savez(tmp_path / "c.npz", X=np.ones((30, 2)) * (1 + 1j), y=np.arange(30) % 2)
    r = run("train", "--dataset", str(tmp_path / "c.npz"), "--epochs", "1")
    assert (
        r.exit_code == 2
        and r.output.startswith("Error: dataset")
        and "X must hold real numbers, but got dtype complex128" in r.output
    )


def test_train_with_input_features():
    # The spiral is out of reach of 8 tanh units on the raw inputs, and easy with their sines.
    base = ["train", "--dataset", "spiral", "--hidden", "8", "--learning-rate", "0.1", "--epochs", "60", "--json"]
    plain = json.loads(run(*base).output)
    r = run(*base, "--features", "sines,linear")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["arguments"]["features"] == ["linear", "sines"]
    assert plain["arguments"]["features"] == ["linear"]
    assert plain["val_accuracy"][-1] < 0.8 and out["val_accuracy"][-1] > 0.95
    r = run(*base[:-1], "--features", "linear,squares,products,sines")
    assert r.exit_code == 0 and "trained spiral on inputs linear+squares+products+sines: 7-8-1 tanh" in r.output


def test_parse_features():
    assert parse_features(" sines , linear") == ("linear", "sines")
    with pytest.raises(
        ValueError,
        match=r"'--features' must be a list of families from \['linear', 'products', "
        r"'sines', 'squares'\], but got 'sin'",
    ):
        parse_features("linear,sin")


def test_dataset_options_and_a_stack_of_a_given_shape():
    # The options 'sweep best --format command' prints: the dataset's options as in the
    # sweep file, and training alone in a stack of the trial's shape.
    plain = run("train", "--dataset", "circle", "--dataset-option", "noise=0.2", "--epochs", "3", "--json")
    other = run("train", "--dataset", "circle", "--dataset-option", "noise=0.0", "--epochs", "3", "--json")
    assert plain.exit_code == other.exit_code == 0, plain.output + other.output
    assert json.loads(plain.output)["val_cost"] != json.loads(other.output)["val_cost"]  # the option reached the data
    args = ["train", "--dataset", "xor", "--hidden", "3,2", "--epochs", "3", "--json"]
    stacked = run(*args, "--stack-widths", "6,6,6", "--stack-inputs", "4")
    assert stacked.exit_code == 0, stacked.output
    from engine import Member, load_dataset, train_stacked

    ((_, history),) = train_stacked(
        [Member((3, 2), 0.03, seed=0, activation="tanh")],
        load_dataset("xor", seed=0),
        epochs=3,
        batch_size=10,
        widths=[6, 6, 6],
        inputs=4,
    )
    assert json.loads(stacked.output)["val_cost"] == history.val_cost


def test_a_loaded_regression_network_sees_the_targets_as_it_learned_them(tmp_path):
    # Another split (seed) standardizes the targets otherwise: --load puts them back on the
    # network's own scale, so its cost is the cost it was trained to.
    from engine import MLP, load_dataset, save_model, train, with_features
    from sweeps.commands.train import _loaded

    ds = with_features(load_dataset("diabetes", seed=1), ("linear",))
    model = MLP(ds.n_features, (4,), ds.n_outputs, activation="tanh", seed=1)
    train(model, ds, learning_rate=0.05, epochs=2, batch_size=16, seed=1)
    path = tmp_path / "m.npz"
    save_model(path, model, ds)
    other = load_dataset("diabetes", seed=7)
    _, seen = _loaded(str(path), other)
    assert (seen.target_mean, seen.target_scale) == (ds.target_mean, ds.target_scale)
    raw = other.y_train * other.target_scale + other.target_mean
    assert np.allclose(seen.y_train * seen.target_scale + seen.target_mean, raw)
