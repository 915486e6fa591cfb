"""Several objectives: the objectives table, Pareto fronts, and a multi-objective sweep end to
end (workers one at a time and stacked, divergence, status, MLflow, the report, reproduce)."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from engine import MLP
from studies.sweep.objectives import OBJECTIVES, parameter_count
from studies.sweep.outcomes import outcome_of
from studies.sweep.pareto import front_mask, front_ranks, pareto_front, ranked
from sweeps.cli import cli


@pytest.mark.parametrize(
    ("inputs", "hidden", "outputs"), [(2, (), 1), (2, (8, 8), 1), (64, (5,), 10), (7, (3, 9, 2), 3)]
)
def test_parameter_count_is_the_networks_weights_and_biases(inputs, hidden, outputs):
    assert parameter_count(inputs, hidden, outputs) == MLP(inputs, hidden, outputs, seed=0).n_params


def test_the_objectives_table_says_each_direction():
    assert {name: o.direction for name, o in OBJECTIVES.items()} == {
        "parameters": "minimize",
        "train_seconds": "minimize",
        "val_accuracy": "maximize",
        "val_cost": "minimize",
    }
    assert sorted(name for name, o in OBJECTIVES.items() if o.curve) == ["val_accuracy", "val_cost"]


@pytest.mark.parametrize(
    "directions", [["minimize", "minimize"], ["maximize", "minimize"], ["minimize", "maximize", "minimize"]]
)
def test_the_front_is_optunas_best_trials(directions):
    # Optuna's own front (Study.best_trials) is the oracle; values on a coarse grid make ties.
    rng = np.random.default_rng(len(directions) + (directions[0] == "maximize"))
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    study = optuna.create_study(directions=directions)
    for i in range(120):
        if i % 9 == 8:
            study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED))
        else:  # losses that conflict (the first against the second), on a grid (ties)
            x = int(rng.integers(0, 30))
            losses = [x, 30 - x + int(rng.integers(0, 8)), *rng.integers(0, 6, size=len(directions) - 2)]
            study.add_trial(optuna.trial.create_trial(values=list(np.array(losses, dtype=float) * signs)))
    ours = [t.number for t in pareto_front(study.trials, directions)]
    assert ours == sorted(t.number for t in study.best_trials)
    assert len(ours) >= 3
    # The ranks: each rank's trials are the front once the better ranks are removed.
    trials = [t for t in study.trials if t.state == TrialState.COMPLETE]
    losses = np.array([t.values for t in trials]) * signs
    ranks = front_ranks(losses)
    assert sorted(trials[i].number for i in np.flatnonzero(ranks == 0)) == ours
    left = ranks > 0
    assert np.array_equal(np.flatnonzero(front_mask(losses[left])), np.flatnonzero(ranks[left] == 1))
    top = ranked(study.trials, directions, 7)
    assert [t.number for t in top[: min(7, len(ours))]] == ours[:7]  # the front first, by number


def test_ranked_with_one_objective_is_by_value_then_number():
    study = optuna.create_study(direction="maximize")
    for v in (0.5, 0.9, 0.7, 0.9, 0.1):
        study.add_trial(optuna.trial.create_trial(value=v))
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    assert [t.number for t in ranked(study.trials, ["maximize"], 3)] == [1, 3, 2]


def _storage():
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend("sweeps.journal"))


MULTI = [
    # One network at a time, NSGA-II, three objectives (one maximized).
    pytest.param(1, "nsgaii", ["val_accuracy", "parameters", "train_seconds"], id="batch1-nsgaii-3"),
    # Stacked, TPE (batched asks), two objectives.
    pytest.param(4, "tpe", ["val_cost", "parameters"], id="batch4-tpe-2"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("batch", "sampler", "objectives"), MULTI)
def test_a_multi_objective_sweep_end_to_end(sweep_file, tmp_path, batch, sampler, objectives):
    path = sweep_file("multi", trials=14, jobs=2, epochs=5)
    options = "\npopulation_size = 4" if sampler == "nsgaii" else "\nn_startup_trials = 4"
    text = path.read_text().replace('objective = "val_cost"', f"objective = {json.dumps(objectives)}\nbatch = {batch}")
    text = text.replace('[sampler]\nname = "random"', f'[sampler]\nname = "{sampler}"{options}')
    path.write_text(text.replace('[pruner]\nname = "none"\n', ""))  # no pruner: the default with several
    r = CliRunner().invoke(cli, ["run", str(path), "--check"])
    assert r.exit_code == 0 and f"objectives {', '.join(objectives)} (" in r.output and "pruner none" in r.output
    r = CliRunner().invoke(cli, ["run", str(path)])
    assert r.exit_code == 0, r.output
    assert "front" in r.output and all(f"best {name}" in r.output for name in objectives)

    storage = _storage()
    directions = [OBJECTIVES[name].direction for name in objectives]
    fronts = {}
    diverged = 0
    for dataset in ("circle", "xor"):
        study = optuna.load_study(study_name=f"multi/{dataset}", storage=storage)
        assert [d.name.lower() for d in study.directions] == directions
        trials = study.get_trials()
        assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 14
        assert "failed" not in map(outcome_of, trials)  # no report raised (Trial.report is single-objective)
        for t in trials:
            assert not t.intermediate_values  # nothing reported to a pruner
            if t.user_attrs.get("diverged"):
                diverged += 1
                assert t.state == TrialState.PRUNED and t.values is None  # never on the front
                assert t.params["learning_rate"] == 80.0
            elif t.state == TrialState.COMPLETE:
                assert len(t.values) == len(objectives)
                values = dict(zip(objectives, t.values))
                assert values["parameters"] == parameter_count(
                    2, [t.params[f"hidden_units_{i + 1}"] for i in range(t.params["hidden_layers"])], 1
                )
                curves = t.user_attrs["run"]["curves"]
                first = objectives[0]
                assert values[first] == curves[first][-1]
                if "train_seconds" in values:
                    assert values["train_seconds"] == t.user_attrs["run"]["train_seconds"] > 0
        fronts[dataset] = sorted(t.number for t in study.best_trials)
        assert fronts[dataset]
    assert diverged >= 1  # lr = 80 with relu diverges: the sampler drew it

    # sweep status: the front's size in the table, the front itself in --json.
    r = CliRunner().invoke(cli, ["status", "multi"])
    assert r.exit_code == 0 and re.search(rf"circle\s+14/14\s+{len(fronts['circle'])}\s", r.output), r.output
    r = CliRunner().invoke(cli, ["status", "multi", "--json"])
    data = json.loads(r.output)
    assert data["objective"] == objectives
    for s in data["studies"]:
        assert [f["trial"] for f in s["front"]] == fronts[s["dataset"]]
        assert s["directions"] == directions and "best_value" not in s
        assert all(set(f["values"]) == set(objectives) and "learning_rate" in f["params"] for f in s["front"])
        for i, name in enumerate(objectives):
            sign = -1 if directions[i] == "maximize" else 1
            assert s["best"][name]["value"] == min((f["values"][name] for f in s["front"]), key=lambda v: sign * v)

    # MLflow: the front's child runs tagged, the parents hold the front.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{os.path.abspath('mlflow.db')}")
    exp = client.get_experiment_by_name("multi")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    for dataset in ("circle", "xor"):
        children = [
            r
            for r in runs
            if r.data.tags.get("sweeps.study") == f"multi/{dataset}" and r.data.tags.get("sweeps.kind") == "trial"
        ]
        tagged = sorted(int(r.data.tags["trial_number"]) for r in children if r.data.tags.get("pareto") == "true")
        assert tagged == fronts[dataset]
        on = next(r for r in children if int(r.data.tags["trial_number"]) == fronts[dataset][0])
        assert set(on.data.metrics) >= {f"value.{name}" for name in objectives}
        parent = next(
            r
            for r in runs
            if r.data.tags.get("sweeps.study") == f"multi/{dataset}" and r.data.tags.get("sweeps.kind") == "study"
        )
        assert parent.data.metrics["front_size"] == len(fronts[dataset])
        assert parent.data.tags["pareto_front"] == ", ".join(map(str, fronts[dataset]))
        stored = client.download_artifacts(parent.info.run_id, "pareto_front.json", str(tmp_path))
        with open(stored) as fh:
            assert [f["trial"] for f in json.load(fh)["front"]] == fronts[dataset]

    # The report: a Pareto figure and the front's table per dataset; the CSV marks the front.
    r = CliRunner().invoke(cli, ["report", "multi", "--out", "out", "--no-mlflow"])
    assert r.exit_code == 0, r.output
    md = (tmp_path / "out" / "report.md").read_text()
    for i, dataset in enumerate(("circle", "xor")):
        assert f"![Pareto front of {dataset}](figures/{i}-pareto.png)" in md
        assert (tmp_path / "out" / "figures" / f"{i}-pareto.png").read_bytes()[:4] == b"\x89PNG"
        assert f"Pareto front: {len(fronts[dataset])} trial" in md
    assert "| front size |" in md and "| trial | " + " | ".join(objectives) in md
    import csv

    with open(tmp_path / "out" / "trials.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {f"value.{name}" for name in objectives} | {"pareto"} <= set(rows[0])
    for dataset in ("circle", "xor"):
        assert (
            sorted(int(r["number"]) for r in rows if r["dataset"] == dataset and r["pareto"] == "True")
            == fronts[dataset]
        )

    # sweep reproduce compares the curves, whatever the objectives (train_seconds differs each time).
    for dataset in ("circle", "xor"):
        number = fronts[dataset][-1]
        r = CliRunner().invoke(cli, ["reproduce", "multi", "--dataset", dataset, "--trial", str(number)])
        assert r.exit_code == 0 and r.output.startswith("reproduced:"), r.output


@pytest.mark.slow
def test_mlflow_tags_follow_trials_on_and_off_the_front(sweep_file, tmp_path):
    """A trial that leaves the front is tagged pareto=false, and true again when it is back."""
    from mlflow.tracking import MlflowClient

    from studies.sweep.summary import find_sweep, summarize_study
    from studies.tracking.tracker import Tracker

    path = sweep_file("tags", trials=8, jobs=1, epochs=3)
    text = path.read_text().replace('objective = "val_cost"', 'objective = ["val_cost", "parameters"]')
    path.write_text(text.replace('datasets = ["circle", "xor"]', 'datasets = ["circle"]'))
    assert CliRunner().invoke(cli, ["run", str(path)]).exit_code == 0
    uri = f"sqlite:///{os.path.abspath('mlflow.db')}"
    storage = _storage()
    study = find_sweep(storage, "tags")[0]
    trials = storage.get_all_trials(study.study_id)
    full = summarize_study(study, trials)
    best = full.best_of("val_cost").number
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("tags")

    def tags() -> dict[int, str]:
        runs = client.search_runs([exp.experiment_id], "tags.`sweeps.kind` = 'trial'", max_results=100)
        return {int(r.data.tags["trial_number"]): r.data.tags.get("pareto") for r in runs}

    assert tags()[best] == "true"
    tracker = Tracker("tags", uri)  # a new writer: it reads what the last one tagged
    tracker.mlflow.connect()
    parent = tracker.parents.get(study, create=False)
    without = summarize_study(study, [t for t in trials if t.number != best])  # as if it had not run
    tracker.parents._update_front(study, parent, without)
    now = tags()
    assert now[best] == "false"
    assert sorted(n for n, v in now.items() if v == "true") == [f.number for f in without.front]
    tracker.parents._update_front(study, parent, full)
    now = tags()
    assert sorted(n for n, v in now.items() if v == "true") == [f.number for f in full.front]
    left = {f.number for f in without.front} - {f.number for f in full.front}
    assert all(now[n] == "false" for n in left)
