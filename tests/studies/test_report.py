"""``sweep report`` and ``sweep reproduce``: from the storage alone, escaped, reproducible."""

from __future__ import annotations

import base64
import csv
import os
import re
import subprocess
import sys

import optuna
import pytest
from click.testing import CliRunner

from studies.storage.opening import open_storage
from sweeps.cli import cli

pytestmark = pytest.mark.slow

HOSTILE = "<script>alert('x')</script>$a$"


@pytest.fixture(scope="module")
def _built_sweep(tmp_path_factory):
    """One finished sweep for the module (built once: the tests only read it, each writing its own
    output folder; the one that adds a trial works on a copy)."""
    from tests.studies.conftest import SPEC

    folder = tmp_path_factory.mktemp("report")
    csv_path = folder / "mine.csv"
    rows = "".join(
        f"{(i % 7) / 3 - 1},{(i * 13 % 11) / 5 - 1},{int((i % 7) / 3 - 1 + (i * 13 % 11) / 5 - 1 > 0)}\n"
        for i in range(120)
    )
    csv_path.write_text(f'"{HOSTILE}",b,label\n' + rows)
    path = folder / "rep.toml"
    text = SPEC.format(name="rep", trials=8, jobs=1, epochs=6)
    path.write_text(text.replace('datasets = ["circle", "xor"]', f'datasets = ["circle", "{csv_path}"]'))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        r = CliRunner().invoke(cli, ["run", str(path)])
    assert r.exit_code == 0, r.output
    return folder


@pytest.fixture
def finished_sweep(_built_sweep, monkeypatch):
    """The module's finished sweep, as the working directory."""
    monkeypatch.chdir(_built_sweep)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return _built_sweep


def test_report_files_are_complete_self_contained_and_escaped(finished_sweep):
    r = CliRunner().invoke(cli, ["report", "rep", "--out", "out"])
    assert r.exit_code == 0, r.output
    assert "attached to 2 MLflow parent run(s)" in r.output
    page = (finished_sweep / "out" / "report.html").read_text()
    assert "<script" not in page and "&lt;script&gt;" in page  # the CSV column name, escaped
    assert "<h1>Sweep rep</h1>" in page
    assert "parallel coordinates of circle" in page and "its val accuracy" in page
    assert not re.search(r'(src|href)="(?!data:image/png;base64,)', page)  # nothing external
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 10
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    for needle in (
        "Held-out test score",
        "optimization history of circle",
        "numpy",
        "git commit",
        "sweep seed 0",
        "Dataset circle",
        "Dataset mine",
        "The sweep file as it was run",
        "learning_rate",
    ):
        assert needle in page, needle
    md = (finished_sweep / "out" / "report.md").read_text()
    linked = re.findall(r"\]\((figures/[^)]+\.png)\)", md)
    assert len(linked) == len(images)
    assert all((finished_sweep / "out" / p).read_bytes()[:4] == b"\x89PNG" for p in linked)
    assert "<script" not in md
    with open(finished_sweep / "out" / "trials.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 16
    assert {
        "number",
        "dataset",
        "outcome",
        "value",
        "learning_rate",
        "divergence_epoch",
        "divergence_cause",
        "duration_s",
    } <= set(rows[0])
    assert {r["dataset"] for r in rows} == {"circle", "mine"}
    finished = [r for r in rows if r["outcome"] in ("complete", "pruned")]
    assert finished and all(0.0 <= float(r["val_accuracy"]) <= 1.0 for r in finished)  # classification
    diverged = [r for r in rows if r["outcome"] == "diverged"]
    assert all(r["divergence_cause"] in ("nan", "inf", "exploding") and r["divergence_epoch"] for r in diverged)
    # Every epoch of every finished trial (MLflow's runs have them at chart resolution).
    with open(finished_sweep / "out" / "curves.csv", newline="") as fh:
        points = list(csv.DictReader(fh))
    assert list(points[0])[:5] == ["dataset", "trial", "epoch", "train_cost", "val_cost"]
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend("sweeps.journal"))
    for s in storage.get_all_studies():
        for t in storage.get_all_trials(s._study_id):
            if t.state.name not in ("COMPLETE", "PRUNED"):
                continue
            mine = [p for p in points if p["dataset"] == s.study_name.split("/")[1] and int(p["trial"]) == t.number]
            curve = t.user_attrs["run"]["curves"]["val_cost"]
            div = t.user_attrs.get("divergence")
            assert len(mine) == len(curve) + (div is not None)
            assert [float(p["val_cost"]) for p in mine[: len(curve)]] == curve
            if div is not None:
                assert int(mine[-1]["epoch"]) == div["epoch"]


def test_report_needs_only_the_storage(finished_sweep):
    r = CliRunner().invoke(cli, ["report", "rep", "--out", "away", "--tracking-uri", "http://127.0.0.1:9"])
    assert r.exit_code == 0, r.output
    assert (finished_sweep / "away" / "report.html").exists()
    assert r.output.count("Warning: MLflow at http://127.0.0.1:9 failed") == 1


def test_reproduce_in_a_new_process(finished_sweep):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend("sweeps.journal"))
    study = optuna.load_study(study_name="rep/circle", storage=storage)
    picks = {}
    for t in study.get_trials():
        kind = "diverged" if t.user_attrs.get("diverged") else t.state.name.lower()
        picks.setdefault(kind, t.number)
    assert "complete" in picks
    for kind, number in picks.items():
        if kind not in ("complete", "pruned", "diverged"):
            continue
        r = subprocess.run(
            [sys.executable, "-m", "sweeps", "reproduce", "rep", "--dataset", "circle", "--trial", str(number)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.startswith("reproduced: rep/circle t")


def test_reproduce_names_the_first_epoch_that_differs(finished_sweep, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(finished_sweep, tmp_path / "copy")  # it adds a trial: the other tests see the sweep as run
    monkeypatch.chdir(tmp_path / "copy")
    # The sweep's own lock (a flock on sweeps.journal.lock): Optuna's default symlink lock would
    # take the lock file the sweep left for a holder and wait out its 30 s grace period.
    storage = open_storage("sweeps.journal")
    study = optuna.load_study(study_name="rep/circle", storage=storage)
    good = next(t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE)
    run = dict(good.user_attrs["run"])
    curves = {k: list(v) for k, v in run["curves"].items()}
    curves["val_cost"][2] += 1e-3  # a record that the code no longer produces from epoch 3 on
    run["curves"] = curves
    study.add_trial(
        optuna.trial.create_trial(
            params=good.params, distributions=good.distributions, value=good.value, user_attrs={"run": run}
        )
    )
    forged = study.get_trials()[-1].number
    r = CliRunner().invoke(cli, ["reproduce", "rep", "--dataset", "circle", "--trial", str(forged)])
    assert r.exit_code == 1
    assert "first at epoch 3, val_cost recorded" in r.output


def test_reproduce_bad_arguments(finished_sweep):
    r = CliRunner().invoke(cli, ["reproduce", "rep", "--dataset", "circle", "--trial", "999"])
    assert r.exit_code == 2 and "'--trial' must be a trained trial of 'rep/circle'" in r.output
    r = CliRunner().invoke(cli, ["reproduce", "nope", "--dataset", "circle", "--trial", "1"])
    assert r.exit_code == 2 and "no sweep named 'nope'" in r.output


def test_report_never_writes_through_links(finished_sweep):
    outside = finished_sweep / "outside"
    outside.mkdir()
    targets = {name: outside / name for name in ("page.html", "table.csv", "figure.png")}
    for target in targets.values():
        target.write_text("precious")
    out = finished_sweep / "linked"
    (out / "figures").mkdir(parents=True)
    (out / "report.html").symlink_to(targets["page.html"])
    (out / "trials.csv").symlink_to(targets["table.csv"])
    (out / "figures" / "0-history.png").symlink_to(targets["figure.png"])
    r = CliRunner().invoke(cli, ["report", "rep", "--out", str(out), "--no-mlflow"])
    assert r.exit_code == 0, r.output
    assert all(t.read_text() == "precious" for t in targets.values())
    for path in (out / "report.html", out / "trials.csv", out / "figures" / "0-history.png"):
        assert not path.is_symlink() and path.stat().st_size > 100
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_report_refuses_a_linked_figures_folder_and_a_file_as_out(finished_sweep):
    elsewhere = finished_sweep / "elsewhere"
    elsewhere.mkdir()
    out = finished_sweep / "out2"
    out.mkdir()
    (out / "figures").symlink_to(elsewhere)
    r = CliRunner().invoke(cli, ["report", "rep", "--out", str(out), "--no-mlflow"])
    assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
    assert "is a symbolic link" in r.output
    assert os.listdir(elsewhere) == [] and sorted(os.listdir(out)) == ["figures"]
    afile = finished_sweep / "notes.txt"
    afile.write_text("mine")
    r = CliRunner().invoke(cli, ["report", "rep", "--out", str(afile), "--no-mlflow"])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "Traceback" not in r.output, r.output
    assert r.output.startswith("Error: '--out' must be a folder, but") and afile.read_text() == "mine"


def test_searched_features_run_reproduce_and_report(sweep_file, tmp_path):
    # Feature families searched (one yes/no parameter each) in stacked trials: every trial
    # trains on its own inputs (in a stack padded to the widest), reproduces alone bit for
    # bit, and the report draws the best network's boundary through the same inputs.
    path = sweep_file("feat", trials=10, jobs=2, epochs=5)
    text = path.read_text().replace(
        "[search]", '[search]\nfeatures = { subsets = ["linear", "squares", "products", "sines"] }'
    )
    path.write_text(text.replace("trials = 10", "trials = 10\nbatch = 5"))
    r = CliRunner().invoke(cli, ["run", str(path), "--no-mlflow"])
    assert r.exit_code == 0, r.output
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend("sweeps.journal"))
    from studies.sweep.space import SearchSpace, Subsets

    space = SearchSpace(searched={"features": Subsets(("linear", "squares", "products", "sines"))})
    by_inputs: dict[tuple[str, ...], tuple[str, int]] = {}
    for name in ("feat/circle", "feat/xor"):
        for t in optuna.load_study(study_name=name, storage=storage).get_trials():
            if "run" not in t.user_attrs:
                continue
            assert {"features_linear", "features_squares", "features_products", "features_sines"} <= set(t.params)
            assert t.user_attrs["run"]["stack"]["inputs"] == 7  # every feature set in stacks of the widest inputs
            features = space.from_params(t.params).features
            assert t.user_attrs["run"]["label"].endswith("" if features == ("linear",) else f" in={'+'.join(features)}")
            by_inputs.setdefault(features, (name.split("/")[1], t.number))
    assert len({sum({"products": 1}.get(f, 2) for f in fs) for fs in by_inputs}) >= 3  # several input widths
    picks = list(by_inputs.values())
    for dataset, number in picks[:-1]:
        again = CliRunner().invoke(cli, ["reproduce", "feat", "--dataset", dataset, "--trial", str(number)])
        assert again.exit_code == 0 and again.output.startswith("reproduced:"), again.output
    dataset, number = picks[-1]
    p = subprocess.run(
        [sys.executable, "-m", "sweeps", "reproduce", "feat", "--dataset", dataset, "--trial", str(number)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0 and p.stdout.startswith("reproduced:"), p.stdout + p.stderr

    r = CliRunner().invoke(cli, ["report", "feat", "--out", "out", "--tracking-uri", "http://127.0.0.1:9"])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "out" / "report.html").read_text()
    for name in ("circle", "xor"):
        study = optuna.load_study(study_name=f"feat/{name}", storage=storage)
        features = space.from_params(study.best_trial.params).features
        width = {"linear": 2, "squares": 2, "products": 1, "sines": 2}
        assert f"{sum(width[f] for f in features)} input features" in page
        assert f"decision boundary of the best network on {name}" in page


def test_fixed_features_one_network_at_a_time_reproduce(sweep_file, tmp_path):
    path = sweep_file("fix", trials=4, jobs=1, epochs=4)
    text = path.read_text().replace('activation = "relu"', 'activation = "relu"\nfeatures = ["sines", "squares"]')
    path.write_text(text.replace("trials = 4", "trials = 4\nbatch = 1").replace("[0.1, 80.0]", "[0.1, 0.3]"))
    r = CliRunner().invoke(cli, ["run", str(path), "--no-mlflow"])
    assert r.exit_code == 0, r.output
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend("sweeps.journal"))
    trials = optuna.load_study(study_name="fix/xor", storage=storage).get_trials()
    assert len(trials) == 4 and not any(k.startswith("features") for t in trials for k in t.params)
    for t in trials:
        assert "stack" not in t.user_attrs["run"] and t.user_attrs["run"]["label"].endswith(" in=squares+sines")
        again = CliRunner().invoke(cli, ["reproduce", "fix", "--dataset", "xor", "--trial", str(t.number)])
        assert again.exit_code == 0 and again.output.startswith("reproduced:"), again.output
    from studies.search.reproduce import find_trial, retrain

    study, trial = find_trial(storage, "fix", "xor", trials[0].number)
    assert retrain(study, trial).dataset.feature_names == ("x1^2", "x2^2", "sin(x1)", "sin(x2)")
