"""Repeated seeds (``repeats = K``) and constraints (``[constraints]``): the keys' rules, the
seeds' mean as the trial's value, the storage's record, reproduction of each seed, the feasible
best with any sampler, MLflow's view and the report."""

from __future__ import annotations

import copy
import math
import signal

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from engine import History, Member, load_dataset, train_stacked
from studies.execution.runner import open_sweep
from studies.execution.worker import WorkerTask, work
from studies.search import find_trial, retrain_seeds, seed_difference
from studies.storage.opening import open_storage
from studies.sweep import Constraint, SweepConfig, is_feasible, mean_history, summarize
from sweeps.cli import cli
from sweeps.spec import spec_from_dict

BASE = {
    "datasets": ["circle", "xor"],
    "trials": 6,
    "jobs": 1,
    "seed": 2,
    "report_every": 2,
    "train": {"epochs": 6, "batch_size": 10, "activation": "tanh"},
    "search": {"learning_rate": {"low": 0.02, "high": 1.0, "log": True}, "hidden_units": {"low": 2, "high": 8}},
    "sampler": {"name": "random"},
    "pruner": {"name": "none"},
}


@pytest.fixture
def handlers():
    """work() in this process installs its signal handlers: put pytest's back afterwards."""
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in old.items():
        signal.signal(s, h)


def _run(tmp_path, name: str, **changes) -> tuple[SweepConfig, str]:
    config = spec_from_dict({**BASE, "name": name, **changes})
    storage = str(tmp_path / f"{name}.journal")
    open_sweep(config, open_storage(storage))
    work(WorkerTask(storage, config, 0))
    return config, storage


def _trials(storage: str, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=open_storage(storage)).get_trials()


# -- the keys' rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"repeats": 0}, "'repeats' must be an integer >= 1"),
        ({"repeats": 2.5}, "'repeats'"),
        ({"repeats": 65}, "'repeats' must be an integer from 1 to 64"),
        ({"constraints": {"weights": {"max": 3}}}, "must be one of ['parameters', 'train_cost', 'train_seconds'"),
        ({"constraints": {"parameters": 200}}, "'constraints.parameters' must be a table { min = .., max = .. }"),
        ({"constraints": {"parameters": {}}}, "'constraints.parameters' must be a table"),
        ({"constraints": {"parameters": {"maximum": 3}}}, "unknown key 'constraints.parameters.maximum'"),
        ({"constraints": {"val_cost": {"max": "low"}}}, "'constraints.val_cost.max' must be a finite number"),
        ({"constraints": {"val_cost": {"min": 2, "max": 1}}}, "`min <= max` must hold, but got (min=2, max=1)"),
        ({"constraints": {"val_r2": {"min": 0.5}}}, "'constraints.val_r2' needs regression datasets"),
        ({"constraints": "parameters"}, "'constraints' must be a table"),
    ],
)
def test_bad_repeats_and_constraints_are_one_line(changes, message):
    with pytest.raises(ValueError) as exc:
        spec_from_dict({**BASE, "name": "bad", **changes}, origin="f.toml")
    assert message in str(exc.value)
    assert str(exc.value).startswith("f.toml: ") and "\n" not in str(exc.value)


def test_the_cli_refuses_a_bad_constraint_with_exit_2_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text('name = "s"\ndatasets = ["circle"]\n[constraints]\nweights = { max = 3 }\n')
    result = CliRunner().invoke(cli, ["run", "s.toml", "--no-mlflow"])
    assert result.exit_code == 2 and "constraints.weights" in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("*.journal"))


def test_repeats_and_constraints_round_trip_and_are_part_of_the_identity():
    config = spec_from_dict(
        {**BASE, "name": "rt", "repeats": 3, "constraints": {"parameters": {"max": 40}, "val_cost": {"min": 0.0}}}
    )
    again = SweepConfig.from_dict(config.to_dict())
    assert again == config
    assert again.repeats == 3 and again.constraints == (
        Constraint("parameters", high=40.0),
        Constraint("val_cost", low=0.0),
    )
    plain = spec_from_dict({**BASE, "name": "rt"})
    assert "repeats" not in plain.to_dict() and "constraints" not in plain.to_dict()  # old sweeps' identity
    assert plain.identity() != config.identity()


# -- units ---------------------------------------------------------------------------------


def test_constraint_values_follow_optunas_sign():
    c = Constraint("val_accuracy", low=0.9, high=0.99)
    v = c.violations(0.95)
    assert v["val_accuracy.min"] == pytest.approx(-0.05) and v["val_accuracy.max"] == pytest.approx(-0.04)
    assert is_feasible(v) and not is_feasible(c.violations(0.5))
    assert c.violations(math.nan)["val_accuracy.min"] > 0  # a diverged trial's cost is no pass


def test_mean_history_is_the_seeds_mean_epoch_by_epoch():
    ds = load_dataset("circle", seed=0)
    out = train_stacked([Member((4,), 0.2, seed=s, activation="tanh") for s in (0, 1, 2)], ds, epochs=3, batch_size=10)
    mean = mean_history([h for _, h in out])
    for metric in ("train_cost", "val_cost", "val_accuracy"):
        expected = np.mean([getattr(h, metric) for _, h in out], axis=0)
        assert np.allclose(getattr(mean, metric), expected)
    assert len({tuple(h.val_cost) for _, h in out}) == 3  # the seeds differ
    latest = mean_history([h for _, h in out], last=True)  # what the pruner is told each epoch
    assert latest.val_cost == [mean.val_cost[-1]] and latest.val_accuracy == [mean.val_accuracy[-1]]


@pytest.mark.parametrize("seeds", [2, 4, 8, 11])
@pytest.mark.parametrize("epochs", [1, 2, 7])
def test_the_latest_mean_is_the_whole_means_last_epoch_to_the_bit(seeds, epochs):
    # The pruner hears each epoch's mean (last=True); the trial records the whole curve's mean.
    # They are one number, however many seeds (np.mean sums 8 values or more pairwise).
    rng = np.random.default_rng(seeds * 10 + epochs)
    histories = [
        History(
            task="binary",
            initial_cost=float(rng.random() * 10),
            train_cost=[float(x) for x in rng.random(epochs) * 1e5],
            val_cost=[float(x) for x in rng.random(epochs) * 1e-3],
            val_accuracy=[float(x) for x in rng.random(epochs)],
            epoch_time=[0.1] * epochs,
        )
        for _ in range(seeds)
    ]
    whole, latest = mean_history(histories), mean_history(histories, last=True)
    for metric in ("train_cost", "val_cost", "val_accuracy"):
        assert getattr(latest, metric) == [getattr(whole, metric)[-1]], metric
        assert np.allclose(getattr(whole, metric), np.mean([getattr(h, metric) for h in histories], axis=0))
    assert latest.initial_cost == whole.initial_cost and latest.val_r2 == whole.val_r2 == []


# -- whole sweeps in this process ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("stack", [1, 3])
def test_a_trial_of_k_seeds_is_their_mean_and_each_seed_reproduces(tmp_path, handlers, stack):
    """With ``stack = 1`` too (the seeds still share a stack); with ``stack = 3``, 3 configurations
    x 3 seeds train at once."""
    config, storage = _run(tmp_path, f"rep{stack}", repeats=3, stack=stack)
    for dataset in ("circle", "xor"):
        trials = _trials(storage, f"rep{stack}/{dataset}")
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        assert len(done) == 6
        for t in done:
            rep = t.user_attrs["repeats"]
            assert rep["seeds"] == [2, 3, 4]
            finals = [c["val_cost"][-1] for c in rep["curves"]]
            assert len(set(finals)) == 3  # three seeds, three networks
            assert t.value == pytest.approx(np.mean(finals))
            assert rep["std"][0] == pytest.approx(np.std(finals))
            assert t.user_attrs["run"]["curves"]["val_cost"] == pytest.approx(
                list(np.mean([c["val_cost"] for c in rep["curves"]], axis=0))
            )
            assert t.intermediate_values[6] == pytest.approx(t.value)  # the pruner saw the mean
        best = min(done, key=lambda t: t.value)
        study, found = find_trial(open_storage(storage), f"rep{stack}", dataset, best.number)
        again = retrain_seeds(study, found)
        assert len(again) == 3
        assert all(seed_difference(found, j, r.history) is None for j, r in enumerate(again))
    summary = {s.dataset: s for s in summarize(open_storage(storage), f"rep{stack}")}
    assert summary["circle"].best_std is not None and summary["circle"].best_std[0] >= 0


@pytest.mark.slow
def test_reproduce_checks_every_seed_and_names_the_one_that_differs(tmp_path, handlers):
    config, storage = _run(tmp_path, "tamper", repeats=2, trials=2, datasets=["circle"])
    trial = next(t for t in _trials(storage, "tamper/circle") if t.state == TrialState.COMPLETE)
    result = CliRunner().invoke(
        cli, ["reproduce", "tamper", "--storage", storage, "--dataset", "circle", "--trial", str(trial.number)]
    )
    assert result.exit_code == 0 and "for each of its 2 seeds [2, 3]" in result.output, result.output
    study, found = find_trial(open_storage(storage), "tamper", "circle", trial.number)
    again = retrain_seeds(study, found)
    tampered = copy.deepcopy(found)
    tampered.user_attrs["repeats"]["curves"][1]["val_cost"][2] += 1e-9  # one seed's record, off in its last bits
    assert seed_difference(tampered, 0, again[0].history) is None
    assert seed_difference(tampered, 1, again[1].history)[:2] == (3, "val_cost")


@pytest.mark.slow
@pytest.mark.parametrize(("sampler", "stack"), [("tpe", 8), ("random", 1), ("nsgaii", 8)])
def test_infeasible_trials_are_kept_marked_and_never_the_best(tmp_path, handlers, sampler, stack):
    """A bound on the weights that about half the space breaks: every finished trial is marked,
    Optuna holds the values (what TPE and NSGA-II read), and the best is the feasible best."""
    name = f"con-{sampler}"
    config, storage = _run(
        tmp_path,
        name,
        trials=10,
        sampler={"name": sampler, **({"n_startup_trials": 4} if sampler == "tpe" else {})},
        constraints={"parameters": {"max": 25}},
        stack=stack,  # 1: trials trained one at a time (run_trial), not in a pool
    )
    for dataset in ("circle", "xor"):
        trials = [t for t in _trials(storage, f"{name}/{dataset}") if t.state == TrialState.COMPLETE]
        assert len(trials) == 10
        for t in trials:
            h = t.params["hidden_units_1"]
            weights = (2 + 1) * h + (h + 1) * 1
            assert t.user_attrs["feasible"] == (weights <= 25)
            assert t.constraints == {"parameters.max": weights - 25.0}  # Optuna's own record (system attrs)
        summary = next(s for s in summarize(open_storage(storage), name) if s.dataset == dataset)
        feasible = [t for t in trials if t.user_attrs["feasible"]]
        assert summary.infeasible == len(trials) - len(feasible)
        if feasible:
            assert summary.best_trial == min(feasible, key=lambda t: t.value).number
        else:
            assert summary.best_trial is None
        # Optuna's own best_trial agrees: it skips trials whose constraints are > 0
        if feasible:
            study = optuna.load_study(study_name=f"{name}/{dataset}", storage=open_storage(storage))
            assert study.best_trial.number == summary.best_trial


@pytest.mark.slow
def test_a_metric_constraint_on_a_multi_objective_sweep_keeps_the_front_feasible(tmp_path, handlers):
    config, storage = _run(
        tmp_path,
        "multi",
        trials=8,
        objective=["val_cost", "parameters"],
        sampler={"name": "nsgaii", "population_size": 4},
        constraints={"val_accuracy": {"min": 0.75}},
        repeats=2,
    )
    for s in summarize(open_storage(storage), "multi"):
        trials = {t.number: t for t in _trials(storage, s.study)}
        assert s.infeasible == sum(1 for t in trials.values() if t.user_attrs.get("feasible") is False)
        for f in s.front:
            t = trials[f.number]
            assert t.user_attrs["feasible"] and t.user_attrs["run"]["curves"]["val_accuracy"][-1] >= 0.75
            assert len(t.user_attrs["repeats"]["std"]) == 2  # one std per objective


@pytest.mark.slow
def test_mlflow_runs_and_the_report_show_seeds_std_and_feasibility(tmp_path, handlers, monkeypatch):
    from studies.sweep import require_sweep
    from studies.tracking.runs import parent_content, trial_run

    monkeypatch.chdir(tmp_path)
    config, storage = _run(
        tmp_path, "view", repeats=2, trials=5, datasets=["circle"], constraints={"parameters": {"max": 25}}
    )
    (study,) = require_sweep(open_storage(storage), "view")
    trials = [t for t in _trials(storage, "view/circle") if t.state == TrialState.COMPLETE]
    for t in trials:
        run = trial_run(study, t, "complete", parent="p", sweep="view")
        metrics = {m.key: m.value for m in run.metrics if m.step == 0}
        assert metrics["value_std"] == pytest.approx(t.user_attrs["repeats"]["std"][0])
        assert run.tags["feasible"] == ("true" if t.user_attrs["feasible"] else "false")
        assert metrics["constraint.parameters.max"] == t.user_attrs["constraints"]["parameters.max"]
        assert {p.key: p.value for p in run.params}["seeds"] == "2,3"
        seeds = t.user_attrs["repeats"]["curves"]
        stds = {m.step: m.value for m in run.metrics if m.key == "val_cost_std"}
        means = {m.step: m.value for m in run.metrics if m.key == "val_cost"}
        assert stds and set(stds) == set(means)  # the std beside the mean curve, epoch for epoch
        for e, v in stds.items():
            assert v == pytest.approx(np.std([c["val_cost"][e - 1] for c in seeds]))
    (summary,) = summarize(open_storage(storage), "view")
    metrics, _ = parent_content(summary)
    assert {m.key for m in metrics} >= {"n_infeasible", "best_value_std"}
    result = CliRunner().invoke(cli, ["report", "view", "--storage", storage, "--out", "rep", "--no-mlflow"])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "mean ± std over 2 seeds" in md and "Constraints:" in md
    header = (tmp_path / "rep" / "trials.csv").read_text().splitlines()[0]
    assert header.endswith("feasible,value_std")
    status = CliRunner().invoke(cli, ["status", "view", "--storage", storage])
    assert status.exit_code == 0, status.output
    assert f"circle: best {summary.best_value:.4g} ± " in status.output
    assert f"{summary.infeasible} infeasible trial(s)" in status.output


@pytest.mark.slow
def test_a_killed_worker_and_a_resume_leave_every_trial_with_all_its_seeds(tmp_path, monkeypatch):
    """SIGKILL a worker while K-seed trials train: the launcher fails and re-runs its trials,
    and every finished trial has K seeds' curves and its feasibility; a second run adds nothing."""
    import os
    import subprocess
    import sys
    import time

    monkeypatch.chdir(tmp_path)
    text = (
        'name = "kill"\ndatasets = ["circle", "xor"]\ntrials = 8\njobs = 2\nseed = 0\nrepeats = 3\nstack = 2\n'
        '[train]\nepochs = 400\nbatch_size = 10\nactivation = "tanh"\n'
        "[search]\nlearning_rate = { low = 0.01, high = 0.5, log = true }\nhidden_units = { low = 2, high = 8 }\n"
        '[sampler]\nname = "tpe"\nn_startup_trials = 3\n[pruner]\nname = "none"\n'
        "[constraints]\nparameters = { max = 25 }\n"
    )
    (tmp_path / "kill.toml").write_text(text)
    cmd = [sys.executable, "-m", "sweeps", "run", "kill.toml", "--no-mlflow"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = str(tmp_path / "sweeps.journal")
    victim, deadline = None, time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.3)
        if os.path.exists(journal):
            try:
                running = [
                    t
                    for d in ("circle", "xor")
                    for t in _trials(journal, f"kill/{d}")
                    if t.state == TrialState.RUNNING and t.user_attrs.get("worker")
                ]
            except KeyError:  # the studies are being created
                continue
            victim = int(running[0].user_attrs["worker"]["pid"]) if running else None
    assert victim is not None, proc.communicate()
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    for d in ("circle", "xor"):
        trials = _trials(journal, f"kill/{d}")
        done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert len(done) == 8 and not [t for t in trials if t.state == TrialState.RUNNING]
        for t in done:
            assert len(t.user_attrs["repeats"]["curves"]) == 3 and "feasible" in t.user_attrs
            assert all(len(c["val_cost"]) == 400 for c in t.user_attrs["repeats"]["curves"])


@pytest.mark.slow
def test_a_warm_start_from_a_constrained_sweep_takes_its_feasible_best_first(tmp_path, handlers, monkeypatch):
    _, source = _run(tmp_path, "src", trials=8, datasets=["circle"], constraints={"parameters": {"max": 25}})
    src = [t for t in _trials(source, "src/circle") if t.state == TrialState.COMPLETE]
    ok = sorted((t for t in src if t.user_attrs["feasible"]), key=lambda t: t.value)
    assert ok and len(ok) < len(src)
    import tomli_w

    monkeypatch.chdir(tmp_path)
    dst = {**BASE, "name": "dst", "datasets": ["circle"], "trials": 3, "repeats": 2}
    dst["warm_start"] = {"sweep": "src", "top": 1, "storage": source}
    (tmp_path / "dst.toml").write_text(tomli_w.dumps(dst))
    storage = str(tmp_path / "dst.journal")
    result = CliRunner().invoke(cli, ["run", "dst.toml", "--no-mlflow", "--storage", storage])
    assert result.exit_code == 0, result.output
    first = min(_trials(storage, "dst/circle"), key=lambda t: t.number)
    assert first.user_attrs["warm_start"]["trial"] == ok[0].number
    assert first.params == ok[0].params and len(first.user_attrs["repeats"]["seeds"]) == 2


@pytest.mark.slow
@pytest.mark.postgres
def test_two_commands_on_postgresql_record_every_seed_and_constraint(tmp_path, monkeypatch, pg_database):
    """A run and a worker (another host's command) on one PostgreSQL sweep with repeats and
    constraints: every finished trial has its seeds and Optuna's constraint values, once."""
    import subprocess
    import sys
    import time

    import tomli_w

    monkeypatch.chdir(tmp_path)
    url = pg_database()
    spec = {**BASE, "name": "pg", "trials": 12, "jobs": 1, "repeats": 2, "stack": 2}
    spec["train"] = {**BASE["train"], "epochs": 60}
    spec["constraints"] = {"parameters": {"max": 25}}
    (tmp_path / "pg.toml").write_text(tomli_w.dumps(spec))
    run = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "run", "pg.toml", "--storage", url, "--no-mlflow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(optuna.get_all_study_names(storage=url)) < 2:
        time.sleep(0.3)
    worker = subprocess.run(
        [sys.executable, "-m", "sweeps", "worker", "pg", "--storage", url, "--jobs", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err
    assert worker.returncode == 0, worker.stderr
    for d in ("circle", "xor"):
        trials = optuna.load_study(study_name=f"pg/{d}", storage=url).get_trials()
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        assert len(done) == 12
        for t in done:
            assert t.user_attrs["repeats"]["seeds"] == [2, 3]
            assert t.constraints == t.user_attrs["constraints"] and "feasible" in t.user_attrs
