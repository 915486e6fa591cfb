"""``sweep best`` (the best configuration as a sweep file, JSON, a command) and the best network
kept by ``sweep report`` (``model-<dataset>.npz``, ``sweep predict``, ``sweep train --load``)."""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from engine import load_model
from sweeps.cli import cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# A folder name a shell, TOML and JSON would each misread if it were not escaped.
HOSTILE_DIR = 'it\'s "odd" $(touch pwned) ;\n `x` ../'
HOSTILE_COLUMN = '<b>x\'s "first"</b>'

SPEC = """
name = "{name}"
datasets = ["circle", {{ name = {csv}, val_fraction = 0.25 }}]
trials = 5
jobs = 1
seed = 3
objective = {objective}

[train]
epochs = 4
batch_size = 10

[search]
learning_rate = [0.05, 0.3]
hidden_layers = {{ low = 1, high = 2 }}
hidden_units = {{ low = 2, high = 5 }}
activation = ["tanh", "relu"]
features = {{ subsets = ["linear", "squares"] }}
regularization = ["none", "l2"]
regularization_rate = {{ low = 1e-5, high = 1e-2, log = true }}

[sampler]
name = "random"

[pruner]
name = "none"
"""


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A finished sweep 'bp' of circle and a CSV file in a hostile folder, in a fresh folder."""
    root = tmp_path_factory.mktemp("best")
    old = os.getcwd()
    os.chdir(root)
    env = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        folder = root / HOSTILE_DIR
        folder.mkdir()
        rows = "".join(
            f"{(i % 7) / 3 - 1},{(i * 13 % 11) / 5 - 1},{'yes' if (i % 7) / 3 + (i * 13 % 11) / 5 > 2 else 'no'}\n"
            for i in range(120)
        )
        (folder / "mine.csv").write_text(f'"{HOSTILE_COLUMN.replace(chr(34), chr(34) * 2)}",b,label\n' + rows)
        source = str(Path(HOSTILE_DIR) / "mine.csv")
        text = SPEC.format(name="bp", csv=json.dumps(source), objective='"val_cost"')
        (root / "bp.toml").write_text(text)
        r = invoke("run", "bp.toml", "--no-mlflow")
        assert r.exit_code == 0, r.output
        yield root, source
    finally:
        os.chdir(old)
        if env is not None:
            os.environ["MLFLOW_TRACKING_URI"] = env


def _study(name: str) -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend("sweeps.journal"))
    return optuna.load_study(study_name=name, storage=storage)


@pytest.mark.parametrize("dataset", ["circle", "mine"])
def test_best_as_a_sweep_file_runs_to_the_same_value_bit_for_bit(swept, dataset):
    root, source = swept
    r = invoke("best", "bp", "--dataset", dataset)
    assert r.exit_code == 0, r.output
    spec = tomllib.loads(r.output)
    assert spec["trials"] == 1 and spec["seed"] == 3 and spec.get("search", {}) == {}
    ref = spec["datasets"][0]
    assert ref == "circle" if dataset == "circle" else ref == {"name": source, "val_fraction": 0.25}
    best = _study(f"bp/{dataset}").best_trial
    (root / f"again-{dataset}.toml").write_text(r.output)
    r = invoke("run", f"again-{dataset}.toml", "--no-mlflow")
    assert r.exit_code == 0, r.output
    again = _study(f"bp-best-{dataset}/{dataset}").best_trial
    assert again.value == best.value  # the same seed, settings and stack shape: the same bits
    assert again.user_attrs["run"]["curves"] == best.user_attrs["run"]["curves"]
    assert again.user_attrs["run"]["stack"] == best.user_attrs["run"]["stack"]


def test_best_as_a_command_trains_the_same_network(swept):
    root, source = swept
    r = invoke("best", "bp", "--format", "command", "--dataset", "mine")
    assert r.exit_code == 0, r.output
    comment, line = r.output.rstrip("\n").split("\n", 1)  # a newline in a quoted word stays in it
    assert comment.startswith('# study "bp/mine": trial ')
    words = shlex.split(line)
    assert words[:4] == ["sweep", "train", "--dataset", source]  # one word, whatever it holds
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = line.replace("sweep train", f"{shlex.quote(sys.executable)} -m sweeps train", 1) + " --json"
    p = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=300, cwd=root, env=env)
    assert p.returncode == 0, p.stderr
    assert not (root / "pwned").exists()
    out = json.loads(p.stdout)
    best = _study("bp/mine").best_trial
    assert out["val_cost"] == best.user_attrs["run"]["curves"]["val_cost"]
    assert out["train_cost"] == best.user_attrs["run"]["curves"]["train_cost"]


def test_best_as_json_and_files_stay_inside_out(swept):
    root, source = swept
    r = invoke("best", "bp", "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert [s["dataset"] for s in data["studies"]] == ["circle", "mine"]
    mine = data["studies"][1]
    assert mine["sweep_file"]["datasets"][0]["name"] == source
    assert mine["values"]["val_cost"] == _study("bp/mine").best_value
    assert shlex.split(mine["command"])[3] == source
    before = {p for p in root.rglob("*")}
    for fmt, suffix in (("toml", ".toml"), ("json", ".json"), ("command", ".sh")):
        r = invoke("best", "bp", "--format", fmt, "--out", f"out-{fmt}")
        assert r.exit_code == 0, r.output
        written = {p for p in root.rglob("*")} - before
        assert written == {
            root / f"out-{fmt}",
            root / f"out-{fmt}" / f"circle{suffix}",
            root / f"out-{fmt}" / f"mine{suffix}",
        }
        before |= written
    assert tomllib.loads((root / "out-toml" / "mine.toml").read_text())["datasets"][0]["name"] == source


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "nope"], "'--dataset' must be one of ['circle', 'mine'], but got 'nope'."),
        ([], "has 2 studies and a TOML file holds one sweep"),
        (["--format", "yaml"], "'yaml' is not one of"),
    ],
)
def test_best_bad_arguments_are_one_line(swept, args, message):
    r = invoke("best", "bp", *args)
    assert r.exit_code == 2 and message in r.output and r.output.count("\n") == 1, r.output


def test_report_keeps_the_best_networks_and_predict_uses_them(swept):
    root, source = swept
    r = invoke("report", "bp", "--out", "rep")
    assert r.exit_code == 0, r.output
    assert "rep/model-circle.npz" in r.output and "attached to 2 MLflow parent run(s)" in r.output
    saved = load_model(root / "rep" / "model-mine.npz")
    assert saved.raw_names == (HOSTILE_COLUMN, "b") and saved.class_names == ("no", "yes")
    params = _study("bp/mine").best_trial.params
    assert saved.features == (tuple(f for f in ("linear", "squares") if params[f"features_{f}"]) or ("linear",))

    # As an artifact of the study's parent run.
    import mlflow

    client = mlflow.MlflowClient("sqlite:///mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("bp").experiment_id], "tags.dataset = 'mine'")
    parent = next(r for r in runs if r.data.tags.get("sweeps.kind") == "study")
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "model")] == ["model/model-mine.npz"]

    # Predict on new rows, the columns in another order: named as in training.
    new = root / "new.csv"
    points = [[0.5, -0.25], [-1.0, 0.75], [0.0, 0.0]]
    buf = io.StringIO()
    csv.writer(buf).writerows([["b", HOSTILE_COLUMN], *[[y, x] for x, y in points]])
    new.write_text(buf.getvalue())
    r = invoke("predict", "rep/model-mine.npz", "new.csv", "--out", "pred.csv")
    assert r.exit_code == 0, r.output
    rows = list(csv.reader((root / "pred.csv").open()))
    assert rows[0] == [HOSTILE_COLUMN, "b", "prediction"]
    assert [row[2] for row in rows[1:]] == saved.predict_names(np.array(points))
    assert [[float(v) for v in row[:2]] for row in rows[1:]] == points


def test_predict_refuses_what_it_cannot_read_in_one_line(swept):
    root, _ = swept
    if not (root / "rep" / "model-circle.npz").exists():
        assert invoke("report", "bp", "--out", "rep", "--no-mlflow").exit_code == 0
    (root / "wrong.csv").write_text("x1,x3\n1,2\n")
    r = invoke("predict", "rep/model-circle.npz", "wrong.csv", "--out", "never.csv")
    assert r.exit_code == 2 and "missing ['x2']; extra ['x3']" in r.output and r.output.count("\n") == 1, r.output
    assert not (root / "never.csv").exists()
    with np.load(root / "rep" / "model-circle.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    np.savez(root / "v9.npz", **{**arrays, "version": np.array(9)})
    r = invoke("predict", "v9.npz", "wrong.csv", "--out", "never.csv")
    assert r.exit_code == 2 and "of version 9; this sweeps reads version 1" in r.output, r.output
    r = invoke("predict", "bp.toml", "wrong.csv")
    assert r.exit_code == 2 and "not a sweeps-model file" in r.output, r.output
    assert not (root / "never.csv").exists()


def test_train_load_starts_from_the_kept_network(swept):
    root, _ = swept
    if not (root / "rep" / "model-circle.npz").exists():
        assert invoke("report", "bp", "--out", "rep", "--no-mlflow").exit_code == 0
    saved = load_model(root / "rep" / "model-circle.npz")
    r = invoke("train", "--dataset", "circle", "--seed", "3", "--load", "rep/model-circle.npz", "--epochs", "1")
    assert r.exit_code == 0, r.output
    assert f"trained circle{'' if saved.features == ('linear',) else ' on inputs ' + '+'.join(saved.features)}:" in (
        r.output
    )
    assert "-".join(map(str, saved.model.sizes)) in r.output
    r = invoke("train", "--dataset", "iris", "--load", "rep/model-circle.npz")
    assert r.exit_code == 2 and "takes the inputs ['x1', 'x2']" in r.output, r.output


def test_several_objectives_the_fronts_best_said_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = SPEC.format(name="mo", csv='"xor"', objective='["val_cost", "parameters"]').replace(
        'datasets = ["circle", { name = "xor", val_fraction = 0.25 }]', 'datasets = ["xor"]'
    )
    (tmp_path / "mo.toml").write_text(text.replace("trials = 5", "trials = 4"))
    r = invoke("run", "mo.toml", "--no-mlflow")
    assert r.exit_code == 0, r.output
    r = invoke("best", "mo", "--format", "json")
    assert r.exit_code == 0, r.output
    (study,) = json.loads(r.output)["studies"]
    assert study["chosen_by"] == "the Pareto front's best in val_cost (the first learned objective)"
    assert study["trial"] in [t["trial"] for t in study["front"]]
    chosen = next(t for t in study["front"] if t["trial"] == study["trial"])
    assert chosen["values"]["val_cost"] == min(t["values"]["val_cost"] for t in study["front"])
    r = invoke("best", "mo")
    assert r.exit_code == 0 and "the Pareto front's best in val_cost" in r.output.splitlines()[0]
    (tmp_path / "again.toml").write_text(r.output)
    assert invoke("run", "again.toml", "--no-mlflow").exit_code == 0
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend("sweeps.journal"))
    (again,) = optuna.load_study(study_name="mo-best-xor/xor", storage=storage).get_trials()
    assert again.values == list(study["values"].values())


def test_a_trial_trained_alone_runs_again_alone_to_the_same_value(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = SPEC.format(name="solo", csv='"xor"', objective='"val_cost"').replace(
        'datasets = ["circle", { name = "xor", val_fraction = 0.25 }]', 'datasets = ["xor"]\nstack = 1'
    )
    (tmp_path / "solo.toml").write_text(text.replace("trials = 5", "trials = 3"))
    assert invoke("run", "solo.toml", "--no-mlflow").exit_code == 0
    r = invoke("best", "solo")
    assert r.exit_code == 0, r.output
    spec = tomllib.loads(r.output)
    assert spec["stack"] == 1 and "stack_shape" not in spec
    (tmp_path / "again.toml").write_text(r.output)
    assert invoke("run", "again.toml", "--no-mlflow").exit_code == 0
    assert _study("solo-best-xor/xor").best_value == _study("solo/xor").best_value


def test_a_stack_shape_holds_with_stack_1(tmp_path, monkeypatch):
    # stack = 1 trains a trial alone, but a stack_shape sets the sums: the trial trains in a stack of
    # that shape (one member), recorded so, and reproduces.
    monkeypatch.chdir(tmp_path)
    text = SPEC.format(name="shaped", csv='"xor"', objective='"val_cost"').replace(
        'datasets = ["circle", { name = "xor", val_fraction = 0.25 }]',
        'datasets = ["xor"]\nstack = 1\nstack_shape = { widths = [40, 40, 40, 40], inputs = 30 }',
    )
    (tmp_path / "shaped.toml").write_text(text.replace("trials = 5", "trials = 2"))
    r = invoke("run", "shaped.toml", "--no-mlflow")
    assert r.exit_code == 0, r.output
    trials = _study("shaped/xor").get_trials()
    assert all(t.user_attrs["run"]["stack"] == {"widths": [40, 40, 40, 40], "inputs": 30} for t in trials)
    r = invoke("reproduce", "shaped", "--dataset", "xor", "--trial", "0")
    assert r.exit_code == 0, r.output


def test_best_of_a_sweep_with_repeated_seeds_runs_again_to_the_same_mean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = SPEC.format(name="rep", csv='"xor"', objective='"val_cost"').replace(
        'datasets = ["circle", { name = "xor", val_fraction = 0.25 }]', 'datasets = ["xor"]\nrepeats = 2'
    )
    (tmp_path / "rep.toml").write_text(text.replace("trials = 5", "trials = 2"))
    assert invoke("run", "rep.toml", "--no-mlflow").exit_code == 0
    r = invoke("best", "rep")
    assert r.exit_code == 0, r.output
    assert tomllib.loads(r.output)["repeats"] == 2
    (tmp_path / "again.toml").write_text(r.output)
    assert invoke("run", "again.toml", "--no-mlflow").exit_code == 0
    assert _study("rep-best-xor/xor").best_value == _study("rep/xor").best_value  # the mean, bit for bit
    command = invoke("best", "rep", "--format", "command")
    assert "mean over 2 seeds; this trains the first seed alone" in command.output
